/**
 * prom-client's default metrics, split by what they measure. `process_*` describe the
 * whole process: the control plane reports them once. `nodejs_*` (heap, event-loop lag)
 * describe one isolate: every thread reports its own, labelled `worker` (`main` for the
 * control plane, the index for a data-plane worker), so a stuck or leaking worker shows as
 * itself instead of in a sum.
 *
 * Deno grants `/proc/self` only with --allow-all, so prom-client's /proc-based process
 * metrics (resident and virtual memory, heap bytes, open and max file descriptors) would
 * read 0; they are left out, and the resident memory is reported from Deno.memoryUsage().
 * Deno emits no GC performance entries, so prom-client's GC histogram has no series.
 */
import client from "prom-client";

const FROM_PROC = [
  "process_resident_memory_bytes",
  "process_virtual_memory_bytes",
  "process_heap_bytes",
  "process_open_fds",
  "process_max_fds",
];

/** The process-wide metrics (control plane). */
export function processMetrics(): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  for (const metric of registry.getMetricsAsArray()) {
    const { name } = metric as unknown as { name: string };
    if (name.startsWith("nodejs_") || FROM_PROC.includes(name)) registry.removeSingleMetric(name);
  }
  new client.Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    registers: [registry],
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  return registry;
}

/** One thread's runtime metrics (`nodejs_*`), labelled `worker`. */
export function runtimeMetrics(worker: string): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, labels: { worker } });
  for (const metric of registry.getMetricsAsArray()) {
    const { name } = metric as unknown as { name: string };
    if (!name.startsWith("nodejs_")) registry.removeSingleMetric(name);
  }
  return registry;
}

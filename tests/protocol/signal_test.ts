/**
 * A policy's `ctx.signal` over the real ext_proc server (both transports): it fires with a
 * TimeoutError when the policy's timeout passes, and with an AbortError when Envoy cancels the
 * stream (RST_STREAM, as Envoy does when the client goes away) while the policy is running.
 * The fixture policy reports both moments over HTTP, from the engine's data-plane worker.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import { configDefaults } from "../../src/cli_build.ts";
import type { ListenTransport } from "../../src/config/types.ts";
import { Engine } from "../../src/engine.ts";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";
import { venvPython } from "../../scripts/lib/venv.ts";
import { ExtProcClient, requestHeaders } from "../support/extproc_client.ts";
import { freePort } from "../support/ports.ts";

/** An HTTP server that collects what the fixture policy posts, per path. */
function notifications() {
  const port = freePort();
  const received = new Map<string, string[]>();
  const waiters: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (request) => {
    const path = new URL(request.url).pathname;
    received.set(path, [...received.get(path) ?? [], await request.text()]);
    waiters.splice(0).forEach((wake) => wake());
    return new Response("ok");
  });
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    /** Resolves once `path` has received `count` notifications. */
    async at(path: string, count: number, timeoutMs = 5000): Promise<string[]> {
      const deadline = Date.now() + timeoutMs;
      while ((received.get(path)?.length ?? 0) < count) {
        assert.ok(Date.now() < deadline, `${path}: ${JSON.stringify(received.get(path) ?? [])}`);
        await new Promise<void>((wake) => {
          waiters.push(wake);
          setTimeout(wake, 50);
        });
      }
      return received.get(path)!;
    },
    stop: () => server.shutdown(),
  };
}

const suite = (transport: ListenTransport): Deno.TestDefinition => ({
  name: `ctx.signal fires on the policy's timeout and when Envoy cancels the stream (${transport} transport)`,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const notify = notifications();
    const dir = await Deno.makeTempDir({ prefix: "tollgate-signal-" });
    const socket = join(dir, "extproc.sock");
    const policy = (path: string, timeout?: string) => ({
      name: "await-abort",
      version: "v1",
      parameters: { notifyUrl: notify.url(path) },
      ...(timeout ? { timeout } : {}),
    });
    await Deno.writeTextFile(
      join(dir, "tollgate.yaml"),
      stringify({
        listen: { socket, transport },
        admin: { address: `127.0.0.1:${freePort()}` },
        python: { socket: join(dir, "python.sock"), interpreter: venvPython },
        limits: { policyTimeout: "30s" },
        shutdown: { gracePeriod: "1s" },
        log: { level: "error" },
        routes: [
          { name: "times-out", policies: [policy("/timeout", "200ms")] },
          { name: "cancelled", policies: [policy("/cancel")] },
        ],
      }),
    );
    const engine = await Engine.start({
      policies: generatedPolicies,
      registryModule: import.meta.resolve("../../src/gen/test/registry.ts"),
      pythonRegistry,
      configPath: join(dir, "tollgate.yaml"),
      env: {},
      defaults: configDefaults(),
    });
    const client = new ExtProcClient(`unix:${socket}`);
    try {
      const timing = client.open();
      const answer = await timing.exchange(requestHeaders("times-out", "/"));
      assert.equal(answer.response.case, "immediateResponse");
      assert.equal(answer.response.case === "immediateResponse" && answer.response.value.status?.code, 504);
      assert.deepEqual(await notify.at("/timeout", 2), ["started", "TimeoutError"]);
      await timing.finish();

      const cancelled = client.open();
      cancelled.send(requestHeaders("cancelled", "/"));
      await notify.at("/cancel", 1);
      cancelled.call.cancel();
      assert.deepEqual(await notify.at("/cancel", 2), ["started", "AbortError"]);
    } finally {
      client.close();
      await engine.stop();
      await notify.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

for (const transport of ["lean", "grpc-js"] as const) Deno.test(suite(transport));

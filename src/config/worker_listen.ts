/**
 * Where each data-plane worker listens. One worker listens on `listen.socket` (or
 * `listen.address`) itself. With `dataPlane.workers: N > 1`, worker i listens on
 * `<name>-<i><ext>` beside listen.socket (`extproc.sock` → `extproc-0.sock` … `extproc-<N-1>.sock`),
 * or over TCP on consecutive ports from listen.address's (Deno's reusePort listen option is
 * behind --unstable-net); Envoy lists each as an endpoint of its ext_proc cluster.
 */
import { basename, dirname, extname, join } from "node:path";
import type { ListenConfig } from "./types.ts";

/** The socket path of worker `index` of `workers` for a `listen.socket`. */
export function workerSocket(socket: string, index: number, workers: number): string {
  if (workers === 1) return socket;
  const ext = extname(socket);
  return join(dirname(socket), `${basename(socket, ext)}-${index}${ext}`);
}

/** The `host:port` of worker `index` of `workers` for a `listen.address`. */
export function workerAddress(address: string, index: number, workers: number): string {
  if (workers === 1) return address;
  const at = address.lastIndexOf(":");
  return `${address.slice(0, at)}:${Number(address.slice(at + 1)) + index}`;
}

/** The listen config of worker `index`. */
export function workerListen(listen: ListenConfig, index: number, workers: number): ListenConfig {
  return listen.kind === "unix"
    ? { ...listen, socket: workerSocket(listen.socket, index, workers) }
    : { ...listen, address: workerAddress(listen.address, index, workers) };
}

/** Every worker's listen config. */
export function workerListens(listen: ListenConfig, workers: number): ListenConfig[] {
  return Array.from({ length: workers }, (_, index) => workerListen(listen, index, workers));
}

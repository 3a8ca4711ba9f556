/**
 * The executor sockets of `python.processes`: one process serves on `python.socket` itself;
 * several serve on sockets derived from it beside it (`python.sock` → `python-0.sock`,
 * `python-1.sock`, …). The permission scope grants every socket any allowed process count
 * could use, so the baked-in flags stay one fixed list whatever the config says.
 */
import { basename, dirname, extname, join } from "node:path";

/** The most executor processes one engine runs (a config asking for more is rejected). */
export const MAX_PYTHON_PROCESSES = 8;

/** The socket of each of `processes` executor processes, derived from the configured one. */
export function pythonSockets(socket: string, processes: number): string[] {
  if (processes === 1) return [socket];
  const ext = extname(socket);
  const stem = basename(socket, ext);
  return Array.from({ length: processes }, (_, i) => join(dirname(socket), `${stem}-${i}${ext}`));
}

/** Every socket path an engine with `socket` configured may use, whatever `python.processes` is. */
export function allPythonSockets(socket: string): string[] {
  return [socket, ...pythonSockets(socket, MAX_PYTHON_PROCESSES)];
}

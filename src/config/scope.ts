/**
 * Checks a config against the permissions the process runs with, before anything starts:
 * a compiled binary may use only the sockets, address, interpreter and config directory it
 * was compiled for, and Deno's own error ("run again with the --allow-net flag") would be
 * misleading for a binary.
 */
import { dirname, resolve } from "node:path";
import type { AccessNeed } from "../registry/annotations.ts";
import type { Problem } from "./problem.ts";
import { pythonSockets } from "./python_sockets.ts";
import type { EngineConfig } from "./types.ts";
import { workerListens } from "./worker_listen.ts";

const ADVICE = "is outside the permissions this engine runs with: use the paths it was compiled for, " +
  "or compile it for this layout (docs/deployment.md)";

function granted(descriptor: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(descriptor).state === "granted";
}

/** Every setting the current permissions would refuse; empty when all are allowed. */
export function permissionProblems(
  config: EngineConfig,
  needsPython: boolean,
  configPath: string | undefined,
): Problem[] {
  const problems: Problem[] = [];
  const check = (ok: boolean, segments: string[], value: string) => {
    if (!ok) problems.push(config.locate(segments, `${value} ${ADVICE}`));
  };
  const { admin, python } = config;
  for (const listen of workerListens(config.listen, config.dataPlane.workers)) {
    if (listen.kind === "unix") {
      check(granted({ name: "net", host: `unix:${listen.socket}` }), ["listen", "socket"], listen.socket);
      check(
        granted({ name: "write", path: dirname(listen.socket) }),
        ["listen", "socket"],
        dirname(listen.socket),
      );
    } else {
      check(granted({ name: "net", host: listen.address }), ["listen", "address"], listen.address);
    }
  }
  if (admin.address !== undefined) {
    check(granted({ name: "net", host: admin.address }), ["admin", "address"], admin.address);
  }
  if (needsPython) {
    for (const socket of pythonSockets(python.socket, python.processes)) {
      check(granted({ name: "net", host: `unix:${socket}` }), ["python", "socket"], socket);
    }
    check(
      granted({ name: "run", command: python.interpreter }),
      ["python", "interpreter"],
      python.interpreter,
    );
  }
  if (config.tracing !== undefined) {
    // A refused export would only be logged, request after request: refuse the config instead.
    const host = urlHost(config.tracing.endpoint)!;
    check(granted({ name: "net", host }), ["tracing", "otlp", "endpoint"], `host ${host}`);
  }
  if (configPath !== undefined) {
    check(
      granted({ name: "read", path: dirname(configPath) }),
      [],
      `the config's directory ${dirname(configPath)}`,
    );
  }
  return problems;
}

/**
 * The directory a `write` need must be allowed to read and write: a policy writing a file
 * also creates and renames its siblings (rotated files), and checks their size.
 */
export function writeDirOf(path: string): string {
  return dirname(resolve(path));
}

/** `host:port` of an http(s) URL, as Deno's net permission names it; undefined if not such a URL. */
export function urlHost(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return undefined;
  return `${parsed.hostname}:${parsed.port || (parsed.protocol === "https:" ? "443" : "80")}`;
}

/**
 * The `host:port` a `net` or `tcp` need connects to, as Deno's net permission names it;
 * undefined for a file, or a URL that is not http(s).
 */
export function accessHost(need: AccessNeed): string | undefined {
  if (need.kind === "net") return urlHost(need.value);
  return need.kind === "tcp" ? need.value : undefined;
}

/**
 * Why the permissions refuse what a policy parameter names (a URL it fetches, a server it
 * connects to, a file it reads or writes); undefined when they allow it.
 */
export function accessProblem(need: AccessNeed): string | undefined {
  if (need.kind === "read") {
    return granted({ name: "read", path: need.value }) ? undefined : `file ${need.value} ${ADVICE}`;
  }
  if (need.kind === "write") {
    const dir = writeDirOf(need.value);
    const allowed = granted({ name: "write", path: dir }) && granted({ name: "read", path: dir });
    return allowed ? undefined : `directory ${dir} (to write ${need.value}) ${ADVICE}`;
  }
  const host = accessHost(need);
  if (host === undefined) return `${need.value} is not an http or https URL`;
  return granted({ name: "net", host }) ? undefined : `host ${host} ${ADVICE}`;
}

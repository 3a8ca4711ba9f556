/**
 * `deno task compile [options]`: builds Tollgate as one permission-scoped executable with
 * `deno compile`, and what it needs beside it at run time:
 *
 *   dist/tollgate          the binary: main.ts and the policies of build.yaml (regenerated first)
 *   dist/tollgate.yaml     a config for the same layout: the sockets, admin address, interpreter
 *                          and python home the binary may use, with the embedded default's routes
 *   dist/python-home/      what python.home must hold: the Python executor and SDK (python/),
 *                          the generated Python code and registry (src/gen/python/) and the
 *                          Python policies at their registry paths (installed as /opt/tollgate
 *                          in the image)
 *
 * A compiled binary keeps the permissions it was compiled with, and Deno grants Unix sockets
 * per exact path, so the layout is fixed at compile time. The flags come from
 * permissionFlags() (scripts/lib/permissions.ts, the single definition the tests and
 * `deno task dev` use too). The defaults are the image's layout; see USAGE for overrides and
 * docs/deployment.md for why each permission is needed.
 *
 * `deno compile` downloads its runtime (denort) on first use; for offline builds point
 * DENORT_BIN at a denort binary of the same Deno version.
 */
import { dirname, isAbsolute, join, normalize, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isMap, isScalar, parseDocument } from "yaml";
import { DEFAULT_CONFIG_YAML } from "../src/config/default_config.ts";
import { parseConfig } from "../src/config/load.ts";
import { formatProblem } from "../src/config/problem.ts";
import { buildManifest } from "./build.ts";
import { engineFlags, type PermissionLayout } from "./lib/permissions.ts";
import { repoRoot } from "./lib/venv.ts";

/** Where things are for one deployment of the compiled binary. */
export interface CompileOptions {
  /** Directory of the sockets (default of `socket` and `pythonSocket`). */
  readonly runtimeDir: string;
  /** ext_proc Unix socket; undefined when `listenAddress` is set. */
  readonly socket?: string;
  /** ext_proc on TCP (host:port) instead of a socket. */
  readonly listenAddress?: string;
  /** The Python executor's socket. */
  readonly pythonSocket: string;
  /** `dataPlane.workers`: each worker listens on its own socket (or port) when more than one. */
  readonly workers?: number;
  /** Directory of the config file (read, watched for hot reload). */
  readonly configDir: string;
  /** Admin endpoint (host:port): probes and metrics. */
  readonly admin: string;
  /** The Python interpreter the executor runs under. */
  readonly python: string;
  /** Where dist/python-home is installed (python.home); written to the config only. */
  readonly pythonHome: string;
  /** Hosts (`host:port`) policies may connect to, e.g. jwt-auth's JWKS URL, rate-limit's Redis server. */
  readonly policyHosts?: readonly string[];
  /** Files policies may read, e.g. key, secret and user files. */
  readonly policyFiles?: readonly string[];
  /** Directories policies may read and write, e.g. audit-log's log directory. */
  readonly policyWriteDirs?: readonly string[];
  /** The OTLP collector (host:port) of `tracing.otlp.endpoint`, when tracing is on. */
  readonly otlpHost?: string;
  /** `deno compile --target`, e.g. aarch64-unknown-linux-gnu. */
  readonly target?: string;
  /** The binary, relative to the repository root or absolute. */
  readonly output: string;
}

/** The image's layout (Dockerfile); `deno task compile` without options builds for it. */
export const IMAGE_LAYOUT = {
  runtimeDir: "/var/run/tollgate",
  configDir: "/etc/tollgate",
  admin: "0.0.0.0:9002",
  python: "/usr/bin/python3",
  pythonHome: "/opt/tollgate",
  output: "dist/tollgate",
} as const;

/** The module the binary is built from, and modules it loads that are not static imports. */
export const ENTRY = "main.ts";
export const INCLUDES: readonly string[] = [
  "src/validate.ts", // `tollgate validate` imports it lazily
  "src/dataplane/worker.ts", // the data-plane workers' module
  "src/gen/registry.ts", // the policies' code: the workers, validate and run import it by name
];

export const USAGE = `Usage: deno task compile [options]

Builds dist/tollgate (a binary whose permissions name exactly the paths below), plus
dist/tollgate.yaml (a config for the same paths) and dist/python-home/ (install it as the
python home). Defaults are the container image's layout.

Options:
  --runtime-dir DIR      directory of both sockets (default ${IMAGE_LAYOUT.runtimeDir})
  --socket PATH          ext_proc socket (default <runtime-dir>/extproc.sock)
  --listen-address H:P   serve ext_proc on TCP instead of a socket
  --python-socket PATH   Python executor socket (default <runtime-dir>/python.sock)
  --workers N            data-plane workers (dataPlane.workers, default 1): N > 1 grants each its own
                         socket, extproc-0.sock … beside --socket (or port after --listen-address's)
  --config-dir DIR       directory of the config file (default ${IMAGE_LAYOUT.configDir})
  --admin H:P            admin endpoint for probes and metrics (default ${IMAGE_LAYOUT.admin})
  --python PATH          Python interpreter (default ${IMAGE_LAYOUT.python})
  --python-home DIR      where dist/python-home will be installed (default ${IMAGE_LAYOUT.pythonHome})
  --policy-host H:P      a host policies may connect to, e.g. jwt-auth's jwksUrl or
                         rate-limit's redis.host:redis.port (repeatable)
  --policy-file PATH     a file policies may read, e.g. a keysFile or secretFile (repeatable)
  --policy-write-dir DIR a directory policies may write, e.g. audit-log's path's (repeatable)
  --otlp-host H:P        the OTLP collector of tracing.otlp.endpoint (spans are exported to it)
  --target TRIPLE        cross-compile (deno compile --target), e.g. aarch64-unknown-linux-gnu
  --output FILE          the binary (default ${IMAGE_LAYOUT.output})
  --dry-run              print the deno compile command and build nothing
  -h, --help             show this help

Offline: set DENORT_BIN to a denort binary of this Deno version (see docs/deployment.md).`;

/** A bad option; the message says which and why. */
export class CompileUsageError extends Error {
  override name = "CompileUsageError";
}

const HOST_PORT = /^[^\s:,]+:\d{1,5}$/; // as the config schema's host:port, without commas
/** Linux's limit for a Unix socket path (sun_path, 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

function checkPath(option: string, path: string): void {
  if (!isAbsolute(path)) throw new CompileUsageError(`--${option} must be an absolute path, got "${path}"`);
  if (path.includes(",")) {
    throw new CompileUsageError(
      `--${option} must not contain a comma (permission lists are comma-separated)`,
    );
  }
  if (normalize(path) !== path || (path.length > 1 && path.endsWith("/"))) {
    throw new CompileUsageError(
      `--${option} must be a normalized path without a trailing slash, got "${path}"`,
    );
  }
}

function checkSocket(option: string, path: string): void {
  checkPath(option, path);
  if (new TextEncoder().encode(path).length > MAX_SOCKET_PATH_BYTES) {
    throw new CompileUsageError(
      `--${option} is longer than ${MAX_SOCKET_PATH_BYTES} bytes (a Unix socket limit)`,
    );
  }
}

function checkAddress(option: string, address: string): void {
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  if (!HOST_PORT.test(address) || port < 1 || port > 65535) {
    throw new CompileUsageError(`--${option} must be host:port (e.g. 0.0.0.0:9002), got "${address}"`);
  }
}

/** Checks the options and derives the permission layout (throws CompileUsageError). */
export function compileLayout(options: CompileOptions): PermissionLayout {
  checkPath("runtime-dir", options.runtimeDir);
  if (options.socket !== undefined && options.listenAddress !== undefined) {
    throw new CompileUsageError("set either --socket or --listen-address, not both");
  }
  if (options.socket !== undefined) checkSocket("socket", options.socket);
  if (options.listenAddress !== undefined) checkAddress("listen-address", options.listenAddress);
  checkSocket("python-socket", options.pythonSocket);
  checkPath("config-dir", options.configDir);
  checkAddress("admin", options.admin);
  checkPath("python", options.python);
  checkPath("python-home", options.pythonHome);
  for (const host of options.policyHosts ?? []) checkAddress("policy-host", host);
  for (const file of options.policyFiles ?? []) checkPath("policy-file", file);
  for (const dir of options.policyWriteDirs ?? []) checkPath("policy-write-dir", dir);
  if (options.otlpHost !== undefined) checkAddress("otlp-host", options.otlpHost);
  if (options.listenAddress !== undefined && options.listenAddress === options.admin) {
    throw new CompileUsageError("--listen-address and --admin must differ");
  }
  const sockets = [options.socket, options.pythonSocket].filter((s): s is string => s !== undefined);
  if (new Set(sockets).size !== sockets.length) {
    throw new CompileUsageError("--socket and --python-socket must differ");
  }
  return {
    // The engine creates and removes the socket files, so it needs their directories.
    runtimeDirs: [...new Set(sockets.map((s) => dirname(s)))],
    extprocSocket: options.socket,
    extprocAddress: options.listenAddress,
    extprocWorkers: options.workers,
    pythonSocket: options.pythonSocket,
    adminAddress: options.admin,
    configDir: options.configDir,
    python: options.python,
    policyHosts: options.policyHosts,
    policyFiles: options.policyFiles,
    policyWriteDirs: options.policyWriteDirs,
    tracingHost: options.otlpHost,
  };
}

/**
 * The `deno compile` arguments (after `deno`) for the options: engineFlags() for the layout
 * (the permission flags of permissionFlags() and the engine's V8 settings), nothing broader.
 */
export function compileArgs(options: CompileOptions): string[] {
  return [
    "compile",
    // A compiled binary must fail on a missing permission, never wait on a prompt.
    "--no-prompt",
    ...engineFlags(compileLayout(options)),
    // The lockfile decides every dependency version; an outdated one is an error.
    "--frozen",
    // Embed only the npm packages main.ts reaches (not the build tools' TypeScript compiler).
    "--exclude-unused-npm",
    ...INCLUDES.flatMap((file) => ["--include", file]),
    ...(options.target ? ["--target", options.target] : []),
    "--output",
    options.output,
    ENTRY,
  ];
}

/** Parses the task's command line; undefined for --help. */
export function parseCompileOptions(
  args: string[],
): { options: CompileOptions; dryRun: boolean } | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        "runtime-dir": { type: "string" },
        socket: { type: "string" },
        "listen-address": { type: "string" },
        "python-socket": { type: "string" },
        workers: { type: "string" },
        "config-dir": { type: "string" },
        admin: { type: "string" },
        python: { type: "string" },
        "python-home": { type: "string" },
        "policy-host": { type: "string", multiple: true },
        "policy-file": { type: "string", multiple: true },
        "policy-write-dir": { type: "string", multiple: true },
        "otlp-host": { type: "string" },
        target: { type: "string" },
        output: { type: "string", short: "o" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new CompileUsageError((error as Error).message);
  }
  if (values.help) return undefined;
  const trim = (path: string) => path.length > 1 ? path.replace(/\/+$/, "") : path;
  const runtimeDir = trim(values["runtime-dir"] ?? IMAGE_LAYOUT.runtimeDir);
  const listenAddress = values["listen-address"];
  const options: CompileOptions = {
    runtimeDir,
    socket: values.socket ?? (listenAddress === undefined ? join(runtimeDir, "extproc.sock") : undefined),
    listenAddress,
    pythonSocket: values["python-socket"] ?? join(runtimeDir, "python.sock"),
    workers: values.workers === undefined ? undefined : workerCount(values.workers),
    configDir: trim(values["config-dir"] ?? IMAGE_LAYOUT.configDir),
    admin: values.admin ?? IMAGE_LAYOUT.admin,
    python: values.python ?? IMAGE_LAYOUT.python,
    pythonHome: trim(values["python-home"] ?? IMAGE_LAYOUT.pythonHome),
    policyHosts: values["policy-host"],
    policyFiles: values["policy-file"],
    policyWriteDirs: values["policy-write-dir"]?.map(trim),
    otlpHost: values["otlp-host"],
    target: values.target,
    output: values.output ?? IMAGE_LAYOUT.output,
  };
  compileLayout(options);
  return { options, dryRun: values["dry-run"] ?? false };
}

function workerCount(text: string): number {
  const count = Number(text);
  if (!Number.isInteger(count) || count < 1 || count > 64) {
    throw new CompileUsageError("--workers must be an integer from 1 to 64");
  }
  return count;
}

/** The image's options (what `deno task compile` builds without arguments). */
export function imageOptions(): CompileOptions {
  return parseCompileOptions([])!.options;
}

const CONFIG_HEADER = [
  " Tollgate config for the layout its binary was compiled for (generated by `deno task compile`).",
  " The binary may use only the sockets, admin address and interpreter named here: a config",
  " naming others fails at startup with a permission error. Routes are the embedded default's",
  " samples (they match docs/examples/envoy.yaml); replace them with yours. See",
  " docs/configuration.md and docs/deployment.md.",
].join("\n");

/**
 * A config for the layout: the embedded default config with the layout's sockets, admin
 * address, interpreter and python home, logging JSON lines. Checked against the config
 * schema before it is returned.
 */
export function renderConfig(options: CompileOptions): string {
  compileLayout(options);
  const doc = parseDocument(DEFAULT_CONFIG_YAML);
  const root = doc.contents;
  if (!isMap(root)) throw new Error("the embedded default config is not a mapping");
  // The default's own heading comment sits on its first key.
  const first = root.items[0]?.key;
  if (isScalar(first)) first.commentBefore = undefined;
  doc.commentBefore = CONFIG_HEADER;
  if (options.socket !== undefined) {
    doc.setIn(["listen", "socket"], options.socket);
  } else {
    doc.deleteIn(["listen", "socket"]);
    doc.setIn(["listen", "address"], options.listenAddress);
  }
  if (options.workers !== undefined) doc.setIn(["dataPlane", "workers"], options.workers);
  doc.setIn(["admin", "address"], options.admin);
  doc.setIn(["python", "socket"], options.pythonSocket);
  doc.setIn(["python", "interpreter"], options.python);
  doc.setIn(["python", "home"], options.pythonHome);
  doc.setIn(["log", "format"], "json");
  // Keep the sections in the documented order: listen, dataPlane, admin, python, log, ..., routes.
  const order = ["listen", "dataPlane", "admin", "python", "log"];
  const rank = (key: unknown) => {
    const index = order.indexOf(String(isScalar(key) ? key.value : key));
    return index === -1 ? order.length : index;
  };
  root.items.sort((a, b) => rank(a.key) - rank(b.key));
  const text = doc.toString({ flowCollectionPadding: false, lineWidth: 0 });

  const config = parseConfig(text, "tollgate.yaml", {}, {
    pythonInterpreter: options.python,
    pythonHome: options.pythonHome,
  });
  const listens = config.listen.kind === "unix"
    ? config.listen.socket === options.socket
    : config.listen.address === options.listenAddress;
  if (
    !listens || config.admin.address !== options.admin || config.python.socket !== options.pythonSocket ||
    config.python.interpreter !== options.python || config.python.home !== options.pythonHome ||
    config.dataPlane.workers !== (options.workers ?? 1)
  ) {
    throw new Error("the generated config does not match the layout");
  }
  return text;
}

/** Files that never go into the python home. */
const SKIPPED = new Set(["__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"]);

async function copyTree(from: string, to: string): Promise<void> {
  const info = await Deno.stat(from);
  if (!info.isDirectory) {
    await Deno.mkdir(dirname(to), { recursive: true });
    await Deno.copyFile(from, to);
    return;
  }
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (SKIPPED.has(entry.name) || entry.name.endsWith(".pyc")) continue;
    await copyTree(join(from, entry.name), join(to, entry.name));
  }
}

/** The Python registry the engine passes to the executor, relative to python.home. */
export const PYTHON_REGISTRY = "src/gen/python/policy_registry.py";

/**
 * The policy directories a generated Python registry names (its "path" fields, written by
 * scripts/lib/codegen.ts as JSON strings), each checked to lie inside the python home.
 */
export function pythonPolicyPaths(registryText: string): string[] {
  const paths = [...registryText.matchAll(/"path":\s*("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]));
  for (const path of paths) {
    if (isAbsolute(path) || normalize(path).startsWith("..") || normalize(path) !== path) {
      throw new Error(
        `${PYTHON_REGISTRY}: policy path "${path}" is not inside the repository, so it cannot be laid out ` +
          "under python.home (keep TOLLGATE_CACHE_DIR inside the repository when building)",
      );
    }
  }
  return paths;
}

/**
 * Lays out what python.home must hold under `dest` (replaced): python/executor, python/sdk,
 * python/requirements.txt, src/gen/python/ and every Python policy at its registry path.
 * Returns the policy paths.
 */
export async function stagePythonHome(dest: string, root: string = repoRoot): Promise<string[]> {
  await Deno.remove(dest, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  for (const part of ["python/executor", "python/sdk", "python/requirements.txt", "src/gen/python"]) {
    await copyTree(join(root, part), join(dest, part));
  }
  const policies = pythonPolicyPaths(await Deno.readTextFile(join(root, PYTHON_REGISTRY)));
  for (const path of policies) {
    if (!await Deno.stat(join(root, path, "policy.py")).then(() => true, () => false)) {
      throw new Error(`${PYTHON_REGISTRY}: ${path} has no policy.py (run deno task build)`);
    }
    await copyTree(join(root, path), join(dest, path));
  }
  return policies;
}

const quote = (arg: string) => /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCompileOptions(Deno.args);
  } catch (error) {
    if (!(error instanceof CompileUsageError)) throw error;
    console.error(`compile: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === undefined) {
    console.log(USAGE);
    return 0;
  }
  const { options, dryRun } = parsed;
  const args = compileArgs(options);
  if (dryRun) {
    console.log(["deno", ...args].map(quote).join(" "));
    return 0;
  }

  const problems = await buildManifest("build.yaml", "src/gen");
  if (problems.length > 0) {
    problems.forEach((p) => console.error(formatProblem(p)));
    console.error("compile: the build manifest has problems; nothing was compiled");
    return 2;
  }
  const output = resolve(repoRoot, options.output);
  const outDir = dirname(output);
  await Deno.mkdir(outDir, { recursive: true });
  const policies = await stagePythonHome(join(outDir, "python-home"));
  await Deno.writeTextFile(`${output}.yaml`, renderConfig(options));
  console.error(`compile: ${join(outDir, "python-home")} (${policies.length} Python policies)`);
  console.error(`compile: ${output}.yaml`);

  console.error(`compile: deno ${args.map(quote).join(" ")}`);
  const status = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: repoRoot,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) {
    console.error(
      "compile: deno compile failed. If it could not download its runtime (denort) because this machine\n" +
        "is offline, set DENORT_BIN to a denort binary of the same Deno version (docs/deployment.md).",
    );
    return 1;
  }
  console.error(`compile: ${output}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());

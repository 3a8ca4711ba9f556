/**
 * The `tollgate` command line: `serve` (default), `validate`, `run`, `config print-default`,
 * `version`. Exit codes:
 *   0  success
 *   1  runtime failure (e.g. the socket is owned by another live process, bind failed)
 *   2  invalid usage, config, policy definitions or manifest, or a policy that cannot be
 *      loaded (e.g. a Python policy failing to import): a restart will not fix it
 */
import { parseArgs } from "node:util";
import denoConfig from "../deno.json" with { type: "json" };
import { formatProblem, ProblemsError } from "./config/problem.ts";
import { DEFAULT_CONFIG_YAML } from "./config/default_config.ts";
import { readConfigEnv } from "./config/load.ts";
import { type CliBuild, configDefaults, EXIT } from "./cli_build.ts";
import { Engine } from "./engine.ts";
import { SocketInUseError } from "./transport/unix_socket.ts";

const USAGE: Record<string, string> = {
  main: `tollgate ${denoConfig.version}: a policy engine for Envoy (ext_proc)

Usage: tollgate [command] [options]

Commands:
  serve      run the engine (default)
  validate   check a config against the compiled-in policies without serving
  run        run one route's chain against a request from a file, without Envoy
  config     print-default: print the embedded default config
  version    print the version, the Deno version and the compiled-in policies

Run "tollgate <command> --help" for a command's options.
Exit codes: 0 ok, 1 runtime failure, 2 invalid usage, config or policies (including a
policy that fails to load).`,
  serve: `Usage: tollgate serve [--config PATH]

Runs the ext_proc server. Without --config it serves the embedded default config.
The config file is watched; valid changes apply without a restart.

Options:
  -c, --config PATH   engine config (YAML, see docs/configuration.md)
  -h, --help          show this help

Environment: TOLLGATE_SOCKET, TOLLGATE_PYTHON_SOCKET, TOLLGATE_LOG_LEVEL,
TOLLGATE_PYTHON, TOLLGATE_PYTHON_HOME, TOLLGATE_ADMIN_ADDRESS override the
config file.
Signals: SIGTERM or SIGINT stop accepting streams, drain in-flight ones within
shutdown.gracePeriod, and remove the socket.`,
  validate: `Usage: tollgate validate [--config PATH]

Checks a config (default: the embedded one) against the compiled-in policies:
unknown policies or versions, parameters against their schemas, \${config}
references; and that every Python policy loads under python.interpreter.
Prints every problem with file, line and path; exits 2 if any.

Options:
  -c, --config PATH   engine config to check
  -h, --help          show this help`,
  run: `Usage: tollgate run [--config PATH] --route NAME --request FILE [--response FILE] [--json]

Runs the chain of route NAME (the embedded default config without --config)
against the request in FILE, as the engine would behind Envoy: parameters
validated, conditions evaluated, Python policies in a real executor
(python.interpreter, or TOLLGATE_PYTHON). Prints the request the upstream
would receive, the response the client would receive and each policy's
decision. Nothing is sent anywhere: the upstream's answer is --response
(default: 200 without a body).

Request file (JSON or YAML): method, path, authority, scheme, headers
(name: value or [values]), body (text, or any JSON value sent as JSON),
clientAddress, attributes, requestId. Response file: status, headers, body.

Options:
  -c, --config PATH   engine config (default: the embedded one)
  -r, --route NAME    the route whose chain runs
      --request FILE  the client's request
      --response FILE the upstream's response
      --json          print the result as JSON
  -h, --help          show this help`,
  config: `Usage: tollgate config print-default

Prints the embedded default config (what serve runs without --config), a
starting point for your own: docs/examples/tollgate.yaml is a complete one.`,
  version: `Usage: tollgate version

Prints the Tollgate version, the Deno version and the compiled-in policies.`,
};

/** The options only `run` takes (refused for the other commands by checkUsage). */
const RUN_OPTIONS = {
  route: { type: "string", short: "r" },
  request: { type: "string" },
  response: { type: "string" },
  json: { type: "boolean" },
} as const;

function printProblems(error: ProblemsError): void {
  console.error(error.summary);
  for (const problem of error.problems) console.error(`  ${formatProblem(problem)}`);
}

async function serve(configPath: string | undefined, build: CliBuild): Promise<number> {
  const engine = await Engine.start({
    policies: build.policies,
    registryModule: build.registryModule,
    pythonRegistry: build.pythonRegistry,
    configPath,
    env: readConfigEnv(),
    defaults: configDefaults(),
  });
  // Repeated signals (a terminal's Ctrl-C reaches both `deno task` and the engine) are
  // ignored while the graceful stop runs; SIGKILL remains the way to force an exit.
  const stopped = Promise.withResolvers<void>();
  const onSignal = () => stopped.resolve();
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  await stopped.promise;
  await engine.stop();
  return EXIT.ok;
}

/** What is wrong with a command's arguments beyond their syntax, if anything. */
function checkUsage(
  command: string,
  values: { config?: string; route?: string; request?: string; response?: string; json?: boolean },
  positionals: readonly string[],
): string | undefined {
  if (command !== "run") {
    const runOnly = Object.keys(RUN_OPTIONS).find((name) =>
      values[name as keyof typeof RUN_OPTIONS] !== undefined
    );
    if (runOnly) return `Unknown option '--${runOnly}'`;
  }
  if (command === "run") {
    if (!values.route) return "run needs --route NAME";
    if (!values.request) return "run needs --request FILE";
  }
  if (command === "config") {
    if (positionals.length !== 1 || positionals[0] !== "print-default") {
      return `config takes one subcommand, print-default${
        positionals.length ? ` (got ${positionals.join(" ")})` : ""
      }`;
    }
    if (values.config) return "config print-default takes no --config";
  }
  return undefined;
}

/** Runs the command line; returns the process exit code. */
export async function runCli(args: string[], build: CliBuild): Promise<number> {
  const command = args[0] && !args[0].startsWith("-") ? args[0] : "serve";
  const rest = args[0] === command ? args.slice(1) : args;
  if (!(command in USAGE) || command === "main") {
    console.error(`unknown command "${command}"\n\n${USAGE.main}`);
    return EXIT.invalid;
  }
  let values: {
    config?: string;
    help?: boolean;
    route?: string;
    request?: string;
    response?: string;
    json?: boolean;
  };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
        ...RUN_OPTIONS,
      },
      strict: true,
      allowPositionals: command === "config",
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE[command]}`);
    return EXIT.invalid;
  }
  if (values.help) {
    console.log(args.length === 1 && args[0].startsWith("-") ? USAGE.main : USAGE[command]);
    return EXIT.ok;
  }
  const usageError = checkUsage(command, values, positionals);
  if (usageError) {
    console.error(`${usageError}\n\n${USAGE[command]}`);
    return EXIT.invalid;
  }
  try {
    switch (command) {
      case "config":
        console.log(DEFAULT_CONFIG_YAML.trimEnd());
        return EXIT.ok;
      case "run":
        return await (await import("./run.ts")).runRoute({
          config: values.config,
          route: values.route!,
          request: values.request!,
          response: values.response,
          json: values.json === true,
        }, build);
      case "version":
        console.log(`tollgate ${denoConfig.version}`);
        console.log(
          `deno ${Deno.version.deno} (v8 ${Deno.version.v8}, typescript ${Deno.version.typescript})`,
        );
        console.log("policies:");
        for (const p of build.policies) {
          console.log(`  ${p.definition.name} ${p.definition.version} (${p.definition.runtime})`);
        }
        return EXIT.ok;
      case "validate":
        return await (await import("./validate.ts")).validateConfig(values.config, build);
      default:
        return await serve(values.config, build);
    }
  } catch (error) {
    if (error instanceof ProblemsError) {
      printProblems(error);
      return EXIT.invalid;
    }
    if (error instanceof SocketInUseError) {
      console.error(`tollgate: ${error.message}`);
      return EXIT.failure;
    }
    console.error(`tollgate: ${error instanceof Error ? error.stack ?? error.message : error}`);
    return EXIT.failure;
  }
}

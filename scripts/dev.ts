/**
 * `deno task dev [--config PATH]`: generates the registry and prepares .venv (installing the
 * policies' requirements when they changed) if needed, then runs the engine with the
 * production permission flags for this checkout's layout, which grants the hosts and files
 * the config's policies name (scripts/lib/engine_layout.ts). Signals are passed on, so
 * Ctrl-C is a graceful shutdown.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatProblem, ProblemsError } from "../src/config/problem.ts";
import { buildManifest } from "./build.ts";
import { layoutForConfig } from "./lib/engine_layout.ts";
import { engineFlags } from "./lib/permissions.ts";
import { repoRoot, venvPython } from "./lib/venv.ts";
import { setup } from "./setup.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { config: { type: "string", short: "c" } },
});

const problems = await buildManifest("build.yaml", "src/gen");
if (problems.length > 0) {
  problems.forEach((p) => console.error(formatProblem(p)));
  Deno.exit(2);
}
// After the build: it writes the policies' merged requirements, which setup installs when changed.
await setup();
let layout;
try {
  layout = await layoutForConfig(values.config);
} catch (error) {
  if (!(error instanceof ProblemsError)) throw error;
  console.error(error.message);
  Deno.exit(2);
}
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    ...engineFlags(layout),
    join(repoRoot, "main.ts"),
    "serve",
    ...(values.config ? ["--config", values.config] : []),
  ],
  env: { TOLLGATE_PYTHON: venvPython },
}).spawn();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    try {
      child.kill(signal);
    } catch {
      // already exiting
    }
  });
}
Deno.exit((await child.status).code);

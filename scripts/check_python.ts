/**
 * Python half of `deno task check`: formatting (ruff format), lint (ruff check) and types
 * (mypy --strict, configured in python/pyproject.toml) for the executor, the SDK and every
 * Python policy, the test fixtures' included.
 *
 * mypy runs once per policy directory: every policy's module is named `policy`, and one
 * mypy run cannot hold two modules of the same name.
 */
import { join, relative } from "node:path";
import { repoRoot, run, venvBin } from "./lib/venv.ts";
import { setup } from "./setup.ts";

const RUFF_TARGETS = ["python", "policies", "tests/fixtures/policies"];
/** The seed's Appendix A sample, kept verbatim: its `params: dict` is not strict-clean. */
const VERBATIM = new Set(["policies/add-python-header"]);

async function pythonPolicyDirs(): Promise<string[]> {
  const dirs: string[] = [];
  for (const parent of ["policies", "tests/fixtures/policies"]) {
    for await (const entry of Deno.readDir(join(repoRoot, parent))) {
      const dir = join(repoRoot, parent, entry.name);
      if (entry.isDirectory && await Deno.stat(join(dir, "policy.py")).then(() => true, () => false)) {
        dirs.push(relative(repoRoot, dir));
      }
    }
  }
  return dirs.sort();
}

await setup();
const opts = { cwd: repoRoot };
const mypy = ["--config-file", join(repoRoot, "python", "pyproject.toml")];
await run(venvBin("ruff"), ["format", "--check", ...RUFF_TARGETS], opts);
await run(venvBin("ruff"), ["check", ...RUFF_TARGETS], opts);
await run(venvBin("mypy"), [...mypy, "python"], opts);
for (const dir of await pythonPolicyDirs()) {
  const relaxed = VERBATIM.has(dir) ? ["--allow-any-generics"] : [];
  await run(venvBin("mypy"), [...mypy, ...relaxed, join(dir, "policy.py")], opts);
}

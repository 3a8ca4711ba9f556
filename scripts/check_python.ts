/**
 * Python half of `deno task check`: formatting (ruff format), lint (ruff check) and types
 * (mypy --strict) for the executor, the SDK and the Python policies.
 */
import { join } from "node:path";
import { repoRoot, run, venvBin } from "./lib/venv.ts";
import { setup } from "./setup.ts";

const targets = ["python", "policies"];

await setup();
const opts = { cwd: repoRoot };
await run(venvBin("ruff"), ["format", "--check", ...targets], opts);
await run(venvBin("ruff"), ["check", ...targets], opts);
await run(venvBin("mypy"), ["--config-file", join(repoRoot, "python", "pyproject.toml"), ...targets], opts);

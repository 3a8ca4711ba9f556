/**
 * Locations of the project's Python virtual environment (.venv), shared by the setup,
 * codegen, test and benchmark scripts.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot: string = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
export const venvDir: string = join(repoRoot, ".venv");
export const venvPython: string = join(venvDir, "bin", "python3");
export const venvBin = (tool: string): string => join(venvDir, "bin", tool);

/** Runs a command, streaming its output, and throws with the command line if it fails. */
export async function run(cmd: string, args: string[], options: Deno.CommandOptions = {}): Promise<void> {
  const status = await new Deno.Command(cmd, { stdout: "inherit", stderr: "inherit", ...options, args })
    .spawn().status;
  if (!status.success) {
    throw new Error(`command failed (exit ${status.code}): ${cmd} ${args.join(" ")}`);
  }
}

/** Runs a Deno script of this repository as a child process and captures its output. */
import { repoRoot } from "../../scripts/lib/venv.ts";

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runDeno(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: repoRoot, env: { NO_COLOR: "1", ...env } })
    .output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/**
 * Type-checks TypeScript policies with `deno check` (a subprocess, with the repository's
 * deno.json so `@tollgate/sdk` resolves as in the build) and turns its diagnostics into
 * problems with file, line and column: a typo such as `setHeader:` for `setHeaders:` is
 * caught before the policy ever sees traffic.
 */
import { fileURLToPath } from "node:url";
import type { Problem } from "../../src/config/problem.ts";

/** One diagnostic: `TS2561 [ERROR]: message` ... `    at file:///path:line:col`. */
const DIAGNOSTIC = /^(TS\d+) \[ERROR\]: (.*)$/;
const LOCATION = /^\s+at (file:\/\/\S+?):(\d+):(\d+)$/;

/** Problems from `deno check` output (without colours). */
export function parseDiagnostics(output: string, display: (file: string) => string): Problem[] {
  const problems: Problem[] = [];
  let pending: { code: string; message: string } | undefined;
  for (const line of output.split("\n")) {
    const diagnostic = DIAGNOSTIC.exec(line);
    if (diagnostic) {
      pending = { code: diagnostic[1], message: diagnostic[2] };
      continue;
    }
    const location = LOCATION.exec(line);
    if (location && pending) {
      problems.push({
        file: display(fileURLToPath(location[1])),
        path: "",
        line: Number(location[2]),
        column: Number(location[3]),
        message: `type error ${pending.code}: ${pending.message}`,
      });
      pending = undefined;
    }
  }
  return problems;
}

/**
 * Runs `deno check` on the files; returns their type errors (empty when they check). A
 * failure that yields no diagnostic (a module that cannot be resolved) is one problem.
 */
export async function typeCheck(
  files: readonly string[],
  config: string,
  display: (file: string) => string,
): Promise<Problem[]> {
  if (files.length === 0) return [];
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", "--config", config, ...files],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  if (output.success) return [];
  const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
  const problems = parseDiagnostics(text, display);
  if (problems.length > 0) return problems;
  const reason = text.split("\n").find((l) => l.startsWith("error:")) ?? text.trim().split("\n")[0];
  const at = text.split("\n").map((l) => LOCATION.exec(l)).find((m) => m !== null);
  return [{
    file: at ? display(fileURLToPath(at[1])) : files.map(display).join(", "),
    path: "",
    ...(at ? { line: Number(at[2]), column: Number(at[3]) } : {}),
    message: `deno check failed: ${reason.replace(/^error: /, "")}`,
  }];
}

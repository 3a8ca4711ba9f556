/**
 * `deno task docs:policies [--check]`: renders docs/policy-reference.md from every policy of
 * build.yaml (see scripts/lib/policy_reference.ts). With --check, writes nothing and exits 1
 * if the file is not what the policies give.
 */
import { join } from "node:path";
import { formatProblem } from "../src/config/problem.ts";
import { readOptional } from "./lib/discover.ts";
import { discoverManifest } from "./build.ts";
import { type PolicyDocSource, renderReference } from "./lib/policy_reference.ts";
import { repoRoot } from "./lib/venv.ts";

export const REFERENCE_FILE = join(repoRoot, "docs/policy-reference.md");
const MANIFEST = "build.yaml";

/** Formats Markdown as `deno fmt` would, so the generated file passes `task check`. */
async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "md", "-"],
    cwd: repoRoot,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** The reference for the default build, formatted. */
export async function policyReference(): Promise<string> {
  const { built, problems } = await discoverManifest(join(repoRoot, MANIFEST));
  if (problems.length > 0) throw new Error(problems.map(formatProblem).join("\n"));
  const sources: PolicyDocSource[] = [];
  for (const { policy, origin } of built) {
    sources.push({
      definition: policy.definition,
      example: await readOptional(join(policy.dir, "example.yaml")),
      docs: await readOptional(join(policy.dir, "docs.md")),
      origin,
    });
  }
  return await formatMarkdown(renderReference(sources, MANIFEST));
}

if (import.meta.main) {
  const expected = await policyReference();
  if (Deno.args.includes("--check")) {
    if (await readOptional(REFERENCE_FILE) !== expected) {
      console.error("docs/policy-reference.md is stale: run `deno task docs:policies`");
      Deno.exit(1);
    }
  } else {
    await Deno.writeTextFile(REFERENCE_FILE, expected);
    console.log("docs:policies: wrote docs/policy-reference.md");
  }
}

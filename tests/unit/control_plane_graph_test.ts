/**
 * The control plane (the main thread) loads the build's policy definitions, not the policies:
 * their code and libraries are the data-plane workers' (issue 11, memory); the Python
 * executor's code only when the build has Python policies. Read from the
 * module graph `deno info` reports, following static imports only (what loads at start-up).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot } from "../../scripts/lib/venv.ts";

interface ModuleInfo {
  readonly specifier: string;
  readonly dependencies?: readonly {
    readonly code?: { readonly specifier?: string };
    readonly isDynamic?: boolean;
  }[];
}

/** Every module an entry point loads before its first line runs. */
async function staticGraph(entry: string): Promise<Set<string>> {
  const { stdout, success } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: repoRoot,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.ok(success, `deno info ${entry} failed`);
  const info = JSON.parse(new TextDecoder().decode(stdout)) as { roots: string[]; modules: ModuleInfo[] };
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [...info.roots];
  while (stack.length > 0) {
    const specifier = stack.pop()!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    for (const dep of modules.get(specifier)?.dependencies ?? []) {
      if (!dep.isDynamic && dep.code?.specifier) stack.push(dep.code.specifier);
    }
  }
  return seen;
}

/** Libraries only policies use. */
const POLICY_LIBRARIES = /^npm:\/?(jose|hash-wasm|re2js|cel-js|ipaddr\.js|lru-cache|@redis\/client)@/;

for (const entry of ["main.ts", "tests/support/test_main.ts"]) {
  Deno.test(`${entry} loads no policy module and no policy library at start-up`, async () => {
    const graph = [...await staticGraph(join(repoRoot, entry))];
    assert.deepEqual(graph.filter((s) => s.includes("/policies/") || s.includes("/tests/fixtures/")), []);
    assert.deepEqual(graph.filter((s) => POLICY_LIBRARIES.test(s)), []);
    assert.ok(graph.some((s) => s.endsWith("/definitions.ts")), "the definitions module is loaded");
    assert.ok(!graph.some((s) => s.endsWith("/gen/registry.ts") || s.endsWith("/gen/test/registry.ts")));
    // The Python executor's supervisor, client and codecs load only for a build with Python policies.
    assert.deepEqual(
      graph.filter((s) => /\/python\/(runtime|supervisor|client)\.ts$|executor_pb\.ts$/.test(s)),
      [],
    );
  });
}

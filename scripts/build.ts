/**
 * The builder: reads a build manifest (build.yaml), discovers its policies and generates
 * the registries under src/gen/ (see docs/policies.md):
 *
 *   <out>/definitions.ts              every policy's definition, no policy code (the control plane's)
 *   <out>/registry.ts                 the definitions with static imports of the TypeScript policies
 *   <out>/python/policy_registry.py   Python policies: registry key -> directory
 *   <out>/python/requirements.txt     merged requirements of the Python policies
 *   <out>/params.ts                   each policy's parameter type, from its JSON Schemas
 *
 * Files are rewritten only when their content changes. With no arguments it builds the
 * default manifest and the test manifest; `--manifest FILE --out DIR` builds one.
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatProblem, type Problem } from "../src/config/problem.ts";
import { registryKey } from "../src/registry/definition.ts";
import { codeOf, discoverPolicy, packageEntry, type PolicyCode } from "./lib/discover.ts";
import { type ManifestEntry, parseManifest } from "./lib/manifest.ts";
import {
  type BuiltPolicy,
  HEADER,
  relativeImport,
  renderDefinitionsModule,
  renderPythonRegistry,
  renderRegistryModule,
  renderRequirements,
} from "./lib/codegen.ts";
import { fetchNpmPackage, fetchPythonModule } from "./lib/fetch_policy.ts";
import { repoRoot } from "./lib/venv.ts";

/** The manifests `deno task build` builds by default, and where their output goes. */
export const DEFAULT_TARGETS = [
  { manifest: "build.yaml", out: "src/gen" },
  { manifest: "tests/fixtures/build.yaml", out: "src/gen/test" },
];

async function locate(
  entry: ManifestEntry,
  manifestDir: string,
): Promise<{ dir: string; origin: string; npm?: string }> {
  const { source } = entry;
  switch (source.kind) {
    case "filePath": {
      const dir = isAbsolute(source.path) ? source.path : resolve(manifestDir, source.path);
      return { dir, origin: displayPath(dir) };
    }
    case "pythonmodule": {
      const where = `github.com/${source.owner}/${source.repo}${
        source.path ? `/${source.path}` : ""
      }@${source.tag}`;
      return { dir: await fetchPythonModule(source), origin: where };
    }
    case "npm":
      return { dir: await fetchNpmPackage(source), origin: source.specifier, npm: source.specifier };
  }
}

/** Paths inside the repository are shown relative to it. */
export function displayPath(file: string): string {
  const inside = relative(repoRoot, file);
  return inside.startsWith("..") ? file : inside;
}

/** What a manifest's discovery found. */
export interface DiscoveredManifest {
  readonly built: BuiltPolicy[];
  readonly problems: Problem[];
  /** The code of the policies whose definitions have problems (validate still checks it). */
  readonly unbuilt: PolicyCode[];
}

/** Discovers every entry; returns the built policies and every problem found. */
export async function discoverManifest(manifestFile: string): Promise<DiscoveredManifest> {
  const problems: Problem[] = [];
  const built: BuiltPolicy[] = [];
  const unbuilt: PolicyCode[] = [];
  const text = await Deno.readTextFile(manifestFile).catch((error) => {
    problems.push({ file: manifestFile, path: "", message: `cannot read: ${error.message}` });
    return undefined;
  });
  if (text === undefined) return { built, problems, unbuilt };
  const manifest = parseManifest(text, relative(repoRoot, manifestFile));
  problems.push(...manifest.problems);
  const seen = new Map<string, string>();
  for (const entry of manifest.entries) {
    let where;
    try {
      where = await locate(entry, dirname(manifestFile));
    } catch (error) {
      problems.push(entry.problemAt(entry.source.kind, `cannot fetch: ${(error as Error).message}`));
      continue;
    }
    const moduleFile = where.npm ? await packageEntry(where.dir) ?? join(where.dir, "index.js") : undefined;
    const found = await discoverPolicy(where.dir, moduleFile);
    if (Array.isArray(found)) {
      problems.push(
        ...found.map((p) => ({ ...p, file: displayPath(p.file), message: `${entry.label}: ${p.message}` })),
      );
      const code = await codeOf(where.dir, moduleFile);
      if (code) unbuilt.push(code);
      continue;
    }
    const { definition } = found;
    if (definition.name !== entry.name) {
      problems.push(entry.problemAt("name", `the policy in ${where.origin} is named ${definition.name}`));
      continue;
    }
    if (where.npm && definition.runtime !== "typescript") {
      problems.push(entry.problemAt("npm", "npm entries must be TypeScript policies"));
      continue;
    }
    const key = registryKey(definition.name, definition.version);
    const previous = seen.get(key);
    if (previous) {
      problems.push(entry.problemAt("name", `duplicate registry key ${key} (also ${previous})`));
      continue;
    }
    seen.set(key, entry.label);
    built.push({
      policy: found,
      origin: where.origin,
      importSpecifier: definition.runtime === "typescript" ? where.npm ?? found.moduleFile : undefined,
      pythonPath: definition.runtime === "python" ? displayPath(where.dir) : undefined,
    });
  }
  return { built, problems, unbuilt };
}

/**
 * The parameter types module. Loaded only here: json-schema-to-typescript formats with
 * prettier, which reads the CPU count when imported (`--allow-sys=cpus` in the tasks that
 * build), and validate or the docs generator, which share this module, need none of it.
 */
async function paramTypes(built: readonly BuiltPolicy[], manifest: string): Promise<string> {
  const { renderParamTypes } = await import("./lib/param_types.ts");
  return await renderParamTypes(built.map((b) => b.policy.definition), HEADER(manifest));
}

async function writeIfChanged(file: string, content: string): Promise<boolean> {
  const current = await Deno.readTextFile(file).catch(() => undefined);
  if (current === content) return false;
  await Deno.mkdir(dirname(file), { recursive: true });
  await Deno.writeTextFile(file, content);
  return true;
}

/** Builds one manifest into `outDir`; returns the problems (empty on success). */
export async function buildManifest(manifest: string, outDir: string): Promise<Problem[]> {
  const manifestFile = resolve(repoRoot, manifest);
  const out = resolve(repoRoot, outDir);
  const { built, problems } = await discoverManifest(manifestFile);
  if (problems.length > 0) return problems;
  const name = relative(repoRoot, manifestFile);
  const registryImport = relativeImport(out, join(repoRoot, "src/registry/registry.ts"));
  const withImports = built.map((b) => ({
    ...b,
    importSpecifier: b.importSpecifier?.startsWith("npm:")
      ? b.importSpecifier
      : b.importSpecifier && relativeImport(out, b.importSpecifier),
  }));
  const catalogImport = relativeImport(out, join(repoRoot, "src/registry/catalog.ts"));
  const pythonRegistry = displayPath(join(out, "python", "policy_registry.py"));
  const changed = [
    await writeIfChanged(
      join(out, "definitions.ts"),
      renderDefinitionsModule(built, name, catalogImport, pythonRegistry),
    ),
    await writeIfChanged(join(out, "registry.ts"), renderRegistryModule(withImports, name, registryImport)),
    await writeIfChanged(join(out, "python", "policy_registry.py"), renderPythonRegistry(built, name)),
    await writeIfChanged(join(out, "python", "requirements.txt"), renderRequirements(built, name)),
    await writeIfChanged(join(out, "params.ts"), await paramTypes(built, name)),
  ];
  if (changed.some(Boolean)) {
    console.error(`build: ${name} -> ${relative(repoRoot, out)} (${built.length} policies)`);
  }
  return [];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { manifest: { type: "string" }, out: { type: "string" } },
  });
  const targets = values.manifest
    ? [{ manifest: values.manifest, out: values.out ?? "src/gen" }]
    : DEFAULT_TARGETS;
  let failed = false;
  for (const target of targets) {
    const problems = await buildManifest(target.manifest, target.out);
    for (const problem of problems) console.error(formatProblem(problem));
    failed ||= problems.length > 0;
  }
  if (failed) {
    console.error("build: failed; nothing was generated for the manifests with problems");
    Deno.exit(1);
  }
}

/**
 * Fetching remote policy sources named in build.yaml into the local cache (.tollgate/):
 * GitHub tarballs for `pythonmodule` entries, npm tarballs for `npm` entries (to read their
 * policy-definition.yaml; the code itself is imported with an `npm:` specifier).
 *
 * Base URLs are configurable so tests (and air-gapped builds) can serve tarballs locally:
 *   TOLLGATE_PYTHONMODULE_BASE_URL  default https://github.com
 *   TOLLGATE_NPM_REGISTRY           default $NPM_CONFIG_REGISTRY, else https://registry.npmjs.org
 *     (the registry Deno itself uses for the `npm:` import is set with NPM_CONFIG_REGISTRY or an
 *     .npmrc scoped registry, as for any npm dependency)
 *   TOLLGATE_CACHE_DIR              default .tollgate/ in the repository
 */
import { join } from "node:path";
import type { ManifestSource } from "./manifest.ts";
import { repoRoot, run } from "./venv.ts";

/** Where fetched sources are kept (one directory per source and version; never re-fetched). */
export function cacheDir(): string {
  return Deno.env.get("TOLLGATE_CACHE_DIR") ?? join(repoRoot, ".tollgate");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function download(url: string, file: string): Promise<void> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  await Deno.writeFile(file, new Uint8Array(await response.arrayBuffer()));
}

/** Extracts a .tar.gz into `dir`, dropping the archive's top-level directory. */
async function extract(archive: string, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await run("tar", ["-xzf", archive, "-C", dir, "--strip-components=1"]);
}

/** Downloads (once) and extracts a GitHub tag tarball; returns the policy's directory. */
export async function fetchPythonModule(
  source: Extract<ManifestSource, { kind: "pythonmodule" }>,
): Promise<string> {
  const base = (Deno.env.get("TOLLGATE_PYTHONMODULE_BASE_URL") ?? "https://github.com").replace(/\/$/, "");
  const target = join(cacheDir(), "python-modules", `${source.owner}__${source.repo}__${source.tag}`);
  if (!await exists(target)) {
    const staging = `${target}.partial`;
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    await Deno.mkdir(staging, { recursive: true });
    const archive = join(staging, "source.tar.gz");
    await download(`${base}/${source.owner}/${source.repo}/archive/refs/tags/${source.tag}.tar.gz`, archive);
    await extract(archive, join(staging, "tree"));
    await Deno.remove(archive);
    await Deno.rename(join(staging, "tree"), target);
    await Deno.remove(staging, { recursive: true });
  }
  return source.path ? join(target, source.path) : target;
}

/** Downloads (once) and extracts an npm package tarball; returns the package directory. */
export async function fetchNpmPackage(source: Extract<ManifestSource, { kind: "npm" }>): Promise<string> {
  const registry = (Deno.env.get("TOLLGATE_NPM_REGISTRY") ?? Deno.env.get("NPM_CONFIG_REGISTRY") ??
    "https://registry.npmjs.org").replace(/\/$/, "");
  const target = join(cacheDir(), "npm", `${source.packageName.replace("/", "__")}@${source.version}`);
  if (!await exists(target)) {
    const metaUrl = `${registry}/${source.packageName.replace("/", "%2f")}`;
    const response = await fetch(metaUrl);
    if (!response.ok) throw new Error(`GET ${metaUrl}: HTTP ${response.status}`);
    const tarball: string | undefined = (await response.json())?.versions?.[source.version]?.dist?.tarball;
    if (!tarball) throw new Error(`${metaUrl}: version ${source.version} has no dist.tarball`);
    const staging = `${target}.partial`;
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    await Deno.mkdir(staging, { recursive: true });
    await download(tarball, join(staging, "package.tgz"));
    await extract(join(staging, "package.tgz"), join(staging, "tree"));
    await Deno.rename(join(staging, "tree"), target);
    await Deno.remove(staging, { recursive: true });
  }
  return target;
}

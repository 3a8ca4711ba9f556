/**
 * The trace collector the tracing tests export to: Jaeger v2 (an OpenTelemetry Collector
 * distribution with an in-memory store and a query API), built from the Go module proxy as
 * the program github.com/jaegertracing/jaeger/cmd/jaeger, pinned by scripts/jaeger/go.mod
 * and go.sum. Built into .tollgate/jaeger/ once (a first build takes several minutes: it
 * compiles the whole collector) and again only when the pins change. `deno task setup` and
 * `deno task test` build it; `deno task dev` never needs it.
 */
import { join } from "node:path";
import { repoRoot, run } from "./venv.ts";

const moduleDir = join(repoRoot, "scripts", "jaeger");
/** The program built from the pinned module. */
const PROGRAM = "github.com/jaegertracing/jaeger/cmd/jaeger";
export const jaegerPath: string = join(repoRoot, ".tollgate", "jaeger", "bin", "jaeger");
const stampPath = `${jaegerPath}.pins`;

async function pinDigest(): Promise<string> {
  const parts = await Promise.all(
    ["go.mod", "go.sum"].map((name) => Deno.readTextFile(join(moduleDir, name))),
  );
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\0")));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Builds Jaeger unless the same pins were built already; returns the binary's path. */
export async function ensureJaeger(): Promise<string> {
  const digest = await pinDigest();
  const built = await Deno.readTextFile(stampPath).catch(() => undefined);
  const exists = await Deno.stat(jaegerPath).then(() => true, () => false);
  if (built === digest && exists) return jaegerPath;
  console.error(
    `setup: building Jaeger (the tracing tests' collector) into ${jaegerPath}; the first build takes minutes ...`,
  );
  const started = Date.now();
  try {
    // -mod=readonly: the pins in go.mod/go.sum are used as they are, never updated.
    await run("go", ["build", "-mod=readonly", "-trimpath", "-o", jaegerPath, PROGRAM], { cwd: moduleDir });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("setup: the Go toolchain (as scripts/jaeger/go.mod says) is needed to build Jaeger");
    }
    throw error;
  }
  await Deno.writeTextFile(stampPath, digest);
  console.error(`setup: Jaeger built in ${Math.round((Date.now() - started) / 1000)}s`);
  return jaegerPath;
}

/**
 * The compiled reference (scripts/bench/go/): a Go ext_proc server on grpc-go and
 * go-control-plane, pinned by its go.mod and go.sum, built from the Go module proxy into
 * .tollgate/bench/ on first use and again only when its sources change.
 */
import { join } from "node:path";
import { repoRoot, run } from "../lib/venv.ts";

const sourceDir = join(repoRoot, "scripts", "bench", "go");
export const goReferencePath = join(repoRoot, ".tollgate", "bench", "bin", "extprocref");
const stampPath = `${goReferencePath}.sources`;

/** A digest of everything the build reads, so a changed source or pin rebuilds. */
async function sourceDigest(): Promise<string> {
  const names = [...Deno.readDirSync(sourceDir)]
    .map((entry) => entry.name)
    .filter((name) => name.endsWith(".go") || name === "go.mod" || name === "go.sum")
    .sort();
  const parts = await Promise.all(
    names.map(async (name) => `${name}\0${await Deno.readTextFile(join(sourceDir, name))}`),
  );
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\0")));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The module's pinned grpc-go version, for the report. */
async function grpcGoVersion(): Promise<string> {
  const mod = await Deno.readTextFile(join(sourceDir, "go.mod"));
  return /google\.golang\.org\/grpc (v\S+)/.exec(mod)?.[1] ?? "unknown";
}

/** Builds the reference server unless the same sources were built already; returns "go X, grpc-go Y". */
export async function ensureGoReference(): Promise<string> {
  const digest = await sourceDigest();
  const built = await Deno.readTextFile(stampPath).catch(() => undefined);
  const exists = await Deno.stat(goReferencePath).then(() => true, () => false);
  if (built !== digest || !exists) {
    console.error(`bench: building the Go reference ext_proc server into ${goReferencePath} ...`);
    try {
      // -mod=readonly: the pins in go.mod/go.sum are used as they are, never updated.
      await run("go", ["build", "-mod=readonly", "-trimpath", "-o", goReferencePath, "."], {
        cwd: sourceDir,
      });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Error(
          "bench: the Go toolchain (1.26 or newer, as scripts/bench/go/go.mod says) is needed to build the compiled reference",
        );
      }
      throw error;
    }
    await Deno.writeTextFile(stampPath, digest);
  }
  const go = new TextDecoder().decode(
    (await new Deno.Command("go", { args: ["env", "GOVERSION"] }).output()).stdout,
  )
    .trim();
  return `${go.replace(/^go/, "")}, grpc-go ${await grpcGoVersion()}`;
}

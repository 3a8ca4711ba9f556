/**
 * Tollgate's entry point: the command line over the policies of build.yaml (compiled in
 * through the generated registry). See `tollgate --help` and README.md.
 */
import { runCli } from "./src/cli.ts";
import { generatedPolicies, pythonRegistry } from "./src/gen/registry.ts";

if (import.meta.main) {
  Deno.exit(
    await runCli(Deno.args, {
      policies: generatedPolicies,
      registryModule: import.meta.resolve("./src/gen/registry.ts"),
      pythonRegistry,
    }),
  );
}

/**
 * Tollgate's entry point: the command line over the policies of build.yaml (compiled in
 * through the generated registry). The main thread loads only their definitions; the
 * data-plane workers, `validate` and `run` load the registry with the policies' code. See
 * `tollgate --help` and README.md.
 */
import { runCli } from "./src/cli.ts";
import { policyDefinitions, pythonRegistry } from "./src/gen/definitions.ts";

if (import.meta.main) {
  Deno.exit(
    await runCli(Deno.args, {
      policies: policyDefinitions,
      registryModule: import.meta.resolve("./src/gen/registry.ts"),
      pythonRegistry,
    }),
  );
}

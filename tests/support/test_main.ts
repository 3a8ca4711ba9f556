/**
 * The engine's command line over the test build (src/gen/test/: every default policy plus the
 * test-only policies in tests/fixtures/policies), as main.ts is over build.yaml's. Integration
 * tests run it with exactly the production permission flags (scripts/lib/permissions.ts).
 */
import { runCli } from "../../src/cli.ts";
import { policyDefinitions, pythonRegistry } from "../../src/gen/test/definitions.ts";

if (import.meta.main) {
  Deno.exit(
    await runCli(Deno.args, {
      policies: policyDefinitions,
      registryModule: import.meta.resolve("../../src/gen/test/registry.ts"),
      pythonRegistry,
    }),
  );
}

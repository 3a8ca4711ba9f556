/**
 * The engine's command line over the test build (src/gen/test/registry.ts: every default
 * policy plus the test-only policies in tests/fixtures/policies). Integration tests run it
 * with exactly the production permission flags (scripts/lib/permissions.ts).
 */
import { runCli } from "../../src/cli.ts";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";

if (import.meta.main) {
  Deno.exit(
    await runCli(Deno.args, {
      policies: generatedPolicies,
      registryModule: import.meta.resolve("../../src/gen/test/registry.ts"),
      pythonRegistry,
    }),
  );
}

/**
 * Policy references as a route's `policies:` list writes them, for configs the integration
 * tests build in code.
 */

/** `{ name, version: "v1", parameters, ...extra }`: one entry of a route's `policies:`. */
export function policyRef(
  name: string,
  parameters: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { name, version: "v1", parameters, ...extra };
}

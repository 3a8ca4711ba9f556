/**
 * Renders src/gen/.../params.ts: one TypeScript type per policy of a build, generated from its
 * definition's JSON Schemas by json-schema-to-typescript, so that a policy's `params` are
 * typed without a hand-written interface that could drift from the schema. The type is what
 * `getPolicy` receives: system parameters merged under the user's, with every property that
 * has a default (or a `${config}` reference) present, deeply read-only (the engine freezes
 * them).
 */
import { compile, type JSONSchema } from "json-schema-to-typescript";
import { CONFIG_REFERENCE_KEYWORD } from "../../src/registry/config_refs.ts";
import type { PolicyDefinition } from "../../src/registry/definition.ts";
import type { JsonSchema } from "../../src/registry/types.ts";

type Node = Record<string, unknown>;

/** Keywords that constrain values without changing their type: dropped before generating. */
const CONSTRAINTS_ONLY = ["if", "then", "else", "not", "dependencies"];
/** Names a subschema would be declared under (and collide across policies): dropped. */
const NAMING = ["title", "$id"];
const SHAPE_KEYWORDS = ["type", "properties", "items", "enum", "const", "$ref", "additionalProperties"];

const isNode = (value: unknown): value is Node =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** A branch of anyOf/oneOf/allOf that only constrains (e.g. `{ required: [a] }`). */
const constrainsOnly = (branch: unknown) => isNode(branch) && !SHAPE_KEYWORDS.some((k) => k in branch);

/** The schema as the type should see it: defaults make properties present, constraints go. */
function typeView(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(typeView);
  if (!isNode(schema)) return schema;
  const out: Node = {};
  for (const [key, value] of Object.entries(schema)) {
    if (CONSTRAINTS_ONLY.includes(key) || NAMING.includes(key) || key.startsWith("x-tollgate-")) continue;
    if (key === CONFIG_REFERENCE_KEYWORD || key === "default") continue;
    if (["anyOf", "oneOf", "allOf"].includes(key) && Array.isArray(value) && value.every(constrainsOnly)) {
      continue;
    }
    out[key] = key === "properties" && isNode(value)
      ? Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, typeView(sub)]))
      : typeView(value);
  }
  if (isNode(schema.properties)) {
    const filled = Object.entries(schema.properties)
      .filter(([, sub]) => isNode(sub) && ("default" in sub || CONFIG_REFERENCE_KEYWORD in sub))
      .map(([name]) => name);
    const required = [...new Set([...(schema.required as string[] | undefined ?? []), ...filled])];
    if (required.length > 0) out.required = required;
  }
  return out;
}

/** The parameters `getPolicy` receives: system parameters merged under the user's. */
function mergedSchema(definition: PolicyDefinition): JsonSchema {
  const user = definition.parameters;
  const system = definition.systemParameters;
  const properties = { ...(system.properties as Node | undefined), ...(user.properties as Node | undefined) };
  const required = [...(system.required as string[] | undefined ?? []), ...(user.required as string[] ?? [])];
  return {
    ...user,
    type: "object",
    properties,
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
  };
}

/** `set-headers` → `SetHeadersParams` (`SetHeadersV2Params` when the build has several majors). */
export function paramsTypeName(definition: PolicyDefinition, withMajor: boolean): string {
  const base = definition.name.replace(/(^|-)([a-z0-9])/g, (_, _dash, c: string) => c.toUpperCase());
  const major = withMajor ? `V${/^v(\d+)/.exec(definition.version)?.[1]}` : "";
  return `${base}${major}Params`;
}

/** The whole generated module for the definitions of one build, in manifest order. */
export async function renderParamTypes(
  definitions: readonly PolicyDefinition[],
  header: string,
): Promise<string> {
  const counts = new Map<string, number>();
  for (const d of definitions) counts.set(d.name, (counts.get(d.name) ?? 0) + 1);
  const parts = [
    `// ${header}`,
    "// The parameters each policy's getPolicy receives, generated from its policy-definition.yaml:",
    "// `PolicyFactory<SetHeadersParams>`. Values are validated, defaulted and frozen by the engine.",
    "",
    "/** Deeply read-only: the engine freezes parameters before a policy sees them. */",
    "type Frozen<T> = T extends readonly (infer U)[] ? readonly Frozen<U>[]",
    "  : T extends object ? { readonly [K in keyof T]: Frozen<T[K]> }",
    "  : T;",
  ];
  for (const definition of definitions) {
    const name = paramsTypeName(definition, (counts.get(definition.name) ?? 0) > 1);
    const schema = typeView(mergedSchema(definition)) as JSONSchema;
    const fields = (await compile(schema, `${name}Fields`, {
      bannerComment: "",
      additionalProperties: false,
      maxItems: -1,
      declareExternallyReferenced: true,
      format: true,
    })).trimEnd().replace(`export interface ${name}Fields`, `interface ${name}Fields`);
    parts.push(
      `\n${fields}\n\n/** The parameters of ${definition.name} ${definition.version}. */\n` +
        `export type ${name} = Frozen<${name}Fields>;`,
    );
  }
  return parts.join("\n") + "\n";
}

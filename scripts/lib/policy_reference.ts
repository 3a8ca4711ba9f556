/**
 * Rendering docs/policy-reference.md: one section per policy of a build manifest, from its
 * definition (header, processing mode, parameter tables generated from the JSON Schemas),
 * its example.yaml and its docs.md. Pure functions; scripts/policy_docs.ts does the I/O.
 */
import type { PolicyDefinition } from "../../src/registry/definition.ts";
import { MODE_FIELDS, type ModeField } from "../../src/registry/modes.ts";
import type { JsonSchema } from "../../src/registry/types.ts";

/** What the reference shows of one policy. */
export interface PolicyDocSource {
  readonly definition: PolicyDefinition;
  /** The policy's example.yaml, if it has one. */
  readonly example: string | undefined;
  /** The policy's docs.md, if it has one. */
  readonly docs: string | undefined;
  /** Where the policy comes from (manifest source), for policies without docs of ours. */
  readonly origin: string;
}

/** One row of a parameter table. */
export interface ParameterRow {
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  readonly default: string;
  readonly description: string;
}

type Schema = Readonly<Record<string, unknown>>;

const asSchema = (value: unknown): Schema | undefined =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? value as Schema : undefined;

const code = (text: string) => `\`${text}\``;
const json = (value: unknown) => JSON.stringify(value);

/** A readable type: `string`, `integer | string`, `array of string`, `object of string`, ... */
export function typeOf(schema: Schema): string {
  const type = schema.type;
  if (Array.isArray(type)) return type.join(" \\| ");
  if (type === "array") {
    const items = asSchema(schema.items);
    return items ? `array of ${items.properties ? "objects" : typeOf(items)}` : "array";
  }
  if (type === "object") {
    const values = asSchema(schema.additionalProperties);
    return values && !schema.properties ? `object of ${typeOf(values)}` : "object";
  }
  if (typeof type === "string") return type;
  const branches = (schema.oneOf ?? schema.anyOf) as unknown[] | undefined;
  if (Array.isArray(branches) && branches.every((b) => asSchema(b)?.type !== undefined)) {
    return branches.map((b) => typeOf(asSchema(b)!)).join(" \\| ");
  }
  if (schema.const !== undefined) return `constant ${json(schema.const)}`;
  return "any";
}

/** Constraints worth a reader's attention, appended to the description. */
function constraints(schema: Schema): string[] {
  const out: string[] = [];
  if (Array.isArray(schema.enum)) out.push(`One of ${schema.enum.map((v) => code(json(v))).join(", ")}.`);
  const bounds: [string, string][] = [
    ["minimum", "minimum"],
    ["maximum", "maximum"],
    ["minLength", "minimum length"],
    ["maxLength", "maximum length"],
    ["minItems", "at least"],
    ["maxItems", "at most"],
  ];
  const items = (n: unknown) => n === 1 ? " item" : " items";
  const found = bounds.filter(([key]) => typeof schema[key] === "number")
    .map(([key, label]) => `${label} ${schema[key]}${key.endsWith("Items") ? items(schema[key]) : ""}`);
  if (found.length > 0) out.push(`${found.join(", ").replace(/^./, (c) => c.toUpperCase())}.`);
  return out;
}

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim();

/** Every property of an object schema, nested objects and arrays of objects flattened with dotted paths. */
export function parameterRows(schema: JsonSchema, prefix = ""): ParameterRow[] {
  const properties = asSchema(schema.properties) ?? {};
  const required = new Set(Array.isArray(schema.required) ? schema.required as string[] : []);
  const rows: ParameterRow[] = [];
  for (const [name, value] of Object.entries(properties)) {
    const property = asSchema(value) ?? {};
    const path = `${prefix}${name}`;
    rows.push({
      name: path,
      type: typeOf(property),
      required: required.has(name),
      default: "default" in property ? code(json(property.default)) : "",
      description: [oneLine(String(property.description ?? "")), ...constraints(property)].filter(Boolean)
        .join(" "),
    });
    if (property.properties) rows.push(...parameterRows(property, `${path}.`));
    const items = asSchema(property.items);
    if (items?.properties) rows.push(...parameterRows(items, `${path}[].`));
  }
  return rows;
}

/** "At least one of `a`, `b` is required." for a top-level anyOf/oneOf of `required` lists. */
function alternatives(schema: JsonSchema): string | undefined {
  for (const [key, phrase] of [["anyOf", "At least one"], ["oneOf", "Exactly one"]] as const) {
    const branches = schema[key];
    if (!Array.isArray(branches)) continue;
    const names = branches.map((b) => asSchema(b)?.required).filter(Array.isArray).flat() as string[];
    if (names.length === branches.length) return `${phrase} of ${names.map(code).join(", ")} is required.`;
  }
  return undefined;
}

/**
 * Schema prose as a table cell: pipes escaped, and outside code spans the characters
 * Markdown would read as emphasis, HTML or links (`"*"` must not become emphasis).
 */
export function cell(text: string): string {
  return text.split(/(`[^`]*`)/).map((part, i) =>
    i % 2 === 1 ? part : part.replace(/[\\*_<>\[\]]/g, (c) => `\\${c}`)
  ).join("").replaceAll("|", "\\|");
}

function parameterTable(schema: JsonSchema): string {
  const rows = parameterRows(schema);
  if (rows.length === 0) return "None.";
  const lines = [
    "| name | type | required | default | description |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${code(r.name)} | ${r.type} | ${r.required ? "yes" : "no"} | ${cell(r.default)} | ${
        cell(r.description)
      } |`
    ),
  ];
  const note = alternatives(schema);
  return note ? `${lines.join("\n")}\n\n${note}` : lines.join("\n");
}

/** How a streaming policy's chunks are cut, for its phases line. */
function accumulation(definition: PolicyDefinition): string {
  const accumulate = definition.streaming?.accumulate ?? "none";
  return accumulate === "none" ? "" : `, by ${accumulate === "line" ? "line" : "SSE event"}`;
}

const PHASE_NAMES: Record<ModeField, string> = {
  requestHeaderMode: "request headers",
  requestBodyMode: "buffered request body",
  responseHeaderMode: "response headers",
  responseBodyMode: "buffered response body",
};

/** A phase's name as its declared mode takes part in it (a body: buffered or streamed). */
function phaseName(definition: PolicyDefinition, field: ModeField, mode: string): string {
  if (mode !== "STREAM") return PHASE_NAMES[field];
  const phase = field === "requestBodyMode" ? "request" : "response";
  return `${phase} body (streamed${accumulation(definition)})`;
}

/** The phases a policy may take part in; a conditional one names its parameter. */
function phases(definition: PolicyDefinition): string {
  const list = MODE_FIELDS.flatMap((field) => {
    const declared = definition.processingMode[field];
    if (typeof declared === "string") {
      return declared === "SKIP" ? [] : [phaseName(definition, field, declared)];
    }
    const when = [declared.when].flat().map(code).join(" or ");
    return [
      `${phaseName(definition, field, declared.value)} (when ${when}${
        declared.in ? ` is ${declared.in.join(" or ")}` : " is set"
      })`,
    ];
  });
  return list.length > 0 ? list.join(", ") : "none";
}

/** Demotes the headings of a policy's docs.md below the section's own (outside code fences). */
export function demoteHeadings(markdown: string, levels: number): string {
  let fenced = false;
  return markdown.split("\n").map((line) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    return !fenced && /^#{1,6} /.test(line) ? `${"#".repeat(levels)}${line}` : line;
  }).join("\n");
}

function section(source: PolicyDocSource): string {
  const { definition: d } = source;
  const parts = [
    `## ${d.name}`,
    d.kind === "audit"
      ? `**${d.version}** · runtime ${d.runtime} · auditing policy: runs after the response, off the request path`
      : `**${d.version}** · runtime ${d.runtime} · phases: ${phases(d)}`,
    oneLine(d.description),
    "### Parameters",
    parameterTable(d.parameters),
  ];
  if (Object.keys(asSchema(d.systemParameters?.properties) ?? {}).length > 0) {
    parts.push("### System parameters", parameterTable(d.systemParameters));
  }
  parts.push("### Example");
  parts.push(source.example ? `\`\`\`yaml\n${source.example.trimEnd()}\n\`\`\`` : "No example.");
  if (source.docs) parts.push("### Behaviour", demoteHeadings(source.docs.trim(), 3));
  else parts.push(`Documented with its source (${source.origin}).`);
  return parts.join("\n\n");
}

/** The whole reference (before formatting). */
export function renderReference(sources: readonly PolicyDocSource[], manifest: string): string {
  const index = [
    "| policy | version | description |",
    "| --- | --- | --- |",
    ...sources.map(({ definition: d }) =>
      `| [${d.name}](#${d.name}) | ${d.version} | ${
        cell(oneLine(d.description).split(/(?<=\.)\s+(?=[A-Z])/)[0])
      } |`
    ),
  ];
  return [
    "# Policy reference",
    `<!-- Generated from ${manifest} by \`deno task docs:policies\`: edit the policies' ` +
    "policy-definition.yaml, example.yaml and docs.md, not this file. -->",
    `Every policy of the default build (\`${manifest}\`), with its parameters as its definition's JSON Schema ` +
    "declares them. Use a policy under a route's `policies:` with `version: v1` " +
    "(see [configuration.md](configuration.md)); how policies work and how to write one is in " +
    "[policies.md](policies.md).",
    index.join("\n"),
    ...sources.map(section),
  ].join("\n\n") + "\n";
}

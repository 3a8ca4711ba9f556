/**
 * `${config.a.b}` references: system parameters whose `"wso2/defaultValue"` (the keyword
 * seed 000 uses) points into the engine config's `policyConfig` section. They are resolved
 * when a chain is built, so policies never see the raw `${...}` text.
 */
import type { JsonSchema } from "./types.ts";

/** The schema keyword holding a reference (kept for compatibility with WSO2 definitions). */
export const CONFIG_REFERENCE_KEYWORD = "wso2/defaultValue";

/** Where a reference sits in the parameters object, and its template text. */
export interface ConfigReference {
  readonly path: readonly string[];
  readonly template: unknown;
  /** The schema's own `default`, used when the reference cannot be resolved. */
  readonly fallback: unknown;
}

const WHOLE_REFERENCE = /^\$\{config\.([^}]+)\}$/;
const ANY_REFERENCE = /\$\{config\.([^}]+)\}/g;

/**
 * Returns a copy of `schema` without the reference keyword (Ajv rejects "/" in keyword
 * names) and the references found under `properties`, at any depth.
 */
export function stripConfigReferences(
  schema: JsonSchema,
): { schema: JsonSchema; references: ConfigReference[] } {
  const references: ConfigReference[] = [];
  const walk = (node: unknown, path: string[]): unknown => {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === CONFIG_REFERENCE_KEYWORD) {
        references.push({ path, template: value, fallback: (node as Record<string, unknown>).default });
      } else if (key === "properties" && value && typeof value === "object") {
        out[key] = Object.fromEntries(
          Object.entries(value).map(([prop, sub]) => [prop, walk(sub, [...path, prop])]),
        );
      } else {
        out[key] = value;
      }
    }
    return out;
  };
  return { schema: walk(schema, []) as JsonSchema, references };
}

function lookup(
  root: Readonly<Record<string, unknown>>,
  dotted: string,
): { found: boolean; value?: unknown } {
  let node: unknown = root;
  for (const part of dotted.split(".")) {
    if (node === null || typeof node !== "object" || !Object.hasOwn(node, part)) return { found: false };
    node = (node as Record<string, unknown>)[part];
  }
  return { found: true, value: node };
}

/** The outcome of resolving one template. */
export type Resolution = { ok: true; value: unknown } | { ok: false; missing: string };

/**
 * Resolves a template. A template that is exactly one reference takes the referenced value
 * with its type (a number stays a number); references inside longer strings are
 * interpolated as text. Non-string templates are literal defaults.
 */
export function resolveTemplate(
  template: unknown,
  policyConfig: Readonly<Record<string, unknown>>,
): Resolution {
  if (typeof template !== "string") return { ok: true, value: template };
  const whole = WHOLE_REFERENCE.exec(template);
  if (whole) {
    const hit = lookup(policyConfig, whole[1]);
    return hit.found ? { ok: true, value: hit.value } : { ok: false, missing: `config.${whole[1]}` };
  }
  let missing: string | undefined;
  const value = template.replace(ANY_REFERENCE, (_text, dotted: string) => {
    const hit = lookup(policyConfig, dotted);
    if (!hit.found) missing ??= `config.${dotted}`;
    return typeof hit.value === "string" ? hit.value : JSON.stringify(hit.value ?? "");
  });
  return missing ? { ok: false, missing } : { ok: true, value };
}

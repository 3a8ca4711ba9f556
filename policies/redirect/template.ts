/**
 * Location templates: `{scheme}`, `{host}`, `{path}` and `{query}` replaced by the request's
 * values, `{{` and `}}` literal braces. Parsed and checked once per chain.
 */

/** The request values a template can use. */
export interface TemplateValues {
  readonly scheme: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
}

const FIELDS: readonly (keyof TemplateValues)[] = ["scheme", "host", "path", "query"];
const TOKEN = /\{\{|\}\}|\{([^{}]*)\}|[{}]/g;

/** A parsed template: literal text and fields, alternating. */
export type Template = (values: TemplateValues) => string;

/** Parses a template; throws naming the first unknown field or stray brace. */
export function parseTemplate(template: string): Template {
  const parts: (string | keyof TemplateValues)[] = [];
  let literal = "";
  let last = 0;
  for (const match of template.matchAll(TOKEN)) {
    literal += template.slice(last, match.index);
    last = match.index + match[0].length;
    if (match[0] === "{{" || match[0] === "}}") literal += match[0][0];
    else if (match[1] !== undefined && (FIELDS as readonly string[]).includes(match[1])) {
      parts.push(literal, match[1] as keyof TemplateValues);
      literal = "";
    } else if (match[1] !== undefined) {
      throw new Error(`unknown field {${match[1]}} (known: ${FIELDS.map((f) => `{${f}}`).join(", ")})`);
    } else {
      throw new Error(`unmatched "${match[0]}" at ${match.index} (write {{ or }} for a literal brace)`);
    }
  }
  parts.push(literal + template.slice(last));
  return (values) => {
    let out = "";
    for (let i = 0; i < parts.length; i++) {
      out += i % 2 === 0 ? parts[i] : values[parts[i] as keyof TemplateValues];
    }
    return out;
  };
}

/** Splits `:path` into the path and the query with its "?" (empty when there is none). */
export function splitPath(pathAndQuery: string): { path: string; query: string } {
  const at = pathAndQuery.indexOf("?");
  if (at < 0) return { path: pathAndQuery, query: "" };
  const query = pathAndQuery.slice(at);
  return { path: pathAndQuery.slice(0, at), query: query === "?" ? "" : query };
}

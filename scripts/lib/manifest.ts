/**
 * build.yaml, the build manifest: which policies are compiled in, and where each comes
 * from: a local directory (`filePath`), a GitHub tarball (`pythonmodule`) or an npm package
 * (`npm`, TypeScript only).
 */
import { createAjv } from "../../src/config/ajv.ts";
import type { Problem } from "../../src/config/problem.ts";
import { schemaViolations } from "../../src/config/schema_errors.ts";
import { parseYamlSource } from "../../src/config/yaml_source.ts";

export type ManifestSource =
  | { readonly kind: "filePath"; readonly path: string }
  | {
    readonly kind: "pythonmodule";
    readonly owner: string;
    readonly repo: string;
    readonly path: string;
    readonly tag: string;
  }
  | {
    readonly kind: "npm";
    readonly specifier: string;
    readonly packageName: string;
    readonly version: string;
  };

export interface ManifestEntry {
  readonly name: string;
  readonly source: ManifestSource;
  /** `policies[3] (name)`, for messages about files outside the manifest. */
  readonly label: string;
  readonly problemAt: (field: string, message: string) => Problem;
}

const SOURCES = ["filePath", "pythonmodule", "npm"] as const;
const PYTHON_MODULE = /^github\.com\/([\w.-]+)\/([\w.-]+)(?:\/(.+?))?@([\w.+-]+)$/;
const NPM = /^(?:npm:)?((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*)@(\d[\w.+-]*)$/;

const manifestSchema = {
  type: "object",
  additionalProperties: false,
  required: ["version", "policies"],
  properties: {
    version: { const: "v1" },
    policies: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name"],
        properties: {
          name: { type: "string", pattern: "^[a-z0-9]+(-[a-z0-9]+)*$" },
          filePath: { type: "string", minLength: 1 },
          pythonmodule: { type: "string", minLength: 1 },
          npm: { type: "string", minLength: 1 },
        },
      },
    },
  },
};
const validate = createAjv().compile(manifestSchema);

/** What a manifest holds: its valid entries, and a problem for each invalid one. */
export interface ParsedManifest {
  readonly entries: ManifestEntry[];
  readonly problems: Problem[];
}

/**
 * Parses build.yaml text. Invalid entries become problems naming the entry; the valid ones
 * are still returned, so every problem of every policy can be reported in one run.
 */
export function parseManifest(text: string, file: string): ParsedManifest {
  const yaml = parseYamlSource(text, file);
  if (Array.isArray(yaml)) return { entries: [], problems: yaml };
  const raw = yaml.value as { version?: unknown; policies?: Record<string, string>[] } | null;
  if (!validate(raw)) {
    const problems = schemaViolations(validate.errors).map((v) => {
      const index = v.segments[0] === "policies" && typeof v.segments[1] === "number"
        ? v.segments[1]
        : undefined;
      const name = index === undefined ? undefined : raw?.policies?.[index]?.name;
      return yaml.problemAt(v.segments, name ? `entry ${name}: ${v.message}` : v.message);
    });
    return { entries: [], problems };
  }
  const problems: Problem[] = [];
  const entries: ManifestEntry[] = [];
  const items = (yaml.value as { policies: Record<string, string>[] }).policies;
  items.forEach((item, index) => {
    const label = `policies[${index}] (${item.name})`;
    const problemAt = (field: string, message: string) =>
      yaml.problemAt(
        field ? ["policies", index, field] : ["policies", index],
        `entry ${item.name}: ${message}`,
      );
    const given = SOURCES.filter((key) => item[key] !== undefined);
    if (given.length !== 1) {
      problems.push(
        problemAt(
          "",
          `needs exactly one of ${SOURCES.join(", ")} (has ${given.length ? given.join(", ") : "none"})`,
        ),
      );
      return;
    }
    const key = given[0];
    const value = item[key];
    let source: ManifestSource;
    if (key === "filePath") {
      source = { kind: "filePath", path: value };
    } else if (key === "pythonmodule") {
      const match = PYTHON_MODULE.exec(value);
      if (!match) {
        problems.push(problemAt(key, `"${value}" is not github.com/<owner>/<repo>[/<path>]@<tag>`));
        return;
      }
      source = { kind: "pythonmodule", owner: match[1], repo: match[2], path: match[3] ?? "", tag: match[4] };
    } else {
      const match = NPM.exec(value);
      if (!match) {
        problems.push(
          problemAt(key, `"${value}" is not an npm package with an exact version, e.g. @acme/policy@1.2.0`),
        );
        return;
      }
      source = {
        kind: "npm",
        specifier: `npm:${match[1]}@${match[2]}`,
        packageName: match[1],
        version: match[2],
      };
    }
    entries.push({ name: item.name, source, label, problemAt });
  });
  return { entries, problems };
}

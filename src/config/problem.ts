/**
 * One mistake found in a user's file (config, policy definition, build manifest), located
 * as precisely as we can: the file, the YAML path and, when known, line and column.
 */
export interface Problem {
  readonly file: string;
  /** Path inside the document, e.g. `routes[0].policies[1].version`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/** `file:line:col: path: message`, the shape editors and CI logs link to. */
export function formatProblem(problem: Problem): string {
  const where = problem.line === undefined
    ? problem.file
    : `${problem.file}:${problem.line}:${problem.column ?? 1}`;
  return problem.path ? `${where}: ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

/** An error carrying every problem found, not just the first. */
export class ProblemsError extends Error {
  constructor(readonly summary: string, readonly problems: readonly Problem[]) {
    super(`${summary}\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
    this.name = "ProblemsError";
  }
}

/** Segments of a document path: property names and array indexes. */
export type PathSegments = readonly (string | number)[];

/** `["routes", 0, "name"]` → `routes[0].name`. */
export function formatPath(segments: PathSegments): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

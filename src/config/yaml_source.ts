/**
 * YAML parsing that remembers where every value came from, so problems can name the line
 * and column of the offending value.
 */
import { isNode, LineCounter, parseDocument } from "yaml";
import type { PathSegments, Problem } from "./problem.ts";
import { formatPath } from "./problem.ts";

/** A parsed YAML document and a way to locate paths inside it. */
export interface YamlSource {
  readonly file: string;
  readonly value: unknown;
  /** Builds a problem at `segments`, with the line and column of the nearest existing node. */
  problemAt(segments: PathSegments, message: string): Problem;
}

/** Parses YAML text; syntax errors come back as problems (all of them). */
export function parseYamlSource(text: string, file: string): YamlSource | Problem[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return doc.errors.map((error) => {
      const pos = lineCounter.linePos(error.pos[0]);
      return { file, path: "", message: error.message.split("\n")[0], line: pos.line, column: pos.col };
    });
  }
  return {
    file,
    value: doc.toJS({ maxAliasCount: 100 }),
    problemAt(segments, message) {
      for (let depth = segments.length; depth >= 0; depth--) {
        const node = depth === 0 ? doc.contents : doc.getIn(segments.slice(0, depth) as unknown[], true);
        if (isNode(node) && node.range) {
          const pos = lineCounter.linePos(node.range[0]);
          return { file, path: formatPath(segments), message, line: pos.line, column: pos.col };
        }
      }
      return { file, path: formatPath(segments), message };
    },
  };
}

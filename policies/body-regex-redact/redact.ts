/**
 * Streaming regex redaction with a bounded carry: each call redacts what is certain and
 * holds back the tail that a match could still extend into.
 */
import { RE2JS } from "re2js";

export class Redactor {
  readonly #patterns: RE2JS[];

  constructor(patterns: readonly string[], readonly replacement: string, readonly maxMatch: number) {
    this.#patterns = patterns.map((pattern) => {
      try {
        return RE2JS.compile(pattern);
      } catch (error) {
        throw new Error(
          `pattern ${JSON.stringify(pattern)} is not a valid RE2 expression: ${(error as Error).message}`,
        );
      }
    });
  }

  /**
   * Redacts `text` (the carry plus the new chunk). Returns the part that can go out now and
   * the part to carry into the next call (empty at the end of the body).
   */
  step(text: string, endOfStream: boolean): { out: string; carry: string } {
    let redacted = text;
    let cut = endOfStream ? text.length : Math.max(text.length - (this.maxMatch - 1), 0);
    // Patterns apply in order; each sees the previous one's output.
    for (const re of this.#patterns) {
      const matcher = re.matcher(redacted);
      let out = "";
      let at = 0;
      let shift = 0;
      let hold = -1;
      while (matcher.find()) {
        const start = matcher.start();
        const end = matcher.end();
        if (end === start) continue;
        if (!endOfStream && end > cut) {
          // This match may grow with the next chunk: hold it back, from where it starts.
          hold = start;
          break;
        }
        out += redacted.slice(at, start) + this.replacement;
        at = end;
        shift += this.replacement.length - (end - start);
      }
      redacted = out + redacted.slice(at);
      cut = (hold >= 0 ? Math.min(hold, cut) : cut) + shift;
    }
    return { out: redacted.slice(0, cut), carry: redacted.slice(cut) };
  }
}

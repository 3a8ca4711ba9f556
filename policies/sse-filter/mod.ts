/**
 * sse-filter: drops or rewrites server-sent events by their `data:` JSON. The engine hands it
 * whole events (`streaming.accumulate: sse-event`), one or more per chunk.
 */
import { Chunk, type PolicyFactory } from "@tollgate/sdk";
import { jsonEqual, lookup, parsePath, type PathStep, remove } from "./jsonpath.ts";

type Params = {
  drop: { path: string; equals?: unknown }[];
  removeFields: string[];
};

interface Condition {
  readonly steps: PathStep[];
  /** Absent: the path existing is enough. */
  readonly equals?: { readonly value: unknown };
}

const utf8 = new TextDecoder();
/** One event with its terminating blank line (or the unterminated rest at the end). */
const EVENT = /[^]*?(?:\r\n\r\n|\n\n|\r\r|$)/g;

/** The event's data (its `data:` lines joined by `\n`), or undefined when it has none. */
function dataOf(lines: readonly string[]): string | undefined {
  const data = lines.filter((line) => line.startsWith("data:")).map((line) =>
    line.slice(5).replace(/^ /, "")
  );
  return data.length > 0 ? data.join("\n") : undefined;
}

export const getPolicy: PolicyFactory<Params> = (_metadata, params) => {
  const drop: Condition[] = params.drop.map((c) => ({
    steps: parsePath(c.path),
    ...(Object.hasOwn(c, "equals") ? { equals: { value: c.equals } } : {}),
  }));
  const removals = params.removeFields.map(parsePath);
  const matches = (json: unknown) =>
    drop.some((c) => {
      const found = lookup(json, c.steps);
      return found.found && (!c.equals || jsonEqual(found.value, c.equals.value));
    });

  /** The event as it goes on: unchanged, rewritten, or "" (dropped). */
  function filterEvent(event: string): string {
    const body = event.replace(/(\r\n|\n|\r)*$/, "");
    const terminator = event.slice(body.length);
    const lines = body.split(/\r\n|\n|\r/);
    const data = dataOf(lines);
    if (data === undefined) return event;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      return event; // not JSON, e.g. "[DONE]"
    }
    if (matches(json)) return "";
    if (!removals.some((steps) => remove(json, steps))) return event;
    const others = lines.filter((line) => !line.startsWith("data:"));
    return [...others, `data: ${JSON.stringify(json)}`].join("\n") + terminator;
  }

  return {
    onResponseChunk(_ctx, chunk) {
      const text = utf8.decode(chunk);
      const events = text.match(EVENT) ?? [];
      let changed = false;
      const out = events.map((event) => {
        const filtered = event === "" ? event : filterEvent(event);
        if (filtered !== event) changed = true;
        return filtered;
      });
      return changed ? Chunk.replace(out.join("")) : undefined;
    },
  };
};

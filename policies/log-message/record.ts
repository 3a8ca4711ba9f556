/** Building the logged views of headers and payloads: redacted, filtered, size-capped. */
import type { Body, ReadonlyHeaders } from "@tollgate/sdk";

export const REDACTED = "[REDACTED]";

/** Headers as a JSON object of name → values, without excluded names and with redacted values. */
export function headerView(
  headers: ReadonlyHeaders,
  excluded: ReadonlySet<string>,
  redacted: ReadonlySet<string>,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const name of headers.names()) {
    if (excluded.has(name)) continue;
    out[name] = redacted.has(name) ? headers.getAll(name).map(() => REDACTED) : [...headers.getAll(name)];
  }
  return out;
}

const utf8 = new TextDecoder();

/** A payload as logged: its size, its first `max` bytes as text, and whether it was cut. */
export function payloadView(body: Body | undefined, max: number): Record<string, unknown> {
  if (!body) return { bytes: 0, text: "", truncated: false };
  const truncated = body.length > max;
  const text = utf8.decode(truncated ? body.content.subarray(0, max) : body.content);
  return { bytes: body.length, text, truncated };
}

/** A comma-separated header list as lower-cased names. */
export const nameSet = (list: readonly string[] | string) =>
  new Set(
    (typeof list === "string" ? list.split(",") : list).map((s) => s.trim().toLowerCase()).filter(Boolean),
  );

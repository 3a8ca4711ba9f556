/**
 * One audit line from an exchange's record: redacted headers, and once a policy decided
 * (denied, modified or failed the request) its content only as SHA-256 hashes, so the
 * audit log never repeats what a policy caught (a stolen token, an injected query).
 */
import type { AuditRecord } from "@tollgate/sdk";

export const REDACTED = "<redacted>";

export interface LineOptions {
  /** Lower-case names of the headers whose values are never written. */
  readonly redact: ReadonlySet<string>;
  /** Lower-case names of the only headers written; undefined writes all. */
  readonly only: ReadonlySet<string> | undefined;
  readonly includeBody: boolean;
  readonly maxBodyBytes: number;
}

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** `sha256:<hex>` of text or bytes. */
export async function sha256(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? utf8.encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The record as one JSON object (not yet serialised). */
export async function auditLine(record: AuditRecord, options: LineOptions): Promise<Record<string, unknown>> {
  const withheld = record.decision !== "passed";
  const at = record.path.indexOf("?");
  const path = at === -1 ? record.path : record.path.slice(0, at);
  const query = at === -1 ? "" : record.path.slice(at + 1);
  const headers: Record<string, string[]> = {};
  for (const [name, value] of record.headers) {
    if (options.only && !options.only.has(name)) continue;
    const shown = options.redact.has(name) ? REDACTED : withheld ? await sha256(value) : value;
    (headers[name] ??= []).push(shown);
  }
  const line: Record<string, unknown> = {
    time: new Date(record.startedAt).toISOString(),
    requestId: record.requestId,
    route: record.route,
    method: record.method,
    path,
    authority: record.authority,
    clientAddress: record.clientAddress ?? null,
    status: record.status,
    decision: record.decision,
    durationMs: record.durationMs,
    trace: record.trace.map((entry) => ({
      policy: entry.policy,
      version: entry.version,
      phase: entry.phase,
      outcome: entry.outcome,
      ...(entry.reason === undefined ? {} : { reason: entry.reason }),
      durationMs: entry.durationMs,
    })),
    contentWithheld: withheld,
    headers,
  };
  if (query) line[withheld ? "querySha256" : "query"] = withheld ? await sha256(query) : query;
  const body = record.body;
  if (body) {
    line.bodyBytes = body.byteLength;
    if (withheld) line.bodySha256 = await sha256(body);
    else if (options.includeBody) line.body = text.decode(body.subarray(0, options.maxBodyBytes));
  }
  return line;
}

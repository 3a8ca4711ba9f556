/**
 * audit-log: an auditing policy writing one JSON line per finished request to a rotated
 * file or to the engine's log (docs.md).
 */
import { getLogger } from "@logtape/logtape";
import type { AuditPolicyFactory } from "@tollgate/sdk";
import { auditLine, type LineOptions } from "./line.ts";
import { RotatingFile } from "./rotating_file.ts";

interface Params {
  readonly [key: string]: unknown;
  readonly sink: "log" | "file";
  readonly path: string;
  readonly maxFileBytes: number;
  readonly maxFiles: number;
  readonly redactHeaders: readonly string[];
  readonly headers: readonly string[];
  readonly includeBody: boolean;
  readonly maxBodyBytes: number;
}

const log = getLogger(["tollgate", "policy", "audit-log"]);
const utf8 = new TextEncoder();
const lower = (names: readonly string[]) => new Set(names.map((name) => name.toLowerCase()));

export const getPolicy: AuditPolicyFactory<Params> = (_metadata, params) => {
  const options: LineOptions = {
    redact: lower(params.redactHeaders),
    only: params.headers.length > 0 ? lower(params.headers) : undefined,
    includeBody: params.includeBody,
    maxBodyBytes: params.maxBodyBytes,
  };
  if (params.sink === "log") {
    return {
      audit: async (record) => log.info("audit {requestId} {decision}", await auditLine(record, options)),
    };
  }
  const file = new RotatingFile(params.path, params.maxFileBytes, params.maxFiles);
  return {
    audit: async (record) => {
      await file.write(utf8.encode(JSON.stringify(await auditLine(record, options)) + "\n"));
    },
    close: () => file.close(),
  };
};

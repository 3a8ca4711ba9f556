/**
 * audit-log: the line it writes (redaction, content withheld as hashes after a decision,
 * the body's rules) and its file sink's rotation by size.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { auditLine, type LineOptions, sha256 } from "../../../policies/audit-log/line.ts";
import { RotatingFile } from "../../../policies/audit-log/rotating_file.ts";
import { getPolicy } from "../../../policies/audit-log/mod.ts";
import type { AuditRecord } from "../../../src/sdk/mod.ts";
import { resolveParams } from "../../support/policies.ts";

const record = (decision: AuditRecord["decision"], body?: string): AuditRecord => ({
  requestId: "r-1",
  route: "orders",
  method: "POST",
  path: "/orders/7?token=s3cret-query",
  authority: "api.example.com",
  clientAddress: "10.0.0.7",
  status: decision === "denied" ? 401 : 200,
  decision,
  headers: [["authorization", "Bearer s3cret-token"], ["x-note", "s3cret-note"], ["x-note", "two"], [
    "accept",
    "*/*",
  ]],
  body: body === undefined ? undefined : new TextEncoder().encode(body),
  trace: [{
    policy: "jwt-auth",
    version: "v1.0.0",
    phase: "request",
    outcome: decision === "denied" ? "denied" : "passed",
    ...(decision === "denied" ? { reason: "401" } : {}),
    startNs: 1,
    durationMs: 0.3,
  }],
  startedAt: Date.UTC(2026, 0, 2, 3, 4, 5),
  durationMs: 1.5,
});

const options: LineOptions = {
  redact: new Set(["authorization"]),
  only: undefined,
  includeBody: true,
  maxBodyBytes: 4,
};

Deno.test("a passed request: redacted headers, the rest as sent, the query, the body cut to maxBodyBytes", async () => {
  const line = await auditLine(record("passed", "hello world"), options);
  assert.equal(line.time, "2026-01-02T03:04:05.000Z");
  assert.equal(line.path, "/orders/7");
  assert.equal(line.query, "token=s3cret-query");
  assert.equal(line.contentWithheld, false);
  assert.deepEqual(line.headers, {
    authorization: ["<redacted>"],
    "x-note": ["s3cret-note", "two"],
    accept: ["*/*"],
  });
  assert.equal(line.body, "hell");
  assert.equal(line.bodyBytes, 11);
  assert.deepEqual(line.trace, [{
    policy: "jwt-auth",
    version: "v1.0.0",
    phase: "request",
    outcome: "passed",
    durationMs: 0.3,
  }]);
});

for (const decision of ["denied", "modified", "failed"] as const) {
  Deno.test(`a ${decision} request: header values, query and body only as SHA-256`, async () => {
    const line = await auditLine(record(decision, "s3cret-body"), options);
    const text = JSON.stringify(line);
    assert.ok(!text.includes("s3cret"), text);
    assert.equal(line.contentWithheld, true);
    assert.equal(line.querySha256, await sha256("token=s3cret-query"));
    assert.equal(line.bodySha256, await sha256("s3cret-body"));
    assert.equal(line.body, undefined);
    const headers = line.headers as Record<string, string[]>;
    assert.deepEqual(
      headers.authorization,
      ["<redacted>"],
      "redacted, not hashed: no guessing a short secret",
    );
    assert.deepEqual(headers["x-note"], [await sha256("s3cret-note"), await sha256("two")]);
  });
}

Deno.test("headers limits the headers written; without includeBody only the body's size", async () => {
  const line = await auditLine(record("passed", "abc"), {
    ...options,
    only: new Set(["accept"]),
    includeBody: false,
  });
  assert.deepEqual(line.headers, { accept: ["*/*"] });
  assert.equal(line.body, undefined);
  assert.equal(line.bodyBytes, 3);
});

Deno.test("the file sink rotates by size and keeps maxFiles rotated files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "audit-log-" });
  try {
    const path = join(dir, "audit.jsonl");
    const file = new RotatingFile(path, 25, 2);
    const line = (n: number) => new TextEncoder().encode(`line-${n}-0123456789\n`); // 18 bytes
    for (let n = 1; n <= 5; n++) await file.write(line(n));
    file.close();
    const read = (p: string) => Deno.readTextFile(p);
    assert.equal(await read(path), "line-5-0123456789\n");
    assert.equal(await read(`${path}.1`), "line-4-0123456789\n");
    assert.equal(await read(`${path}.2`), "line-3-0123456789\n");
    await assert.rejects(
      () => Deno.stat(`${path}.3`),
      Deno.errors.NotFound,
      "only two rotated files are kept",
    );
    // A reopened file continues from its size.
    const again = new RotatingFile(path, 40, 2);
    await again.write(line(6));
    again.close();
    assert.equal(await read(path), "line-5-0123456789\nline-6-0123456789\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("getPolicy: sink file appends one JSON line per record", async () => {
  const dir = await Deno.makeTempDir({ prefix: "audit-log-" });
  try {
    const path = join(dir, "a.jsonl");
    const params = resolveParams("audit-log", { sink: "file", path });
    const policy = await getPolicy({
      routeName: "r",
      policyName: "audit-log",
      policyVersion: "v1.0.0",
      attachedTo: "route",
    }, params as never);
    await policy.audit(record("denied"), params as never);
    await policy.audit(record("passed"), params as never);
    await policy.close?.();
    const lines = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.decision), ["denied", "passed"]);
    assert.throws(
      () => resolveParams("audit-log", { sink: "file" }),
      /is required/,
      "sink file needs a path",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { textFormatter } from "../../src/observe/log.ts";

/** A record as LogTape builds it from a template and its properties. */
function record(template: string, properties: Record<string, unknown>): LogRecord {
  return {
    category: ["tollgate", "executor"],
    level: "warning",
    timestamp: Date.UTC(2026, 0, 2, 3, 4, 5),
    rawMessage: template,
    message: template.split(/(\{[^{}]+\})/).map((part, i) => i % 2 ? properties[part.slice(1, -1)] : part),
    properties,
  };
}

Deno.test("the text format puts every property the message does not show on the line", () => {
  const line = textFormatter()(record("policy {policy} failed: {reason}", {
    policy: "fail:v1",
    reason: "boom",
    requestId: "req-1",
    route: "users v1",
    kind: "error",
  }));
  assert.match(
    line,
    /\[WRN\] tollgate·executor: policy fail:v1 failed: boom requestId=req-1 route="users v1" kind=error\n$/,
  );
  assert.doesNotMatch(line, /policy=|reason=/, "what the message shows is not repeated");
});

Deno.test("the text format never lets a value start a line of its own", () => {
  const line = textFormatter()(
    record("route {route} has no chain", { route: "a\nFORGED", requestId: "x\ny" }),
  );
  assert.equal(line.trimEnd().split("\n").length, 1);
  assert.match(line, /route a\\nFORGED has no chain requestId="x\\ny"/);
});

Deno.test("a list of problems is printed as lines, not as a string literal", () => {
  const line = textFormatter()(record("config change rejected; still serving the previous config", {
    problems: ["a.yaml:3:5 routes[0].name: duplicate route name", "a.yaml:9:1 evil\nline"],
    summary: "invalid config a.yaml",
  }));
  const lines = line.trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0], /rejected; still serving the previous config summary="invalid config a.yaml"$/);
  assert.equal(lines[1], "  a.yaml:3:5 routes[0].name: duplicate route name");
  assert.equal(lines[2], "  a.yaml:9:1 evil\\nline");
});

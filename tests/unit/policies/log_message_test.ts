import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { instantiate, onRequest, onResponse } from "../../support/policies.ts";

/** Runs `body` with the policy's log category captured at `level` and above. */
async function captured(level: "debug" | "info", body: () => Promise<void>): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { capture: (record) => records.push(record) },
    loggers: [
      { category: ["tollgate", "policy", "log-message"], lowestLevel: level, sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    await body();
  } finally {
    await reset();
  }
  return records;
}

const request = {
  method: "POST",
  path: "/orders?id=1",
  headers: {
    authorization: "Bearer secret-token",
    cookie: ["a=1", "b=2"],
    "x-api-key": "k-123",
    "user-agent": "curl",
    "content-type": "application/json",
  },
  body: '{"item":"book","count":12345}',
};

Deno.test("log-message: the request record has the chosen parts, authorization and cookie redacted by default", async () => {
  const policy = await instantiate("log-message", {
    logRequestHeaders: true,
    logRequestPayload: true,
    excludedRequestHeaders: "User-Agent",
    maxPayloadBytes: 10,
    logMetadata: true,
  });
  assert.equal(policy.mode.requestBodyMode, "BUFFER");
  assert.equal(policy.mode.responseHeaderMode, "SKIP");
  const [record, ...more] = await captured("debug", async () => {
    assert.equal(await onRequest(policy, request), undefined, "changes nothing");
  });
  assert.equal(more.length, 0);
  assert.equal(record.level, "info");
  assert.deepEqual(record.properties, {
    route: "test-route",
    requestId: "req-1",
    method: "POST",
    path: "/orders?id=1",
    headers: {
      authorization: ["[REDACTED]"],
      cookie: ["[REDACTED]", "[REDACTED]"],
      "x-api-key": ["k-123"],
      "content-type": ["application/json"],
    },
    payload: { bytes: 29, text: '{"item":"b', truncated: true },
    metadata: {},
  });
});

Deno.test("log-message: the response record; redactedHeaders replaces the default list", async () => {
  const policy = await instantiate("log-message", {
    level: "debug",
    logResponseHeaders: true,
    logResponsePayload: true,
    redactedHeaders: ["set-cookie", "X-Api-Key"],
  });
  assert.equal(policy.mode.responseBodyMode, "BUFFER");
  const records = await captured("debug", async () => {
    await onRequest(policy, request);
    await onResponse(policy, request, {
      status: 201,
      headers: { "set-cookie": "s=1", "x-api-key": "k" },
      body: "created",
    });
  });
  assert.equal(records.length, 2);
  assert.equal(records[0].properties.headers, undefined, "request headers not chosen");
  assert.deepEqual(records[1].properties, {
    route: "test-route",
    requestId: "req-1",
    method: "POST",
    path: "/orders?id=1",
    status: 201,
    headers: { "set-cookie": ["[REDACTED]"], "x-api-key": ["[REDACTED]"] },
    payload: { bytes: 7, text: "created", truncated: false },
  });
});

Deno.test("log-message: below the logger's level nothing is logged (or built)", async () => {
  const policy = await instantiate("log-message", { level: "debug", logRequestHeaders: true });
  const records = await captured("info", async () => void await onRequest(policy, request));
  assert.equal(records.length, 0);
});

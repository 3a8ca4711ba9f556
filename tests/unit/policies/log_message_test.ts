import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { phases, policy } from "../../support/policies.ts";

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
  requestId: "req-1",
};

Deno.test("log-message: the request record has the chosen parts, authorization and cookie redacted by default", async () => {
  await using log = await policy("log-message", {
    logRequestHeaders: true,
    logRequestPayload: true,
    excludedRequestHeaders: "User-Agent",
    maxPayloadBytes: 10,
    logMetadata: true,
  });
  const [record, ...more] = await captured("debug", async () => {
    const result = await log.request(request, { body: "not read" });
    assert.equal(result.trace[0].outcome, "passed", "changes nothing");
    assert.equal(result.upstream?.text(), request.body);
    assert.deepEqual(phases(result), ["request"], "no response phase");
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
  await using log = await policy("log-message", {
    level: "debug",
    logResponseHeaders: true,
    logResponsePayload: true,
    redactedHeaders: ["set-cookie", "X-Api-Key"],
  });
  const records = await captured("debug", async () => {
    const result = await log.request(request, {
      status: 201,
      headers: { "set-cookie": "s=1", "x-api-key": "k" },
      body: "created",
    });
    assert.equal(result.response.text(), "created", "the response body was buffered and passed on");
    assert.deepEqual(result.response.headers.getAll("set-cookie"), ["s=1"]);
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
  await using log = await policy("log-message", { level: "debug", logRequestHeaders: true });
  const records = await captured("info", async () => void await log.request(request));
  assert.equal(records.length, 0);
});

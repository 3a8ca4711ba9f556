/** api-key-auth: header and query keys, digests, callers, refusals, key sources. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { KeyRing } from "../../../policies/api-key-auth/keys.ts";
import { authPolicy, clientRequest, examples, parameterProblems, passes, refusal } from "./auth_support.ts";

const KEY = "k-0123456789abcdef";
const OTHER = "k-fedcba9876543210";
const digest = (key: string) => createHash("sha256").update(key).digest("hex");

Deno.test("api-key-auth: every example builds", async () => {
  for (const example of await examples("api-key-auth")) {
    await (await authPolicy(example.name, example.parameters)).close();
  }
});

Deno.test("api-key-auth: a known header key passes, names its caller and is removed", async () => {
  await using policy = await authPolicy("api-key-auth", {
    keys: [{ caller: "billing", key: KEY }, { caller: "reports", sha256: digest(OTHER) }],
  });
  for (const [key, caller] of [[KEY, "billing"], [OTHER, "reports"]]) {
    const result = await policy.request(clientRequest({ "x-api-key": key, accept: "*/*" }));
    assert.ok(passes(result));
    assert.deepEqual(result.upstream?.headers.toJSON(), { accept: ["*/*"] }, "the key is not sent upstream");
    assert.deepEqual(result.metadata.auth, { method: "api-key", subject: caller });
  }
});

Deno.test("api-key-auth: a missing, empty or unknown key is 401 with a JSON body", async () => {
  await using policy = await authPolicy("api-key-auth", { keys: [{ caller: "billing", key: KEY }] });
  const cases: [Record<string, string>, string][] = [
    [{}, "missing_api_key"],
    [{ "x-api-key": "" }, "missing_api_key"],
    [{ "x-api-key": OTHER }, "invalid_api_key"],
    [{ "x-api-key": KEY.slice(0, -1) }, "invalid_api_key"],
    [{ "x-api-key": "\u0000".repeat(5000) }, "invalid_api_key"],
  ];
  for (const [headers, error] of cases) {
    const result = await policy.request(clientRequest(headers));
    const answer = refusal(result);
    assert.equal(answer.status, 401);
    assert.equal((answer.body as { error: string }).error, error);
    assert.equal(result.metadata.auth, undefined);
  }
});

Deno.test("api-key-auth: a query key is read from the query and removed from it", async () => {
  await using policy = await authPolicy("api-key-auth", {
    key: "api_key",
    in: "query",
    keys: [{ caller: "c", key: KEY }],
  });
  const result = await policy.request(clientRequest({}, `/orders?page=2&api_key=${KEY}`));
  assert.equal(result.upstream?.path, "/orders?page=2");
  assert.equal(refusal(await policy.request(clientRequest({ "x-api-key": KEY }, "/orders"))).status, 401);
  await using kept = await authPolicy("api-key-auth", {
    key: "api_key",
    in: "query",
    forwardKey: true,
    keys: [{ caller: "c", key: KEY }],
  });
  const forwarded = await kept.request(clientRequest({}, `/?api_key=${KEY}`));
  assert.equal(forwarded.upstream?.path, `/?api_key=${KEY}`, "forwardKey keeps it");
});

Deno.test("api-key-auth: value-prefix is required and stripped", async () => {
  await using policy = await authPolicy("api-key-auth", {
    key: "Authorization",
    "value-prefix": "ApiKey ",
    keys: [{ caller: "c", key: KEY }],
  });
  assert.ok(passes(await policy.request(clientRequest({ authorization: `apikey ${KEY}` }))));
  assert.equal(refusal(await policy.request(clientRequest({ authorization: KEY }))).status, 401);
});

Deno.test("api-key-auth: keys from a file and from the engine config; bad entries fail the build", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keysFile = join(dir, "keys.yaml");
    await Deno.writeTextFile(keysFile, `- caller: from-file\n  key: ${KEY}\n`);
    await using fromFile = await authPolicy("api-key-auth", { keysFile });
    const fileResult = await fromFile.request(clientRequest({ "x-api-key": KEY }));
    assert.deepEqual(fileResult.metadata.auth, { method: "api-key", subject: "from-file" });
    await using fromConfig = await authPolicy("api-key-auth", {}, {
      apiKeyAuth: { keys: [{ caller: "from-config", sha256: digest(OTHER) }] },
    });
    const configResult = await fromConfig.request(clientRequest({ "x-api-key": OTHER }));
    assert.deepEqual(configResult.metadata.auth, { method: "api-key", subject: "from-config" });
    await Deno.writeTextFile(keysFile, `- caller: short\n  key: abc\n`);
    await assert.rejects(
      authPolicy("api-key-auth", { keysFile }),
      /\[0\]\.key must be a string of at least 16/,
    );
    await assert.rejects(authPolicy("api-key-auth", {}), /no keys/);
    await assert.rejects(
      authPolicy("api-key-auth", {
        keys: [{ caller: "a", key: KEY }, { caller: "b", sha256: digest(KEY) }],
      }),
      /the key of caller "b" is listed twice/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("api-key-auth: parameter problems never echo a key", () => {
  const problems = parameterProblems("api-key-auth", {
    keys: [{ caller: "c", key: "tooshort-secret" }, { caller: "d", sha256: "not-a-digest-secret" }],
  });
  assert.ok(problems.length >= 2, problems.join("\n"));
  for (const problem of problems) assert.doesNotMatch(problem, /tooshort-secret|not-a-digest-secret/);
});

Deno.test("KeyRing: holds digests only and compares every one", () => {
  const ring = new KeyRing([{ caller: "a", key: KEY }, { caller: "b", sha256: digest(OTHER) }]);
  assert.equal(ring.callerOf(KEY), "a");
  assert.equal(ring.callerOf(OTHER), "b");
  assert.equal(ring.callerOf(digest(OTHER)), undefined, "a digest is not a key");
  assert.doesNotMatch(Deno.inspect(ring, { depth: 5 }), new RegExp(KEY));
});

/** api-key-auth: header and query keys, digests, callers, refusals, key sources. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { UpstreamRequestModifications } from "@tollgate/sdk";
import { KeyRing } from "../../../policies/api-key-auth/keys.ts";
import { denial, examples, instantiate, parameterProblems, request } from "./auth_support.ts";

const KEY = "k-0123456789abcdef";
const OTHER = "k-fedcba9876543210";
const digest = (key: string) => createHash("sha256").update(key).digest("hex");

Deno.test("api-key-auth: every example builds", async () => {
  for (const example of await examples("api-key-auth")) await instantiate(example.name, example.parameters);
});

Deno.test("api-key-auth: a known header key passes, names its caller and is removed", async () => {
  const policy = await instantiate("api-key-auth", {
    keys: [{ caller: "billing", key: KEY }, { caller: "reports", sha256: digest(OTHER) }],
  });
  for (const [key, caller] of [[KEY, "billing"], [OTHER, "reports"]]) {
    const ctx = request({ "x-api-key": key });
    const action = await policy.onRequest!(ctx, {});
    assert.ok(action instanceof UpstreamRequestModifications);
    assert.deepEqual(action.removeHeaders, ["x-api-key"]);
    assert.deepEqual(ctx.shared.metadata.auth, { method: "api-key", subject: caller });
  }
});

Deno.test("api-key-auth: a missing, empty or unknown key is 401 with a JSON body", async () => {
  const policy = await instantiate("api-key-auth", { keys: [{ caller: "billing", key: KEY }] });
  const cases: [Record<string, string>, string][] = [
    [{}, "missing_api_key"],
    [{ "x-api-key": "" }, "missing_api_key"],
    [{ "x-api-key": OTHER }, "invalid_api_key"],
    [{ "x-api-key": KEY.slice(0, -1) }, "invalid_api_key"],
    [{ "x-api-key": "\u0000".repeat(5000) }, "invalid_api_key"],
  ];
  for (const [headers, error] of cases) {
    const ctx = request(headers);
    const answer = denial(await policy.onRequest!(ctx, {}));
    assert.equal(answer.status, 401);
    assert.equal((answer.body as { error: string }).error, error);
    assert.equal(ctx.shared.metadata.auth, undefined);
  }
});

Deno.test("api-key-auth: a query key is read from the query and removed from it", async () => {
  const policy = await instantiate("api-key-auth", {
    key: "api_key",
    in: "query",
    keys: [{ caller: "c", key: KEY }],
  });
  const action = await policy.onRequest!(request({}, `/orders?page=2&api_key=${KEY}`), {});
  assert.ok(action instanceof UpstreamRequestModifications);
  assert.deepEqual(action.query, { remove: ["api_key"] });
  assert.equal(denial(await policy.onRequest!(request({ "x-api-key": KEY }, "/orders"), {})).status, 401);
  const kept = await instantiate("api-key-auth", {
    key: "api_key",
    in: "query",
    forwardKey: true,
    keys: [{ caller: "c", key: KEY }],
  });
  assert.equal(await kept.onRequest!(request({}, `/?api_key=${KEY}`), {}), undefined, "forwardKey keeps it");
});

Deno.test("api-key-auth: value-prefix is required and stripped", async () => {
  const policy = await instantiate("api-key-auth", {
    key: "Authorization",
    "value-prefix": "ApiKey ",
    keys: [{ caller: "c", key: KEY }],
  });
  assert.ok(
    await policy.onRequest!(request({ authorization: `apikey ${KEY}` }), {}) instanceof
      UpstreamRequestModifications,
  );
  assert.equal(denial(await policy.onRequest!(request({ authorization: KEY }), {})).status, 401);
});

Deno.test("api-key-auth: keys from a file and from the engine config; bad entries fail the build", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keysFile = join(dir, "keys.yaml");
    await Deno.writeTextFile(keysFile, `- caller: from-file\n  key: ${KEY}\n`);
    const fromFile = await instantiate("api-key-auth", { keysFile });
    const ctx = request({ "x-api-key": KEY });
    await fromFile.onRequest!(ctx, {});
    assert.deepEqual(ctx.shared.metadata.auth, { method: "api-key", subject: "from-file" });
    const fromConfig = await instantiate("api-key-auth", {}, {
      apiKeyAuth: { keys: [{ caller: "from-config", sha256: digest(OTHER) }] },
    });
    const other = request({ "x-api-key": OTHER });
    await fromConfig.onRequest!(other, {});
    assert.deepEqual(other.shared.metadata.auth, { method: "api-key", subject: "from-config" });
    await Deno.writeTextFile(keysFile, `- caller: short\n  key: abc\n`);
    await assert.rejects(
      instantiate("api-key-auth", { keysFile }),
      /\[0\]\.key must be a string of at least 16/,
    );
    await assert.rejects(instantiate("api-key-auth", {}), /no keys/);
    await assert.rejects(
      instantiate("api-key-auth", {
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

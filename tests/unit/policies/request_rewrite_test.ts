import assert from "node:assert/strict";
import { exchange, policy, type TestRequest } from "../../support/policies.ts";

/** Runs request-rewrite on a request; the result says what the upstream receives. */
const rewrite = (parameters: Record<string, unknown>, request: TestRequest) =>
  exchange("request-rewrite", parameters, request);

Deno.test("request-rewrite: prefix replacement keeps the rest of the path and the query", async () => {
  const parameters = { path: { prefix: { match: "/api/v1", replacement: "/v1" } } };
  const done = await rewrite(parameters, { path: "/api/v1/users/42?x=1" });
  assert.equal(done.upstream?.path, "/v1/users/42?x=1");
  assert.equal(done.trace[0].outcome, "modified", "a path change (Envoy re-routes)");
  const unmatched = await rewrite(parameters, { path: "/other/api/v1" });
  assert.equal(unmatched.upstream?.path, "/other/api/v1", "no match: unchanged");
  assert.equal(unmatched.trace[0].outcome, "passed");
});

Deno.test("request-rewrite: RE2 regex with numbered and named groups; only the path part is matched", async () => {
  const numbered = {
    path: { regex: { pattern: "^/users/([0-9]+)/profile$", substitution: "/profiles/$1" } },
  };
  assert.equal(
    (await rewrite(numbered, { path: "/users/42/profile?full=1" })).upstream?.path,
    "/profiles/42?full=1",
  );
  assert.equal((await rewrite(numbered, { path: "/users/x/profile" })).upstream?.path, "/users/x/profile");
  const named = { path: { regex: { pattern: "/(?P<seg>v[0-9])/", substitution: "/api-$<seg>/$$/" } } };
  assert.equal(
    (await rewrite(named, { path: "/a/v1/b/v2/c" })).upstream?.path,
    "/a/api-v1/$/b/api-v2/$/c",
    "every match",
  );
});

Deno.test("request-rewrite: query remove, set and add after the path; method and host", async () => {
  const done = await rewrite({
    path: { prefix: { match: "/old", replacement: "/new" } },
    query: { remove: ["debug"], set: { source: "gateway", tag: ["a", "b"] }, add: { x: "1 2" } },
    method: "POST",
    host: "users.internal:8443",
  }, { path: "/old/list?debug=1&x=0&source=client" });
  assert.equal(done.immediate, undefined);
  assert.equal(done.upstream?.path, "/new/list?x=0&source=gateway&tag=a&tag=b&x=1+2");
  assert.equal(done.upstream?.method, "POST");
  assert.equal(done.upstream?.authority, "users.internal:8443");
});

Deno.test("request-rewrite: a substitution that gives no leading / is a policy failure, never a skip", async () => {
  const failed = await rewrite({ path: { regex: { pattern: "^/(.*)$", substitution: "$1" } } }, {
    path: "/users",
  });
  assert.equal(failed.upstream, undefined);
  assert.equal(failed.immediate?.status, 500, "onFailure deny answers for the failed policy");
  assert.equal(failed.trace[0].outcome, "failed");
});

Deno.test("request-rewrite: config errors at chain build name the parameter", async () => {
  const regex = (pattern: string, substitution: string) => ({ path: { regex: { pattern, substitution } } });
  await assert.rejects(policy("request-rewrite", regex("(?=a)", "/")), /path.regex.pattern: not an RE2/);
  await assert.rejects(policy("request-rewrite", regex("^/(a)$", "/$2")), /\$2 but the pattern has 1 groups/);
  await assert.rejects(
    policy("request-rewrite", regex("^/(a)$", "/$<x>")),
    /\$<x> but the pattern has no group/,
  );
  await assert.rejects(policy("request-rewrite", regex("^/(a)$", "/$")), /a lone "\$"/);
  await assert.rejects(policy("request-rewrite", {}), /is required/);
  await assert.rejects(policy("request-rewrite", { host: "a b" }), /must match/);
  await assert.rejects(
    policy("request-rewrite", { path: { prefix: { match: "/a", replacement: "/b" }, regex: {} } }),
    /./,
  );
});

import assert from "node:assert/strict";
import { runPolicies } from "../../../src/chain/run.ts";
import { chain, entry } from "../../support/chains.ts";
import { instantiate, requestState, type TestRequest } from "../../support/policies.ts";

/** Runs request-rewrite through the engine's chain runner; the request as the upstream would get it. */
async function rewrite(parameters: Record<string, unknown>, request: TestRequest) {
  const { policy } = await instantiate("request-rewrite", parameters);
  const state = requestState(request);
  const c = chain(entry("request-rewrite:v1", policy));
  const outcome = await runPolicies(c.request, 0, c.request.length, "request", state);
  return {
    outcome,
    path: state.path,
    method: state.method,
    authority: state.authority,
    changes: state.changes,
  };
}

Deno.test("request-rewrite: prefix replacement keeps the rest of the path and the query", async () => {
  const parameters = { path: { prefix: { match: "/api/v1", replacement: "/v1" } } };
  const done = await rewrite(parameters, { path: "/api/v1/users/42?x=1" });
  assert.equal(done.path, "/v1/users/42?x=1");
  assert.equal(done.changes.path, true, "a path change (Envoy re-routes)");
  assert.equal(
    (await rewrite(parameters, { path: "/other/api/v1" })).path,
    "/other/api/v1",
    "no match: unchanged",
  );
});

Deno.test("request-rewrite: RE2 regex with numbered and named groups; only the path part is matched", async () => {
  const numbered = {
    path: { regex: { pattern: "^/users/([0-9]+)/profile$", substitution: "/profiles/$1" } },
  };
  assert.equal((await rewrite(numbered, { path: "/users/42/profile?full=1" })).path, "/profiles/42?full=1");
  assert.equal((await rewrite(numbered, { path: "/users/x/profile" })).path, "/users/x/profile");
  const named = { path: { regex: { pattern: "/(?P<seg>v[0-9])/", substitution: "/api-$<seg>/$$/" } } };
  assert.equal(
    (await rewrite(named, { path: "/a/v1/b/v2/c" })).path,
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
  assert.equal(done.outcome, undefined);
  assert.equal(done.path, "/new/list?x=0&source=gateway&tag=a&tag=b&x=1+2");
  assert.equal(done.method, "POST");
  assert.equal(done.authority, "users.internal:8443");
});

Deno.test("request-rewrite: a substitution that gives no leading / is a policy failure, never a skip", async () => {
  const { outcome } = await rewrite(
    { path: { regex: { pattern: "^/(.*)$", substitution: "$1" } } },
    { path: "/users" },
  );
  assert.equal(outcome?.statusCode, 500, "onFailure deny answers for the failed policy");
});

Deno.test("request-rewrite: config errors at chain build name the parameter", async () => {
  const regex = (pattern: string, substitution: string) => ({ path: { regex: { pattern, substitution } } });
  await assert.rejects(instantiate("request-rewrite", regex("(?=a)", "/")), /path.regex.pattern: not an RE2/);
  await assert.rejects(
    instantiate("request-rewrite", regex("^/(a)$", "/$2")),
    /\$2 but the pattern has 1 groups/,
  );
  await assert.rejects(
    instantiate("request-rewrite", regex("^/(a)$", "/$<x>")),
    /\$<x> but the pattern has no group/,
  );
  await assert.rejects(instantiate("request-rewrite", regex("^/(a)$", "/$")), /a lone "\$"/);
  await assert.rejects(instantiate("request-rewrite", {}), /is required/);
  await assert.rejects(instantiate("request-rewrite", { host: "a b" }), /must match/);
  await assert.rejects(
    instantiate("request-rewrite", { path: { prefix: { match: "/a", replacement: "/b" }, regex: {} } }),
    /./,
  );
});

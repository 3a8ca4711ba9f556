import assert from "node:assert/strict";
import { parseTemplate, splitPath } from "../../../policies/redirect/template.ts";
import { policy } from "../../support/policies.ts";

Deno.test("redirect: the location template takes scheme, host, path and query from the request", async () => {
  await using redirect = await policy("redirect", {
    statusCode: 308,
    location: "https://{host}{path}{query}",
  });
  const answer = await redirect.request({
    scheme: "http",
    authority: "shop.example.com:8080",
    path: "/a/b%20c?x=1&y=2",
  });
  assert.equal(answer.upstream, undefined, "the upstream is not called");
  assert.equal(answer.immediate?.status, 308);
  assert.deepEqual(answer.response.headers.toJSON(), {
    location: ["https://shop.example.com:8080/a/b%20c?x=1&y=2"],
  });
  const noQuery = await redirect.request({ authority: "h", path: "/p" });
  assert.equal(noQuery.response.headers.get("location"), "https://h/p");
});

Deno.test("redirect: 302 by default; a fixed path location", async () => {
  await using redirect = await policy("redirect", { location: "/maintenance?from={scheme}" });
  const answer = await redirect.request({ scheme: "https" });
  assert.equal(answer.immediate?.status, 302);
  assert.equal(answer.response.headers.get("location"), "/maintenance?from=https");
});

Deno.test("redirect: templates: literal braces, unknown fields and stray braces", () => {
  const values = { scheme: "https", host: "h", path: "/p", query: "" };
  assert.equal(parseTemplate("/x{{y}}{path}")(values), "/x{y}/p");
  assert.throws(() => parseTemplate("/{hots}"), /unknown field \{hots\}/);
  assert.throws(() => parseTemplate("/{path"), /unmatched "\{"/);
  assert.throws(() => parseTemplate("/path}"), /unmatched "\}"/);
  assert.deepEqual(splitPath("/a?"), { path: "/a", query: "" });
  assert.deepEqual(splitPath("/a?b=1?c"), { path: "/a", query: "?b=1?c" });
});

Deno.test("redirect: config errors at chain build: a bad template, a status that is not a redirect, a relative result", async () => {
  await assert.rejects(policy("redirect", { location: "https://{domain}/" }), /unknown field \{domain\}/);
  await assert.rejects(
    policy("redirect", { location: "elsewhere" }),
    /must give an absolute URL or start with "\/"/,
  );
  await assert.rejects(policy("redirect", { location: "/x y" }), /must match \^/);
  await assert.rejects(policy("redirect", { location: "/x", statusCode: 200 }), /must be one of/);
});

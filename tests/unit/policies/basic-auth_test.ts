/** basic-auth: bcrypt and argon2id users, refusals, plain text refused, caching, user sources. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { UpstreamRequestModifications } from "@tollgate/sdk";
import { argon2id, bcrypt } from "hash-wasm";
import {
  authPolicy,
  clientRequest,
  denial,
  examples,
  instantiate,
  passes,
  refusal,
  request,
} from "./auth_support.ts";

const salt = new Uint8Array(16).fill(7);
const ALICE = await bcrypt({ password: "alice-pass", salt, costFactor: 4, outputType: "encoded" });
const BOB = await argon2id({
  password: "bob:pass é",
  salt,
  parallelism: 1,
  iterations: 1,
  memorySize: 1024,
  hashLength: 32,
  outputType: "encoded",
});
const users = [{ username: "alice", passwordHash: ALICE }, { username: "bob", passwordHash: BOB }];
const basic = (user: string, password: string) => ({
  authorization: `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)))}`,
});

Deno.test("basic-auth: every example builds", async () => {
  for (const example of await examples("basic-auth")) {
    await (await authPolicy(example.name, example.parameters)).close();
  }
});

Deno.test("basic-auth: bcrypt and argon2id users pass; the user is in metadata; Authorization is removed", async () => {
  await using policy = await authPolicy("basic-auth", { users });
  for (const [user, password] of [["alice", "alice-pass"], ["bob", "bob:pass é"]]) {
    const result = await policy.request(clientRequest(basic(user, password)));
    assert.ok(passes(result), user);
    assert.equal(
      result.upstream?.headers.has("authorization"),
      false,
      "the credentials are not sent upstream",
    );
    assert.deepEqual(result.metadata.auth, { method: "basic", subject: user });
  }
  await using forwarding = await authPolicy("basic-auth", { users, forwardAuthorization: true });
  const forwarded = await forwarding.request(clientRequest(basic("alice", "alice-pass")));
  assert.equal(forwarded.upstream?.headers.get("authorization"), basic("alice", "alice-pass").authorization);
});

Deno.test("basic-auth: missing, malformed and wrong credentials are 401 with the realm", async () => {
  await using policy = await authPolicy("basic-auth", { users, realm: "Back office" });
  const cases = [
    {},
    { authorization: "Bearer abc" },
    { authorization: "Basic" },
    { authorization: "Basic !!!not-base64" },
    { authorization: `Basic ${btoa("no-colon")}` },
    { authorization: `Basic ${btoa("\xff\xfe:x")}` },
    basic("alice", "wrong"),
    basic("carol", "alice-pass"),
    basic("alice", ""),
    basic("alice", "alice-pass" + "x".repeat(100)),
    basic("bob", "p".repeat(100_000)),
  ] as Record<string, string>[];
  for (const headers of cases) {
    const result = await policy.request(clientRequest(headers));
    const answer = refusal(result);
    assert.equal(answer.status, 401, JSON.stringify(headers));
    assert.equal(answer.headers["www-authenticate"], 'Basic realm="Back office", charset="UTF-8"');
    assert.deepEqual(answer.body, { error: "unauthorized", message: "valid Basic credentials are required" });
    assert.equal(result.metadata.auth, undefined);
  }
});

Deno.test("basic-auth: plain-text passwords and broken hashes fail the build without showing them", async () => {
  for (const passwordHash of ["hunter2-plain", "$2b$10$short", "$argon2i$v=19$m=1,t=1,p=1$aaaa$bbbb"]) {
    await assert.rejects(
      authPolicy("basic-auth", { users: [{ username: "u", passwordHash }] }),
      (error: Error) => {
        assert.match(error.message, /users\[0\]\.passwordHash is not a bcrypt or argon2id hash/);
        assert.ok(!error.message.includes(passwordHash), "the value is not echoed");
        return true;
      },
    );
  }
  await assert.rejects(authPolicy("basic-auth", {}), /no users/);
  await assert.rejects(
    authPolicy("basic-auth", { users: [users[0], { ...users[1], username: "alice" }] }),
    /user "alice" is listed twice/,
  );
});

// Caching and sharing happen inside one instance: these call it directly to see which calls hash.
Deno.test("basic-auth: a successful check is cached; a wrong password never is", async () => {
  const policy = await instantiate("basic-auth", { users, cacheTtl: "1h" });
  const good = basic("alice", "alice-pass");
  const first = policy.onRequest!(request(good), {});
  assert.ok(first instanceof Promise, "the first check hashes");
  await first;
  const ctx = request(good);
  const again = policy.onRequest!(ctx, {});
  assert.ok(again instanceof UpstreamRequestModifications, "a cache hit answers without hashing");
  assert.deepEqual(ctx.shared.metadata.auth, { method: "basic", subject: "alice" });
  const wrong = policy.onRequest!(request(basic("alice", "alice-pas")), {});
  assert.ok(wrong instanceof Promise, "a different password for a cached user is checked");
  assert.equal(denial(await wrong).status, 401);
  const retried = policy.onRequest!(request(basic("alice", "alice-pas")), {});
  assert.ok(retried instanceof Promise, "failures are not cached");
  await retried;
  const uncached = await instantiate("basic-auth", { users, cacheTtl: "0s" });
  await uncached.onRequest!(request(good), {});
  const rechecked = uncached.onRequest!(request(good), {});
  assert.ok(rechecked instanceof Promise, "cacheTtl 0s checks every time");
  await rechecked;
});

Deno.test("basic-auth: concurrent requests with the same credentials share one check", async () => {
  const policy = await instantiate("basic-auth", { users, cacheTtl: "0s" });
  const contexts = Array.from({ length: 5 }, () => request(basic("bob", "bob:pass é")));
  const pending = contexts.map((ctx) => policy.onRequest!(ctx, {}));
  const results = await Promise.all(pending);
  assert.ok(results.every((r) => r instanceof UpstreamRequestModifications));
  const [first, ...others] = contexts.map((ctx) => ctx.shared.metadata.auth);
  assert.deepEqual(first, { method: "basic", subject: "bob" });
  assert.ok(others.every((auth) => auth === first), "one check made one result for all five");
  const wrong = await Promise.all([1, 2].map(() => policy.onRequest!(request(basic("bob", "x")), {})));
  assert.ok(wrong.every((r) => denial(r).status === 401));
});

Deno.test("basic-auth: users from a file and from the engine config", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const usersFile = join(dir, "users.json");
    await Deno.writeTextFile(usersFile, JSON.stringify([users[0]]));
    await using fromFile = await authPolicy("basic-auth", { usersFile });
    assert.ok(passes(await fromFile.request(clientRequest(basic("alice", "alice-pass")))));
    await using fromConfig = await authPolicy("basic-auth", {}, { basicAuth: { users: [users[1]] } });
    assert.ok(passes(await fromConfig.request(clientRequest(basic("bob", "bob:pass é")))));
    await Deno.writeTextFile(usersFile, "just: a mapping");
    await assert.rejects(authPolicy("basic-auth", { usersFile }), /must hold a list of mappings/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

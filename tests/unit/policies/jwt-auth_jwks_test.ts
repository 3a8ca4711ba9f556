/**
 * jwt-auth with a JWKS URL, against a real HTTP server on 127.0.0.1 that counts its fetches:
 * fetched once and cached, fetched again on an unknown kid (at most once per
 * jwksMinRefreshInterval), refreshed when old, stale keys used while the server fails within
 * the stale window, a timeout, and 503 (not 401) when no keys can be had.
 */
import assert from "node:assert/strict";
import type { JWK } from "jose";
import { KeysUnavailable, RemoteJwks } from "../../../policies/jwt-auth/keys.ts";
import { authPolicy, clientRequest, passes, refusal } from "./auth_support.ts";
import { testKey } from "./jwt_keys.ts";

/** A JWKS endpoint whose keys and status the test changes. */
class JwksServer {
  keys: JWK[] = [];
  status = 200;
  hang = false;
  fetches = 0;
  readonly #server: Deno.HttpServer;
  readonly #released = Promise.withResolvers<void>();

  constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
      this.fetches++;
      if (this.hang) await this.#released.promise;
      return this.status === 200
        ? Response.json({ keys: this.keys })
        : new Response("failing", { status: this.status });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.addr as Deno.NetAddr).port}/jwks.json`;
  }

  async close(): Promise<void> {
    this.#released.resolve();
    await this.#server.shutdown();
  }
}

const bearer = (token: string) => clientRequest({ authorization: `Bearer ${token}` });

Deno.test("jwt-auth JWKS URL: fetched once, then again only for an unknown kid", async () => {
  const server = new JwksServer();
  try {
    const first = await testKey("RS256", "k1");
    const rotated = await testKey("ES256", "k2");
    server.keys = [first.jwk];
    await using policy = await authPolicy("jwt-auth", { jwksUrl: server.url, jwksMinRefreshInterval: "0s" });
    assert.equal(server.fetches, 0, "nothing is fetched before the first request");
    for (const sub of ["a", "b", "c"]) {
      assert.ok(
        passes(await policy.request(bearer(await first.sign({ sub })))),
      );
    }
    assert.equal(server.fetches, 1, "three tokens, one fetch");
    server.keys = [first.jwk, rotated.jwk];
    assert.ok(
      passes(await policy.request(bearer(await rotated.sign()))),
    );
    assert.equal(server.fetches, 2, "the unknown kid k2 made it fetch again");
    const stranger = await testKey("ES256", "k3");
    assert.equal(refusal(await policy.request(bearer(await stranger.sign()))).status, 401);
    assert.equal(server.fetches, 3, "k3 is still unknown after a fetch: 401");
  } finally {
    await server.close();
  }
});

Deno.test("jwt-auth JWKS URL: unknown kids fetch at most once per jwksMinRefreshInterval", async () => {
  const server = new JwksServer();
  try {
    const known = await testKey("ES256", "known");
    server.keys = [known.jwk];
    await using policy = await authPolicy("jwt-auth", { jwksUrl: server.url, jwksMinRefreshInterval: "1h" });
    await policy.request(bearer(await known.sign()));
    for (const kid of ["x1", "x2", "x3"]) {
      const random = await testKey("ES256", kid);
      assert.equal(refusal(await policy.request(bearer(await random.sign()))).status, 401);
    }
    assert.equal(server.fetches, 1, "random kids did not reach the identity provider");
  } finally {
    await server.close();
  }
});

Deno.test("jwt-auth JWKS URL: no keys yet and the server failing is 503, not 401 and not a throw", async () => {
  const server = new JwksServer();
  try {
    server.status = 500;
    const key = await testKey("ES256");
    await using policy = await authPolicy("jwt-auth", { jwksUrl: server.url });
    const answer = refusal(await policy.request(bearer(await key.sign())));
    assert.equal(answer.status, 503);
    assert.deepEqual(answer.body, {
      error: "keys_unavailable",
      message: "the token's signing keys cannot be fetched now",
    });
  } finally {
    await server.close();
  }
});

Deno.test("RemoteJwks: refreshed when old; stale keys serve within the stale window while the server fails", async () => {
  const server = new JwksServer();
  try {
    const key = await testKey("ES256", "k1");
    server.keys = [key.jwk];
    let now = 0;
    const jwks = new RemoteJwks(
      server.url,
      { timeoutMs: 5000, refreshMs: 1000, minRefreshMs: 100, staleIfErrorMs: 10_000 },
      () => now,
    );
    const header = { alg: "ES256", kid: "k1" };
    const token = { payload: "", signature: "" } as never;
    await jwks.getKey(header, token);
    now = 500;
    await jwks.getKey(header, token);
    assert.equal(server.fetches, 1, "fresh keys are not fetched again");
    now = 1500;
    await jwks.getKey(header, token);
    assert.equal(server.fetches, 2, "old keys are fetched again");
    server.status = 500;
    now = 3000;
    await jwks.getKey(header, token);
    assert.equal(server.fetches, 3, "the failed refresh was tried");
    now = 3050;
    await jwks.getKey(header, token);
    assert.equal(server.fetches, 3, "within jwksMinRefreshInterval of a failure nothing is fetched");
    now = 1500 + 1000 + 10_000;
    await assert.rejects(
      async () => await jwks.getKey(header, token),
      KeysUnavailable,
      "past the stale window",
    );
    server.status = 200;
    now += 200;
    await jwks.getKey(header, token);
    assert.equal(server.fetches, 5, "the server is back: fresh keys");
  } finally {
    await server.close();
  }
});

Deno.test("RemoteJwks: a fetch that does not answer in time fails as KeysUnavailable", async () => {
  const server = new JwksServer();
  try {
    server.hang = true;
    const jwks = new RemoteJwks(server.url, {
      timeoutMs: 100,
      refreshMs: 1000,
      minRefreshMs: 0,
      staleIfErrorMs: 0,
    });
    await assert.rejects(
      async () => await jwks.getKey({ alg: "ES256" }, { payload: "", signature: "" } as never),
      KeysUnavailable,
    );
    assert.equal(server.fetches, 1);
  } finally {
    await server.close();
  }
});

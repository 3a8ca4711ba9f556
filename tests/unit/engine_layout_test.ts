/** `deno task dev`'s permission layout grants exactly the hosts and files its config's policies name. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { layoutForConfig } from "../../scripts/lib/engine_layout.ts";

Deno.test("the dev layout grants the JWKS hosts, Redis servers and key files the config's policies name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "tollgate.yaml");
    await Deno.writeTextFile(
      config,
      `routes:
  - name: a
    policies:
      - { name: jwt-auth, version: v1, parameters: { jwksUrl: "https://idp.example.com/jwks.json" } }
      - { name: api-key-auth, version: v1, parameters: { keysFile: /run/secrets/keys.yaml } }
  - name: b
    policies:
      - { name: jwt-auth, version: v1, parameters: { jwksUrl: "http://127.0.0.1:8081/k" } }
      - { name: set-headers, version: v1, parameters: { requestHeaders: [{ name: x, value: "https://no.example" }] } }
      - { name: rate-limit, version: v1, parameters: { backend: redis, limits: [{ limit: 1, duration: 1s }], redis: { port: 6380 } } }
  - name: c
    policies:
      - { name: rate-limit, version: v1, parameters: { limits: [{ limit: 1, duration: 1s }], redis: { host: memory.only } } }
`,
    );
    const layout = await layoutForConfig(config);
    assert.deepEqual(layout.policyHosts, ["idp.example.com:443", "127.0.0.1:8081", "127.0.0.1:6380"]);
    assert.deepEqual(layout.policyFiles, ["/run/secrets/keys.yaml"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the dev layout grants the directory of a file a policy writes, not the file alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "tollgate.yaml");
    await Deno.writeTextFile(
      config,
      `routes:
  - name: a
    policies:
      - { name: audit-log, version: v1, parameters: { sink: file, path: /var/log/tollgate/a.jsonl } }
      - { name: audit-log, version: v1, parameters: { sink: file, path: /var/log/tollgate/b.jsonl } }
      - { name: audit-log, version: v1, parameters: { sink: log } }
`,
    );
    const layout = await layoutForConfig(config);
    assert.deepEqual(layout.policyWriteDirs, ["/var/log/tollgate"]);
    assert.deepEqual(layout.policyFiles, []);
    assert.deepEqual(layout.policyHosts, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the dev layout grants the OTLP collector of `tracing`, and none without it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "tollgate.yaml");
    await Deno.writeTextFile(
      config,
      "routes: []\ntracing: { otlp: { endpoint: http://otel-collector:4318 } }\n",
    );
    assert.equal((await layoutForConfig(config)).tracingHost, "otel-collector:4318");
    await Deno.writeTextFile(config, "routes: []\n");
    assert.equal((await layoutForConfig(config)).tracingHost, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Header mutations Envoy would refuse with a bare 500 (control characters), or act on in a
 * way that breaks the exchange (framing headers), are policy failures under the policy's
 * rule, proven through a real Envoy started from docs/examples/envoy.yaml, on both transports.
 * (A framing header named in a built-in policy's parameters is refused earlier, when the chain
 * is built: tests/unit/kernel_test.ts; here the request names it, as a policy's code may.)
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { Upstream } from "../support/upstream.ts";
import type { ListenTransport } from "../../src/config/types.ts";

const TRANSPORTS: readonly ListenTransport[] = ["lean", "grpc-js"];

const setRequestHeader = (name: string, value: string, onFailure?: string) => ({
  name: "set-headers",
  version: "v1",
  parameters: { requestHeaders: [{ name, value }] },
  ...(onFailure ? { onFailure } : {}),
});

/** Sets the header the request names in x-set-name (known only at request time). */
const requestNamed = (onFailure?: string) => ({
  name: "request-named-header",
  version: "v1",
  ...(onFailure ? { onFailure } : {}),
});

const config = {
  routes: [
    {
      name: "control-char",
      policies: [setRequestHeader("x-bad", "a\u0001b", "continue"), setRequestHeader("x-after", "ran")],
    },
    { name: "content-length", policies: [requestNamed()] },
    { name: "transfer-encoding", policies: [requestNamed("continue"), setRequestHeader("x-after", "ran")] },
  ],
};

const headerRules = (transport: ListenTransport): Deno.TestDefinition => ({
  name:
    `invalid header mutations are policy failures under their rule, through a real Envoy (${transport} transport)`,
  fn: (t) => refusesInvalidMutations(t, transport),
});

async function refusesInvalidMutations(t: Deno.TestContext, transport: ListenTransport) {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config: { ...config, listen: { transport } } });
  const envoy = await Envoy.start({
    routes: config.routes.map(({ name }) => ({ name, prefix: `/${name}` })),
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${envoy.url}${path}`, { headers, signal: AbortSignal.timeout(5000) });
  try {
    await t.step(
      "a 0x01 in a header value with onFailure continue: the request goes on without it",
      async () => {
        const response = await get("/control-char/x");
        await response.body?.cancel();
        assert.equal(response.status, 200);
        const [received] = upstream.requestsTo("/control-char/x");
        assert.equal(received.headers.get("x-bad"), null);
        assert.equal(received.headers.get("x-after"), "ran", "the next policy ran");
        assert.ok(
          engine.records().some((r) =>
            r.policy === "set-headers:v1" && r.rule === "continue" &&
            String(r.reason).includes("control character")
          ),
          `the failure is logged:\n${engine.lines.join("\n")}`,
        );
      },
    );

    await t.step(
      "setting content-length is refused (deny: a JSON 500 at once, not a hung request)",
      async () => {
        const response = await get("/content-length/x", {
          "x-set-name": "content-length",
          "x-set-value": "5",
        });
        assert.equal(response.status, 500);
        assert.equal((await response.json()).error, "policy_error");
        assert.equal(upstream.requestsTo("/content-length").length, 0);
      },
    );

    await t.step(
      "setting transfer-encoding with onFailure continue: the request goes on without it",
      async () => {
        const response = await get("/transfer-encoding/x", {
          "x-set-name": "transfer-encoding",
          "x-set-value": "chunked",
        });
        await response.body?.cancel();
        assert.equal(response.status, 200);
        const [received] = upstream.requestsTo("/transfer-encoding/x");
        assert.equal(received.headers.get("transfer-encoding"), null);
        assert.equal(received.headers.get("x-after"), "ran");
      },
    );

    await t.step("Envoy rejected no mutation", async () => {
      assert.equal(await envoy.stat("http.ingress_http.ext_proc.rejected_header_mutations"), 0);
    });
  } finally {
    await envoy.stop();
    const code = await engine.stop();
    await upstream.stop();
    assert.equal(code, 0, `engine exited with ${code}:\n${engine.lines.join("\n")}`);
  }
}

for (const transport of TRANSPORTS) Deno.test(headerRules(transport));

Deno.test("a framing header in set-headers' parameters stops startup, naming the parameter", async () => {
  const engine = await EngineProcess.start({
    config: { routes: [{ name: "framing", policies: [setRequestHeader("Content-Length", "5")] }] },
    noWait: true,
  });
  const code = await engine.exited();
  await engine.stop();
  assert.equal(code, 2);
  assert.match(
    engine.lines.join("\n"),
    /routes\[0\]\.policies\[0\]\.parameters\.requestHeaders\[0\]\.name: header content-length: .*managed by Envoy.*\(route "framing", policy set-headers:v1\)/,
  );
});

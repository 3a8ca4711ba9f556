/**
 * Python policies through a real Envoy and the real executor, started and supervised by the
 * engine (a child process under the production permission flags).
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";
import { policyRef as policy } from "../support/config_refs.ts";

const config = {
  python: { workers: 4, timeout: "2s" },
  routes: [
    { name: "appendix-a", policies: [policy("add-python-header")] },
    {
      name: "mixed",
      policies: [
        policy("trace", { label: "T1" }),
        policy("py-stamp", { label: "P" }),
        policy("trace", { label: "T2" }),
      ],
    },
    {
      name: "batch",
      policies: [
        policy("py-stamp", { label: "A" }),
        policy("py-stamp", { label: "B" }),
        policy("py-stamp", { label: "C" }),
      ],
    },
    { name: "py-deny", policies: [policy("py-deny"), policy("trace", { label: "never" })] },
    { name: "py-raise", policies: [policy("py-raise")] },
    { name: "print", policies: [policy("py-print")] },
    {
      name: "continue-after-raise",
      policies: [
        policy("py-raise", {}, { onFailure: "continue" }),
        policy("set-headers", { requestHeaders: [{ name: "x-after", value: "ran" }] }),
      ],
    },
    {
      name: "json",
      policies: [policy("json-body-rewrite", { set: { source: "gateway" }, remove: ["secret"] })],
    },
  ],
};

const routes = config.routes.map((r) => ({ name: r.name, prefix: `/${r.name}` }));

async function get(url: string, init?: RequestInit) {
  const response = await fetch(url, init);
  const body = await response.text();
  return { status: response.status, headers: response.headers, body };
}

const pythonCalls = async (engine: EngineProcess) => {
  const metrics = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  return Number(
    /^tollgate_python_call_duration_seconds_count\{outcome="ok"\} (\d+)$/m.exec(metrics)?.[1] ?? 0,
  );
};

Deno.test("Python policies through a real Envoy", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config });
  const envoy = await Envoy.start({ routes, upstreamPort: upstream.port, extproc: engine.extproc });
  try {
    await t.step("the seed's Appendix A policy, unchanged, adds its header", async () => {
      const response = await get(`${envoy.url}/appendix-a`);
      assert.equal(response.status, 200);
      assert.equal(upstream.requestsTo("/appendix-a")[0].headers.get("x-python-policy"), "hello-from-python");
    });

    await t.step("TypeScript -> Python -> TypeScript, each reading what the previous one wrote", async () => {
      const response = await get(`${envoy.url}/mixed`);
      const [received] = upstream.requestsTo("/mixed");
      assert.equal(received.headers.get("x-trace"), "T1, P, T2");
      assert.equal(received.headers.get("x-seen-by-p"), "T1", "Python saw the header TypeScript set");
      assert.equal(
        response.headers.get("x-py-metadata"),
        "T1,P,T2",
        "Python saw metadata written after it, by T2",
      );
      assert.equal(response.headers.get("x-trace-metadata"), "T1,P,T2", "TypeScript saw Python's metadata");
      assert.equal(response.headers.get("x-trace"), "T2, P, T1", "response phase in reverse");
    });

    await t.step(
      "adjacent Python policies take one round trip per phase, with one-by-one results",
      async () => {
        const before = await pythonCalls(engine);
        const response = await get(`${envoy.url}/batch`);
        assert.equal(
          await pythonCalls(engine) - before,
          2,
          "one call for the request phase, one for the response",
        );
        const [received] = upstream.requestsTo("/batch");
        assert.equal(received.headers.get("x-trace"), "A, B, C");
        assert.equal(received.headers.get("x-seen-by-b"), "A");
        assert.equal(received.headers.get("x-seen-by-c"), "A,B");
        assert.equal(response.headers.get("x-trace"), "C, B, A");
      },
    );

    await t.step("a Python immediate response short-circuits the chain and the upstream", async () => {
      const response = await get(`${envoy.url}/py-deny`);
      assert.equal(response.status, 429);
      assert.equal(response.headers.get("retry-after"), "7");
      assert.deepEqual(JSON.parse(response.body), { error: "slow down" });
      assert.equal(upstream.requestsTo("/py-deny").length, 0);
    });

    await t.step(
      "a Python exception gives the failure response (deny) or is skipped (continue)",
      async () => {
        const denied = await get(`${envoy.url}/py-raise`);
        assert.equal(denied.status, 500);
        assert.equal(denied.headers.get("content-type"), "application/json");
        const body = JSON.parse(denied.body);
        assert.equal(body.error, "policy_error");
        assert.equal(body.policy, "py-raise:v1");
        assert.ok(!denied.body.includes("deliberate"), "internal error text is not leaked");
        assert.equal(upstream.requestsTo("/py-raise").length, 0);
        const continued = await get(`${envoy.url}/continue-after-raise`);
        assert.equal(continued.status, 200);
        assert.equal(upstream.requestsTo("/continue-after-raise")[0].headers.get("x-after"), "ran");
        assert.ok(
          engine.lines.some((l) => l.includes("deliberate failure in python")),
          "the error is logged",
        );
      },
    );

    await t.step(
      "a JSON body rewritten in Python arrives upstream with a correct content-length",
      async () => {
        const response = await get(`${envoy.url}/json`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ user: "ada", secret: "s3cr3t", nested: { a: [1, 2] } }),
        });
        assert.equal(response.status, 200);
        const [received] = upstream.requestsTo("/json");
        const text = new TextDecoder().decode(received.body);
        assert.deepEqual(JSON.parse(text), { user: "ada", nested: { a: [1, 2] }, source: "gateway" });
        assert.equal(received.headers.get("content-length"), String(received.body.length));
        const bad = await get(`${envoy.url}/json`, { method: "POST", body: "not json" });
        assert.equal(bad.status, 400);
      },
    );

    await t.step("what a policy prints is logged as its text, never as a record it chose", async () => {
      const printed = await get(`${envoy.url}/print`);
      assert.equal(printed.status, 200);
      const forged = (channel: string) =>
        engine.records().filter((r) => String(r.message).includes(`forged via ${channel}`));
      await waitFor("the printed lines in the engine's log", () => forged("fd 2").length > 0, 5000);
      for (const channel of ["print", "sys.stderr", "fd 2"]) {
        const records = forged(channel);
        assert.ok(records.length > 0, channel);
        for (const record of records) {
          assert.equal(record.level, "INFO", channel);
          assert.notEqual(record.message, `forged via ${channel}`, channel);
          assert.deepEqual(JSON.parse(String(record.text)), {
            level: "error",
            logger: "executor.server",
            msg: `forged via ${channel}`,
          });
        }
      }
      for (const channel of ["print", "sys.stderr"]) {
        assert.ok(forged(channel).every((r) => r.policy === "py-print:v1"), channel);
      }
    });

    await t.step("the executor's log lines appear in the engine's log, marked as Python's", () => {
      const records = engine.records();
      assert.ok(
        records.some((r) =>
          (r.logger as string)?.includes("python") &&
          /loaded|ready|listening|serving/i.test(String(r.message))
        ),
      );
    });
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});

/**
 * Hot reload of a running engine behind a real Envoy: a good change takes effect without
 * dropping requests, a broken one is refused and traffic keeps the old behaviour, and a
 * request in flight finishes on the chain it started with.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { ExtProcClient, mutationLines, requestHeaders, responseHeaders } from "../support/extproc_client.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";

const versioned = (version: string) => ({
  routes: [{
    name: "api",
    policies: [{
      name: "set-headers",
      version: "v1",
      parameters: {
        requestHeaders: [{ name: "x-version", value: version }],
        responseHeaders: [{ name: "x-version", value: version }],
      },
    }],
  }],
});

/** Sends requests back to back until stopped; records every status and version seen. */
function traffic(url: string) {
  const seen: { status: number; version: string | null }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const response = await fetch(url);
      await response.body?.cancel();
      seen.push({ status: response.status, version: response.headers.get("x-version") });
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await done;
    },
  };
}

Deno.test("config hot reload behind a real Envoy", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config: versioned("1") });
  const envoy = await Envoy.start({
    routes: [{ name: "api", prefix: "/" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const load = traffic(`${envoy.url}/api`);
  try {
    await waitFor("traffic", () => load.seen.length > 20);

    await t.step("a good change takes effect without dropping requests", async () => {
      await engine.writeConfig(versioned("2"));
      await waitFor("version 2", () => load.seen.at(-1)?.version === "2");
      const before = load.seen.length;
      await waitFor("more traffic", () => load.seen.length > before + 20);
      assert.ok(load.seen.every((r) => r.status === 200), "every request succeeded during the reload");
      assert.ok(load.seen.every((r) => r.version === "1" || r.version === "2"));
      const firstTwo = load.seen.findIndex((r) => r.version === "2");
      assert.ok(
        load.seen.slice(firstTwo).every((r) => r.version === "2"),
        "the switch is atomic: no going back",
      );
    });

    await t.step("a broken change is refused, logged, and traffic keeps the old behaviour", async () => {
      const broken = versioned("3");
      (broken.routes[0].policies[0].parameters.requestHeaders[0] as { name?: string }).name = undefined;
      await engine.writeConfig({
        ...broken,
        routes: [...broken.routes, { name: "x", policies: [{ name: "nope", version: "v1" }] }],
      });
      await waitFor(
        "the rejection to be logged",
        () => engine.lines.some((line) => line.includes("config change rejected")),
      );
      const rejection = engine.lines.find((line) => line.includes("config change rejected"))!;
      assert.match(
        rejection,
        /routes\[0\]\.policies\[0\]\.parameters\.requestHeaders\[0\]\.name: is required/,
      );
      assert.match(rejection, /routes\[1\]\.policies\[0\]\.name: unknown policy nope/);
      const before = load.seen.length;
      await waitFor("more traffic", () => load.seen.length > before + 20);
      assert.ok(load.seen.slice(before).every((r) => r.status === 200 && r.version === "2"));
      const metrics = await (await fetch(`${engine.adminUrl}/metrics`)).text();
      assert.match(metrics, /tollgate_config_reloads_total\{result="applied"\} 1/);
      assert.match(metrics, /tollgate_config_reloads_total\{result="rejected"\} 1/);
    });

    await t.step("invalid YAML is refused the same way, and a fix applies afterwards", async () => {
      await Deno.writeTextFile(engine.configFile, "routes: [\n");
      await waitFor(
        "the YAML rejection",
        () => engine.lines.filter((l) => l.includes("config change rejected")).length === 2,
      );
      await engine.writeConfig(versioned("4"));
      await waitFor("version 4", () => load.seen.at(-1)?.version === "4");
    });
  } finally {
    await load.stop();
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});

Deno.test("a request in flight finishes on the chain it started with", async () => {
  const engine = await EngineProcess.start({ config: versioned("old") });
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  try {
    const inFlight = client.open();
    assert.deepEqual(mutationLines(await inFlight.exchange(requestHeaders("api", "/x"))), ["x-version=old"]);
    await engine.writeConfig(versioned("new"));
    await waitFor("the reload", () => engine.lines.some((line) => line.includes("config reloaded")));
    assert.deepEqual(mutationLines(await inFlight.exchange(responseHeaders(200))), ["x-version=old"]);
    await inFlight.finish();
    const fresh = client.open();
    assert.deepEqual(mutationLines(await fresh.exchange(requestHeaders("api", "/y"))), ["x-version=new"]);
    await fresh.finish();
  } finally {
    client.close();
    assert.equal(await engine.stop(), 0);
  }
});

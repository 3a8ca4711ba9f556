/**
 * Config mistakes behind a real Envoy under traffic: a non-atomic rewrite (truncate, then
 * write in parts with pauses, as `echo >` of a big file does) never serves a request
 * without its policies; an empty file is refused; a reload that drops policies says so; a
 * condition typo is refused at reload. Every request of the loop must carry the stamp.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";

const stamp = (value: string) => ({
  name: "set-headers",
  version: "v1",
  parameters: {
    requestHeaders: [{ name: "x-stamp", value }],
    responseHeaders: [{ name: "x-stamp", value }],
  },
});

/** Many filler routes first and the route under traffic last, so any prefix of the file lacks it. */
function bigConfig(version: string, extra: Record<string, unknown>[] = []) {
  const filler = Array.from({ length: 300 }, (_, i) => ({ name: `filler-${i}`, policies: [stamp(`f${i}`)] }));
  return { routes: [...filler, ...extra, { name: "api", policies: [stamp(version)] }] };
}

/** Sends requests back to back until stopped; records the status and stamp of each. */
function traffic(url: string) {
  const seen: { status: number; stamp: string | null }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const response = await fetch(url);
      await response.body?.cancel();
      seen.push({ status: response.status, stamp: response.headers.get("x-stamp") });
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

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Truncates the file and writes `text` in `parts` pieces, pausing `pauseMs` after each. */
async function writeInParts(path: string, text: string, parts: number, pauseMs: number): Promise<void> {
  const file = await Deno.open(path, { write: true, truncate: true });
  try {
    const bytes = new TextEncoder().encode(text);
    const size = Math.ceil(bytes.length / parts);
    for (let offset = 0; offset < bytes.length; offset += size) {
      await delay(pauseMs);
      let chunk = bytes.subarray(offset, offset + size);
      while (chunk.length > 0) chunk = chunk.subarray(await file.write(chunk));
    }
  } finally {
    file.close();
  }
}

Deno.test("config writes behind a real Envoy under traffic never unprotect a request", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config: bigConfig("1") });
  const envoy = await Envoy.start({
    routes: [{ name: "api", prefix: "/" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const load = traffic(`${envoy.url}/api`);
  const text = (config: Record<string, unknown>) =>
    stringify(EngineProcess.fullConfig(engine.layout, config));
  /** The problems of each rejected reload, as logged. */
  const rejections = () =>
    engine.records().filter((r) => String(r.message).includes("config change rejected")).map((r) =>
      String(r.problems)
    );
  const moreTraffic = async (count = 20) => {
    const before = load.seen.length;
    await waitFor("more traffic", () => load.seen.length > before + count);
  };
  try {
    await waitFor("traffic", () => load.seen.length > 20);

    await t.step(
      "a truncate-and-write in parts (echo > of a big file) applies only the whole file",
      async () => {
        const content = text(bigConfig("2"));
        assert.ok(content.length > 50_000, `a big file (${content.length} bytes)`);
        await writeInParts(engine.configFile, content, 6, 200);
        await waitFor("stamp 2", () => load.seen.at(-1)?.stamp === "2");
        await moreTraffic();
        assert.ok(!engine.lines.some((l) => l.includes("drops what was serving")), "nothing was dropped");
      },
    );

    await t.step("an empty file (echo -n >) is refused and the running config keeps serving", async () => {
      await Deno.writeTextFile(engine.configFile, "");
      await waitFor("the rejection", () => rejections().length === 1);
      assert.match(rejections()[0], /the config is empty \(a file caught mid-write\?\)/);
      await moreTraffic();
      await Deno.writeTextFile(engine.configFile, "# only a comment\n");
      await waitFor("the second rejection", () => rejections().length === 2);
      await Deno.writeTextFile(engine.configFile, text({}).replace(/^routes: \[\]\n/m, ""));
      await waitFor("the third rejection", () => rejections().length === 3);
      assert.match(rejections()[2], /routes: is required/);
      await moreTraffic();
    });

    await t.step(
      "an executionCondition typo is refused at reload, naming route, policy and expression",
      async () => {
        const typo = bigConfig("3");
        const api = typo.routes.at(-1)!;
        api.policies = [{ ...stamp("3"), executionCondition: 'request.methd == "GET"' } as never];
        await engine.writeConfig(typo);
        await waitFor("the rejection", () => rejections().length === 4);
        assert.ok(
          rejections()[3].includes(
            'routes[300].policies[0].executionCondition: CEL expression "request.methd == \\"GET\\"" ' +
              'does not type-check: No such key: methd (route "api", policy set-headers:v1)',
          ),
          rejections()[3],
        );
        await moreTraffic();
      },
    );

    await t.step("a reload that drops a route and a policy logs what it drops, once", async () => {
      const smaller = bigConfig("4");
      smaller.routes.splice(0, 1); // filler-0 removed
      smaller.routes[0].policies = []; // filler-1 loses its policy
      await engine.writeConfig(smaller);
      await waitFor("stamp 4", () => load.seen.at(-1)?.stamp === "4");
      const drops = engine.records().filter((r) => String(r.message).includes("drops what was serving"));
      assert.equal(drops.length, 1);
      assert.equal(
        drops[0].dropped,
        'route "filler-0" (removed; it ran set-headers:v1); route "filler-1": set-headers:v1',
      );
    });

    await load.stop();
    const unstamped = load.seen.filter((r) => r.status !== 200 || r.stamp === null);
    assert.equal(
      unstamped.length,
      0,
      `${unstamped.length} of ${load.seen.length} responses lacked the policy`,
    );
    const received = upstream.requestsTo("/api");
    assert.ok(
      received.every((r) => r.headers.get("x-stamp") !== null),
      "the upstream saw the stamp every time",
    );
    assert.equal(received.length, load.seen.length);
  } finally {
    await load.stop();
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});

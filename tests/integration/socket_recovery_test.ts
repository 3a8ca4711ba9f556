/**
 * A lost ext_proc socket (its directory removed by a /tmp cleaner, or the path taken by
 * another file) is noticed, reported on /readyz and recreated; Envoy's new connections
 * then reach Tollgate again. Real Envoy, engine as a child process, on both transports.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";
import type { ListenTransport } from "../../src/config/types.ts";

const TRANSPORTS: readonly ListenTransport[] = ["lean", "grpc-js"];

const configFor = (transport: ListenTransport) => ({
  listen: { transport },
  routes: [{ name: "traced", policies: [{ name: "trace", version: "v1", parameters: { label: "T" } }] }],
});

async function readiness(engine: EngineProcess): Promise<{ status: number; reasons: string[] }> {
  const response = await fetch(`${engine.adminUrl}/readyz`);
  return { status: response.status, reasons: (await response.json()).reasons };
}

async function lostCount(engine: EngineProcess): Promise<number> {
  const text = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("tollgate_extproc_socket_lost_total "));
  return Number(line?.split(" ")[1] ?? 0);
}

const socketRecovery = (transport: ListenTransport): Deno.TestDefinition => ({
  name: `a removed ext_proc socket is reported and recreated; Envoy reconnects (${transport} transport)`,
  fn: (t) => recovers(t, transport),
});

async function recovers(t: Deno.TestContext, transport: ListenTransport) {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config: configFor(transport) });
  const envoy = await Envoy.start({
    routes: [{ name: "traced", prefix: "/" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const socket = engine.layout.extprocSocket!;
  const runtimeDir = engine.layout.runtimeDirs[0];
  /** A request through Envoy; on success the policy must have run. */
  async function request(path: string): Promise<number> {
    const response = await fetch(`${envoy.url}${path}`, { signal: AbortSignal.timeout(5000) });
    await response.body?.cancel();
    if (response.status === 200) assert.equal(upstream.requestsTo(path)[0].headers.get("x-trace"), "T");
    return response.status;
  }
  try {
    assert.equal(await request("/before"), 200);
    const inode = (await Deno.lstat(socket)).ino;

    await t.step("the socket directory is removed: the socket comes back and Envoy reconnects", async () => {
      const connections = await envoy.stat("cluster.tollgate.upstream_cx_total");
      await Deno.remove(runtimeDir, { recursive: true });
      await waitFor("the socket to be recreated", async () => (await Deno.lstat(socket)).ino !== inode, 5000);
      assert.equal((await Deno.stat(socket)).mode! & 0o777, 0o660);
      assert.equal(await lostCount(engine), 1);
      assert.ok(engine.lines.some((l) => l.includes("was removed or replaced; recreating it")));
      await waitFor("/readyz to be ready", async () => (await readiness(engine)).status === 200, 5000);
      assert.equal(await request("/after-removal"), 200);
      assert.ok(
        await envoy.stat("cluster.tollgate.upstream_cx_total") > connections,
        "Envoy reached Tollgate on a new connection",
      );
    });

    await t.step(
      "while another file takes the path, /readyz says why and that file is left alone",
      async () => {
        const blocker = join(engine.dir, "not-a-socket");
        await Deno.writeTextFile(blocker, "x");
        await Deno.rename(blocker, socket); // atomically replaces the socket file
        // The first check reports the loss; the next attempt to recreate it finds the file.
        let last: { status: number; reasons: string[] } | undefined;
        await waitFor("/readyz to say what is in the way", async () => {
          last = await readiness(engine);
          return last.status === 503 &&
            last.reasons.some((r) => r.includes(socket) && r.includes("not a socket"));
        }, 5000).catch((error) => {
          throw new Error(`${error.message}; last /readyz: ${JSON.stringify(last)}`);
        });
        assert.equal(await Deno.readTextFile(socket), "x", "the file in the way is left alone");
        assert.equal(
          await request("/while-blocked"),
          200,
          "Envoy's open connection still serves, with policies",
        );
        await Deno.remove(socket);
        await waitFor(
          "/readyz to be ready again",
          async () => (await readiness(engine)).status === 200,
          5000,
        );
        assert.equal(await request("/after-block"), 200);
        assert.equal(await lostCount(engine), 2);
      },
    );
  } finally {
    await envoy.stop();
    const code = await engine.stop();
    await upstream.stop();
    assert.equal(code, 0, `engine exited with ${code}:\n${engine.lines.join("\n")}`);
  }
}

for (const transport of TRANSPORTS) Deno.test(socketRecovery(transport));

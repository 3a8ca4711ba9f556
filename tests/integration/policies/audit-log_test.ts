/**
 * Auditing policies through a real Envoy: an auditing policy sees a denied request's
 * decision trace in a frozen record and cannot change the response; its exception and a
 * blocked sink change neither the response nor when it arrives; a full queue drops records
 * and counts them; audit-log's file leaves a denied request's content out (hashes only).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EngineProcess } from "../../support/engine_process.ts";
import { Envoy } from "../../support/envoy.ts";
import { freePort, waitFor } from "../../support/ports.ts";
import { Upstream } from "../../support/upstream.ts";

/** A sink the probe posts records to; `/block` answers only once released. */
class ProbeSink {
  readonly records: Record<string, unknown>[] = [];
  readonly blocked: Record<string, unknown>[] = [];
  readonly port = freePort();
  readonly #release = Promise.withResolvers<void>();
  readonly #server = Deno.serve(
    { hostname: "127.0.0.1", port: this.port, onListen: () => {} },
    async (request) => {
      const record = await request.json();
      if (new URL(request.url).pathname === "/block") {
        this.blocked.push(record);
        await this.#release.promise;
      } else this.records.push(record);
      return new Response("ok");
    },
  );

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  release(): void {
    this.#release.resolve();
  }

  async stop(): Promise<void> {
    this.release();
    await this.#server.shutdown();
  }
}

const probe = (parameters: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name: "audit-probe",
  version: "v1",
  parameters,
  ...extra,
});
const respond403 = { name: "respond", version: "v1", parameters: { statusCode: 403, body: "denied" } };
const stamp = {
  name: "set-headers",
  version: "v1",
  parameters: { requestHeaders: [{ name: "x-stamp", value: "1" }] },
};

async function metric(engine: EngineProcess, name: string): Promise<number> {
  const text = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
}

Deno.test({
  name:
    "auditing policies: see the trace, change nothing, never hold a response; audit-log withholds content",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const sink = new ProbeSink();
    const dir = await Deno.makeTempDir({ prefix: "tollgate-audit-" });
    const auditFile = join(dir, "audit.jsonl");
    const config = {
      limits: { auditQueue: 1 },
      routes: [
        {
          name: "probe-deny",
          policies: [probe({ url: sink.url("/seen"), returnsResponse: true }), respond403, stamp],
        },
        { name: "probe-throw", policies: [probe({ throws: true }), stamp] },
        { name: "probe-block", policies: [probe({ url: sink.url("/block") }, { timeout: "60s" })] },
        {
          name: "file",
          policies: [
            {
              name: "api-key-auth",
              version: "v1",
              parameters: { keys: [{ caller: "ci", key: "right-key-0123456789" }] },
              // /file/open/ is public: nothing decides, so its content is kept.
              executionCondition: '!request.path.startsWith("/file/open/")',
            },
            { name: "audit-log", version: "v1", parameters: { sink: "file", path: auditFile } },
          ],
        },
      ],
    };
    const upstream = Upstream.start();
    const engine = await EngineProcess.start({
      config,
      policyHosts: [`127.0.0.1:${sink.port}`],
      policyWriteDirs: [dir],
    });
    const routes = ["probe-deny", "probe-throw", "probe-block", "file"].map((name) => ({
      name,
      prefix: `/${name}`,
    }));
    const envoy = await Envoy.start({ routes, upstreamPort: upstream.port, extproc: engine.extproc });
    try {
      await t.step(
        "an auditing policy sees a denied request's trace, frozen; its return value is ignored",
        async () => {
          const response = await fetch(`${envoy.url}/probe-deny/x?q=1`, { headers: { "x-client": "c1" } });
          assert.equal(response.status, 403, "the deny stands: the probe's 418 is ignored");
          assert.equal(await response.text(), "denied");
          await waitFor("the audit record", () => Promise.resolve(sink.records.length === 1));
          const record = sink.records[0] as {
            decision: string;
            status: number;
            path: string;
            route: string;
            requestId: string;
            headers: [string, string][];
            trace: { policy: string; outcome: string; reason?: string; phase: string }[];
            frozen: boolean;
          };
          assert.equal(record.frozen, true, "the record cannot be changed");
          assert.equal(record.decision, "denied");
          assert.equal(record.status, 403);
          assert.equal(record.route, "probe-deny");
          assert.equal(record.path, "/probe-deny/x?q=1");
          assert.match(record.requestId, /^[0-9a-f-]{36}$/);
          assert.ok(record.headers.some(([name, value]) => name === "x-client" && value === "c1"));
          assert.deepEqual(
            record.trace.map(({ policy, outcome, reason, phase }) => ({ policy, outcome, reason, phase })),
            [
              { policy: "respond", outcome: "denied", reason: "403", phase: "request" },
              { policy: "set-headers", outcome: "skipped", reason: "short_circuit", phase: "request" },
            ],
          );
        },
      );

      await t.step("an auditing policy's exception changes nothing", async () => {
        const response = await fetch(`${envoy.url}/probe-throw/x`);
        await response.body?.cancel();
        assert.equal(response.status, 200);
        assert.equal(upstream.requestsTo("/probe-throw/x")[0].headers.get("x-stamp"), "1");
        await waitFor(
          "the failure logged",
          () => Promise.resolve(engine.lines.some((l) => l.includes("deliberate audit failure"))),
        );
      });

      await t.step("audit-log's file: a denied request's content only as hashes", async () => {
        const secret = "stolen-key-abcdef123456";
        const denied = await fetch(`${envoy.url}/file/x?token=${secret}`, {
          headers: { "x-api-key": secret, "x-note": secret },
        });
        await denied.body?.cancel();
        assert.equal(denied.status, 401);
        const passed = await fetch(`${envoy.url}/file/open/y?page=2`, { headers: { "x-note": "plain" } });
        await passed.body?.cancel();
        assert.equal(passed.status, 200);
        let lines: Record<string, unknown>[] = [];
        await waitFor("two audit lines", async () => {
          const text = await Deno.readTextFile(auditFile).catch(() => "");
          lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
          return lines.length === 2;
        });
        const text = await Deno.readTextFile(auditFile);
        assert.ok(!text.includes(secret), "the caught key appears nowhere");
        const [deniedLine, passedLine] = lines as Record<string, unknown>[];
        assert.equal(deniedLine.decision, "denied");
        assert.equal(deniedLine.contentWithheld, true);
        assert.equal(deniedLine.path, "/file/x");
        assert.match(String(deniedLine.querySha256), /^sha256:[0-9a-f]{64}$/);
        const headers = deniedLine.headers as Record<string, string[]>;
        assert.deepEqual(headers["x-api-key"], ["<redacted>"]);
        assert.match(headers["x-note"][0], /^sha256:[0-9a-f]{64}$/);
        assert.equal(passedLine.decision, "passed");
        assert.equal(passedLine.query, "page=2", "a passed request's query is kept");
        assert.deepEqual((passedLine.headers as Record<string, string[]>)["x-note"], ["plain"]);
      });

      await t.step("a blocked sink holds no response; a full queue drops and counts", async () => {
        const before = await metric(engine, "tollgate_audit_dropped_total");
        assert.equal(before, 0, "the family exists at zero");
        const first = await fetch(`${envoy.url}/probe-block/1`);
        await first.body?.cancel();
        assert.equal(first.status, 200);
        await waitFor("the sink to block", () => Promise.resolve(sink.blocked.length === 1));
        // The sink is blocked: the next responses still arrive, and the queue (1) fills.
        for (const n of [2, 3, 4]) {
          const response = await fetch(`${envoy.url}/probe-block/${n}`);
          await response.body?.cancel();
          assert.equal(response.status, 200, `response ${n} arrived while the sink was blocked`);
        }
        assert.equal(sink.blocked.length, 1, "the sink was still blocked");
        await waitFor(
          "drops counted",
          async () => await metric(engine, "tollgate_audit_dropped_total") === 2,
        );
        sink.release();
        await waitFor("the queued record to be audited", () => Promise.resolve(sink.blocked.length === 2));
        assert.ok(engine.lines.some((l) => l.includes("its queue of 1 is full")), "the drop is logged");
      });
    } finally {
      await envoy.stop();
      await engine.stop();
      await upstream.stop();
      await sink.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

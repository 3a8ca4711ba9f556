/** The data plane's pure parts: where each worker listens, and the watchdog's quarantine. */
import assert from "node:assert/strict";
import { workerAddress, workerSocket } from "../../src/config/worker_listen.ts";
import { Quarantine, QUARANTINE_MS, quarantineReason, WINDOW_MS } from "../../src/dataplane/quarantine.ts";

Deno.test("worker sockets: one worker keeps listen.socket; N get <name>-<i><ext> beside it", () => {
  assert.equal(workerSocket("/run/t/extproc.sock", 0, 1), "/run/t/extproc.sock");
  assert.deepEqual([0, 1].map((i) => workerSocket("/run/t/extproc.sock", i, 2)), [
    "/run/t/extproc-0.sock",
    "/run/t/extproc-1.sock",
  ]);
  assert.equal(workerSocket("/run/t/ext", 1, 2), "/run/t/ext-1");
  assert.equal(workerAddress("127.0.0.1:9000", 0, 1), "127.0.0.1:9000");
  assert.deepEqual([0, 1, 2].map((i) => workerAddress("[::1]:9000", i, 3)), [
    "[::1]:9000",
    "[::1]:9001",
    "[::1]:9002",
  ]);
});

Deno.test("quarantine: a second strike within the window quarantines for QUARANTINE_MS, then it lifts", () => {
  const quarantine = new Quarantine();
  const t0 = 1_000_000;
  assert.equal(quarantine.strike("spin:v1", t0), false);
  assert.deepEqual(quarantine.list(t0), []);
  // A strike outside the window starts over.
  assert.equal(quarantine.strike("spin:v1", t0 + WINDOW_MS + 1), false);
  assert.equal(quarantine.strike("spin:v1", t0 + WINDOW_MS + 2), true);
  const list = new Map(quarantine.list(t0 + WINDOW_MS + 3));
  assert.deepEqual([...list.keys()], ["spin:v1"]);
  assert.match(quarantineReason(list, "spin:v1", t0 + WINDOW_MS + 3)!, /spin:v1 is quarantined until/);
  assert.equal(quarantineReason(list, "other:v1", t0 + WINDOW_MS + 3), undefined);
  const after = t0 + WINDOW_MS + 2 + QUARANTINE_MS + 1;
  assert.equal(quarantineReason(list, "spin:v1", after), undefined);
  assert.deepEqual(quarantine.list(after), []);
});

/** Policy instances are closed when their chain is dropped, never while a request uses it. */
import assert from "node:assert/strict";
import type { EngineConfig } from "../../src/config/types.ts";
import { RouteTable } from "../../src/kernel/routes.ts";
import { clientAddressOf } from "../../src/extproc/address.ts";
import { chain, entry } from "../support/chains.ts";

function tableWith(closed: string[], fail = false): RouteTable {
  const closing = (name: string) => ({
    onRequest: () => undefined,
    close() {
      closed.push(name);
      if (fail) throw new Error("close failed");
    },
  });
  return new RouteTable(
    {} as EngineConfig,
    new Map([["r", chain(entry("a:v1", closing("a")), entry("b:v1", closing("b")))]]),
  );
}

Deno.test("a retired table closes its instances once its last request has finished", async () => {
  const closed: string[] = [];
  const table = tableWith(closed);
  table.acquire();
  table.acquire();
  const done = table.retire();
  table.release();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(closed, [], "still in use by one request");
  table.release();
  await done;
  assert.deepEqual(closed.sort(), ["a", "b"]);
});

Deno.test("a retired idle table closes at once; a failing close() is logged, not thrown", async () => {
  const closed: string[] = [];
  await tableWith(closed, true).retire();
  assert.deepEqual(closed.sort(), ["a", "b"]);
});

Deno.test("source.address becomes a bare IP; anything else is no address", () => {
  assert.equal(clientAddressOf("203.0.113.7:51234"), "203.0.113.7");
  assert.equal(clientAddressOf("[2001:db8::1]:443"), "2001:db8::1");
  assert.equal(clientAddressOf("2001:db8::1"), "2001:db8::1");
  assert.equal(clientAddressOf("/var/run/envoy.sock"), undefined);
  assert.equal(clientAddressOf(undefined), undefined);
  assert.equal(clientAddressOf("envoy_internal"), undefined);
});

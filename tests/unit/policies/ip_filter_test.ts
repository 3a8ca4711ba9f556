import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { forwardedClient, parseAddress } from "../../../policies/ip-filter/ranges.ts";
import { policy } from "../../support/policies.ts";

const lists = {
  allow: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"],
  deny: ["10.6.6.0/24", "2001:db8:bad::/48"],
};

Deno.test("ip-filter: allow and deny lists with IPv4 and IPv6 ranges; deny wins", async () => {
  await using filter = await policy("ip-filter", lists);
  const status = async (clientAddress: string) => (await filter.request({ clientAddress })).immediate?.status;
  assert.equal(await status("10.1.2.3"), undefined);
  assert.equal(await status("192.0.2.7"), undefined);
  assert.equal(await status("192.0.2.8"), 403, "outside the allow list");
  assert.equal(await status("10.6.6.1"), 403, "denied although allowed");
  assert.equal(await status("2001:db8::1"), undefined);
  assert.equal(await status("2001:DB8:0:0::1"), undefined, "any IPv6 notation");
  assert.equal(await status("2001:db8:bad::1"), 403);
  assert.equal(await status("2001:db9::1"), 403);
  assert.equal(await status("::ffff:10.1.2.3"), undefined, "IPv4-mapped IPv6 is matched as IPv4");
  assert.equal(await status("::ffff:10.6.6.1"), 403);
  const denied = await filter.request({ clientAddress: "192.0.2.8" });
  assert.equal(denied.upstream, undefined);
  assert.deepEqual(denied.response.json(), {
    error: "forbidden",
    message: "client address 192.0.2.8 is not allowed",
  });
});

Deno.test("ip-filter: a deny list alone allows everything else", async () => {
  await using filter = await policy("ip-filter", { deny: ["203.0.113.0/24"] });
  const allowed = await filter.request({ clientAddress: "198.51.100.1" });
  assert.equal(allowed.immediate, undefined);
  assert.equal(allowed.trace[0].outcome, "passed");
  assert.equal((await filter.request({ clientAddress: "203.0.113.9" })).immediate?.status, 403);
});

Deno.test("ip-filter: x-forwarded-for with trusted hops takes the (hops+1)-th entry from the right", async () => {
  assert.equal(forwardedClient(["1.1.1.1, 10.0.0.1"], 0), "10.0.0.1");
  assert.equal(forwardedClient(["1.1.1.1, 10.0.0.1", "172.16.0.1"], 1), "10.0.0.1", "several field lines");
  assert.equal(forwardedClient(["10.0.0.1"], 1), undefined);
  await using filter = await policy("ip-filter", { ...lists, source: "x-forwarded-for", trustedHops: 1 });
  const status = async (xff: string) =>
    (await filter.request({ headers: { "x-forwarded-for": xff }, clientAddress: "10.1.1.1" })).immediate
      ?.status;
  assert.equal(await status("10.1.2.3, 172.16.0.9"), undefined);
  assert.equal(
    await status("10.1.2.3, 203.0.113.5, 172.16.0.9"),
    403,
    "a spoofed entry on the left is ignored",
  );
});

Deno.test("ip-filter: an unknown or unparsable address fails closed with 403 and a throttled warning", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { capture: (record) => records.push(record) },
    loggers: [
      { category: ["tollgate", "policy", "ip-filter"], lowestLevel: "debug", sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    await using direct = await policy("ip-filter", lists);
    const missing = await direct.request({});
    assert.equal(missing.immediate?.status, 403);
    assert.equal(
      missing.response.json<{ message: string }>().message,
      "the client address could not be determined",
    );
    assert.match(String(records[0].properties.reason), /no source.address attribute/);
    await using forwarded = await policy("ip-filter", { ...lists, source: "x-forwarded-for" });
    for (const xff of ["not-an-ip", "10.1", "0x0a000001", "10.0.0.1%eth0"]) {
      assert.equal(
        (await forwarded.request({ headers: { "x-forwarded-for": xff } })).immediate?.status,
        403,
        xff,
      );
    }
    assert.equal((await forwarded.request({})).immediate?.status, 403, "no x-forwarded-for");
    assert.equal(records.length, 2, "one warning per instance and interval");
    assert.match(String(records[1].properties.reason), /not an IP address: "not-an-ip"/);
  } finally {
    await reset();
  }
});

Deno.test("ip-filter: addresses are read in the usual notations only", () => {
  assert.equal(parseAddress("10.0.0.1:8080")?.toString(), "10.0.0.1");
  assert.equal(parseAddress("[2001:db8::1]:443")?.toString(), "2001:db8::1");
  assert.equal(parseAddress("127.1"), undefined);
  assert.equal(parseAddress("010.0.0.1")?.toString(), undefined);
});

Deno.test("ip-filter: config errors at chain build: a bad entry, or no list at all", async () => {
  await assert.rejects(
    policy("ip-filter", { allow: ["10.0.0.0/33"] }),
    /allow: "10.0.0.0\/33" is not an IP/,
  );
  await assert.rejects(
    policy("ip-filter", { deny: ["example.com"] }),
    /deny: "example.com" is not an IP/,
  );
  await assert.rejects(policy("ip-filter", { deny: ["10.1/8"] }), /is not an IP address or CIDR range/);
  await assert.rejects(policy("ip-filter", {}), /allow or deny must list at least one/);
});

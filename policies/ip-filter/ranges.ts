/** Address lists parsed once per chain (ipaddr.js) and the client address of a request. */
import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [Address, number];

/**
 * Only the usual notations: dotted-quad IPv4 (not "127.1" or "0x7f.0.0.1", which ipaddr.js
 * would also read) and IPv6, so the policy and the upstream never read one text differently.
 */
const isStrictAddress = (text: string) =>
  ipaddr.IPv4.isValidFourPartDecimal(text) || (text.includes(":") && ipaddr.IPv6.isValid(text));

/** Whether an address is in a list of ranges. */
export type RangeMatcher = (address: Address) => boolean;

function parseRange(field: string, entry: string): Range {
  const [text, bits] = entry.split("/", 2);
  let range: Range;
  try {
    if (!isStrictAddress(text)) throw new Error("not an address");
    const address = ipaddr.parse(text);
    range = bits === undefined
      ? [address, address.kind() === "ipv4" ? 32 : 128]
      : ipaddr.parseCIDR(entry) as Range;
  } catch {
    throw new Error(`${field}: ${JSON.stringify(entry)} is not an IP address or CIDR range`);
  }
  const [address, prefix] = range;
  // An IPv4-mapped IPv6 range is matched as the IPv4 range it stands for.
  return address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() && prefix >= 96
    ? [address.toIPv4Address(), prefix - 96]
    : range;
}

/** Parses addresses and CIDR ranges; throws naming the first entry that is neither. */
export function compileRanges(field: string, entries: readonly string[]): RangeMatcher {
  const ranges = entries.map((entry) => parseRange(field, entry));
  return (address) => ranges.some((range) => range[0].kind() === address.kind() && address.match(range));
}

const BRACKETED = /^\[([^\]]+)\](?::\d+)?$/;
const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/;

/**
 * An address as a client or proxy wrote it (`1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
 * `[2001:db8::1]:80`), IPv4-mapped IPv6 as IPv4; undefined if it is not an IP address.
 */
export function parseAddress(text: string): Address | undefined {
  const bare = BRACKETED.exec(text)?.[1] ?? IPV4_WITH_PORT.exec(text)?.[1] ?? text;
  if (!isStrictAddress(bare)) return undefined;
  try {
    return ipaddr.process(bare);
  } catch {
    return undefined;
  }
}

/**
 * The client's entry of x-forwarded-for values: the (trustedHops + 1)-th from the right;
 * undefined when there are fewer entries.
 */
export function forwardedClient(values: readonly string[], trustedHops: number): string | undefined {
  const entries = values.flatMap((v) => v.split(",")).map((e) => e.trim());
  return entries.length > trustedHops ? entries[entries.length - 1 - trustedHops] : undefined;
}

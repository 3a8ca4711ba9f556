/** Envoy's `source.address` attribute (`ip:port`, `[ipv6]:port`) as a bare IP address. */

const BRACKETED = /^\[([0-9A-Fa-f:.]+)\](?::\d+)?$/;
const IPV4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?$/;

/**
 * The IP of a `source.address` value; undefined for anything else (a pipe path, an
 * internal listener name, a missing attribute), so policies never mistake those for IPs.
 */
export function clientAddressOf(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const v6 = BRACKETED.exec(value);
  if (v6) return v6[1];
  const v4 = IPV4.exec(value);
  if (v4) return v4[1];
  // Envoy writes IPv6 with brackets only when a port follows; a bare one has several colons.
  return /^[0-9A-Fa-f:.]+$/.test(value) && value.split(":").length > 2 ? value : undefined;
}

/**
 * Matching a request's `Origin` against the configured allowed origins: exact values,
 * wildcard subdomains and RE2 regular expressions, each parsed once per chain.
 */
import { RE2JS } from "re2js";

/** Decides whether an `Origin` header value is allowed. */
export type OriginMatcher = (origin: string) => boolean;

const HOST_LABELS = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/;

function exactOrigin(entry: string): string {
  const problem = `allowedOrigins: ${JSON.stringify(entry)} is not an origin (scheme://host[:port], no path)`;
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    throw new Error(problem);
  }
  const bare = url.pathname === "/" && !url.search && !url.hash && !url.username && !url.password;
  if (url.origin === "null" || !bare) throw new Error(problem);
  return url.origin;
}

function wildcard(entry: string): OriginMatcher {
  const [scheme, rest] = entry.toLowerCase().split("://*.", 2);
  if (!scheme || !rest) {
    throw new Error(
      `allowedOrigins: ${JSON.stringify(entry)}: a wildcard must look like https://*.example.com`,
    );
  }
  const prefix = `${scheme}://`;
  const suffix = `.${exactOrigin(`${prefix}${rest}`).slice(prefix.length)}`;
  return (origin) => {
    if (!origin.startsWith(prefix) || !origin.endsWith(suffix)) return false;
    return HOST_LABELS.test(origin.slice(prefix.length, origin.length - suffix.length));
  };
}

function regex(entry: string): OriginMatcher {
  let re: RE2JS;
  try {
    re = RE2JS.compile(entry);
  } catch (error) {
    throw new Error(`allowedOrigins: ${JSON.stringify(entry)} is not an RE2 regular expression: ${error}`);
  }
  return (origin) => re.matches(origin);
}

/**
 * The matcher for a list of allowed origins (without "*", which the caller handles). Origins
 * are compared lower-cased, as browsers serialise them.
 */
export function compileOrigins(entries: readonly string[]): OriginMatcher {
  const exact = new Set<string>();
  const patterns: OriginMatcher[] = [];
  for (const entry of entries) {
    if (entry.startsWith("^")) patterns.push(regex(entry));
    else if (entry.includes("*")) patterns.push(wildcard(entry));
    else exact.add(entry === "null" ? "null" : exactOrigin(entry));
  }
  return (origin) => {
    const lower = origin.toLowerCase();
    return exact.has(lower) || patterns.some((matches) => matches(lower));
  };
}

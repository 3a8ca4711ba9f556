/** Finding the token in a request (a header with a scheme, or a cookie), and taking it out. */
import type { ReadonlyHeaders } from "@tollgate/sdk";

/** Where the policy looks for the token; names lower-cased. */
export interface TokenSource {
  readonly header: string;
  /** Lower-cased scheme (`bearer`); empty when the header holds the bare token. */
  readonly scheme: string;
  /** Empty for none. */
  readonly cookie: string;
}

/** A token found in the request, and where. */
export interface FoundToken {
  readonly token: string;
  readonly from: "header" | "cookie";
}

/**
 * The token of a request, or undefined when it has none: no header with the scheme (another
 * scheme is not ours to judge) and no cookie. A header with the scheme and nothing after it
 * gives an empty token, which fails verification like any malformed one.
 */
export function findToken(headers: ReadonlyHeaders, source: TokenSource): FoundToken | undefined {
  const value = headers.get(source.header);
  if (value !== undefined) {
    if (!source.scheme) return { token: value.trim(), from: "header" };
    const space = value.indexOf(" ");
    const scheme = (space === -1 ? value : value.slice(0, space)).toLowerCase();
    if (scheme === source.scheme) {
      return { token: space === -1 ? "" : value.slice(space + 1).trim(), from: "header" };
    }
  }
  if (!source.cookie) return undefined;
  for (const pair of cookiePairs(headers)) {
    if (pair.name === source.cookie) return { token: pair.value, from: "cookie" };
  }
  return undefined;
}

function cookiePairs(headers: ReadonlyHeaders): { name: string; value: string; text: string }[] {
  return headers.getAll("cookie").flatMap((line) => line.split(";")).flatMap((part) => {
    const text = part.trim();
    const eq = text.indexOf("=");
    return eq > 0 ? [{ name: text.slice(0, eq).trim(), value: text.slice(eq + 1).trim(), text }] : [];
  });
}

/** The `cookie` header without the named cookie; undefined when no other cookie is left. */
export function cookieWithout(headers: ReadonlyHeaders, name: string): string | undefined {
  const kept = cookiePairs(headers).filter((pair) => pair.name !== name).map((pair) => pair.text);
  return kept.length > 0 ? kept.join("; ") : undefined;
}

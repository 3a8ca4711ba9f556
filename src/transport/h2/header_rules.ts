/**
 * The rules a request's header list must keep (RFC 9113 §8.2 and §8.3): a request that
 * breaks them is malformed, and its stream is reset with PROTOCOL_ERROR instead of served.
 */

const REQUEST_PSEUDO_HEADERS = new Set([":method", ":scheme", ":authority", ":path"]);
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
]);

/** What makes a request's flat [name, value, …] header list malformed, or undefined if nothing. */
export function requestHeadersProblem(headers: readonly string[]): string | undefined {
  let regularSeen = false;
  let method = false;
  let scheme = false;
  let path = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const problem = nameProblem(name);
    if (problem) return problem;
    if (name.charCodeAt(0) === 0x3a) {
      if (regularSeen) return `pseudo-header ${name} after a regular header`;
      if (!REQUEST_PSEUDO_HEADERS.has(name)) return `pseudo-header ${name} in a request`;
      if (name === ":method") {
        if (method) return "a second :method";
        method = true;
      } else if (name === ":scheme") {
        if (scheme) return "a second :scheme";
        scheme = true;
      } else if (name === ":path") {
        if (path || headers[i + 1] === "") return path ? "a second :path" : "an empty :path";
        path = true;
      }
      continue;
    }
    regularSeen = true;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific header ${name}`;
    if (name === "te" && headers[i + 1] !== "trailers") return `te: ${headers[i + 1]}`;
  }
  if (!method || !scheme || !path) return "a request without :method, :scheme and :path";
  return undefined;
}

/** What makes trailers malformed (they carry no pseudo-headers), or undefined. */
export function trailersProblem(headers: readonly string[]): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const problem = nameProblem(name);
    if (problem) return problem;
    if (name.charCodeAt(0) === 0x3a) return `pseudo-header ${name} in trailers`;
  }
  return undefined;
}

/** Field names are lowercase in HTTP/2, and not empty. */
function nameProblem(name: string): string | undefined {
  if (name.length === 0) return "an empty header name";
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 0x41 && code <= 0x5a) return `header name ${name} is not lowercase`;
  }
  return undefined;
}

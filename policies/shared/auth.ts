/**
 * What the authentication policies leave for later policies of the request (rate-limit
 * keys, logging, Python policies): `ctx.shared.metadata.auth`.
 */

/** The metadata key every authentication policy writes. */
export const AUTH_METADATA_KEY = "auth";

/** `ctx.shared.metadata.auth` after a successful authentication. */
export interface AuthMetadata {
  /** Which policy authenticated the request. */
  readonly method: "jwt" | "api-key" | "basic";
  /** Who the caller is: the JWT's user-id claim, the API key's caller name, the Basic user. */
  readonly subject: string;
  /** The verified JWT's claims (jwt-auth only). */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** Quotes a value for an auth-param of `WWW-Authenticate` (RFC 9110 quoted-string). */
export function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, "\\$&")}"`;
}

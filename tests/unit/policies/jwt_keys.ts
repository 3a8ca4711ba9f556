/** Signing keys and tokens for the jwt-auth tests (made with jose, as an identity provider would). */
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";

/** A key pair of one algorithm: its public JWK (with `kid`) and a token signer. */
export interface TestKey {
  readonly alg: string;
  readonly jwk: JWK;
  sign(claims?: JWTPayload, header?: Record<string, unknown>): Promise<string>;
}

const now = () => Math.floor(Date.now() / 1000);

/** A fresh key pair for `alg`. */
export async function testKey(alg: string, kid = `${alg}-key`): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return {
    alg,
    jwk,
    sign: (claims = {}, header = {}) =>
      new SignJWT({ sub: "user-1", exp: now() + 600, ...claims })
        .setProtectedHeader({ alg, kid, ...header })
        .sign(privateKey),
  };
}

/** An HS256 token signed with `secret`. */
export function hmacToken(secret: string, claims: JWTPayload = {}): Promise<string> {
  return new SignJWT({ sub: "user-1", ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(now() + 600)
    .sign(new TextEncoder().encode(secret));
}

/** `base64url(JSON)`, for hand-made (unsigned or broken) tokens. */
export function segment(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

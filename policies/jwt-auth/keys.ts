/**
 * Where jwt-auth finds the key for a token: an HMAC secret (HS256), a JWKS given inline or
 * read from a file when the chain is built, or a JWKS fetched from a URL and kept fresh.
 */
import { createLocalJWKSet, errors, importJWK, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";

/** The signing keys cannot be had (the JWKS URL fails past its stale window): not the client's fault. */
export class KeysUnavailable extends Error {
  override name = "KeysUnavailable";
}

/** Timings of a remote JWKS, in milliseconds. */
export interface RemoteJwksTimings {
  /** One fetch's deadline. */
  readonly timeoutMs: number;
  /** Age after which the keys are fetched again. */
  readonly refreshMs: number;
  /** Least time between two fetch attempts (unknown kids, failures). */
  readonly minRefreshMs: number;
  /** How long past `refreshMs` the last keys stay in use while fetching fails. */
  readonly staleIfErrorMs: number;
}

type KeySet = ReturnType<typeof createLocalJWKSet>;

/**
 * A JWKS served over HTTP. Fetched on first use, again once older than `refreshMs`
 * (requests wait for that fetch, which is bounded by `timeoutMs`), and when a token names a
 * `kid` the keys lack. Concurrent requests share one fetch. When fetching fails, the last
 * keys serve until `refreshMs + staleIfErrorMs` after they were fetched; after that (or
 * before any fetch succeeded) {@link KeysUnavailable} is thrown.
 */
export class RemoteJwks {
  #keys: { set: KeySet; fetchedAt: number } | undefined;
  #lastAttempt = -Infinity;
  #inFlight: Promise<void> | undefined;
  #lastError = "not fetched";

  constructor(
    readonly url: string,
    private readonly timings: RemoteJwksTimings,
    private readonly now: () => number = Date.now,
  ) {}

  /** The getter `jwtVerify` calls for each token it verifies. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const set = await this.#current();
    try {
      return await set(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || !this.#mayFetch()) throw error;
      await this.#refresh().catch(() => {}); // keep the old keys; the token stays unmatched
      return await this.#keys!.set(header, token);
    }
  };

  #mayFetch(): boolean {
    return this.now() - this.#lastAttempt >= this.timings.minRefreshMs;
  }

  async #current(): Promise<KeySet> {
    const old = !this.#keys || this.now() - this.#keys.fetchedAt >= this.timings.refreshMs;
    if (old && (this.#mayFetch() || this.#inFlight)) {
      await this.#refresh().catch((error: Error) => this.#lastError = error.message);
    }
    const keys = this.#keys;
    if (!keys) throw new KeysUnavailable(`no JWKS fetched from ${this.url} yet (${this.#lastError})`);
    if (this.now() - keys.fetchedAt >= this.timings.refreshMs + this.timings.staleIfErrorMs) {
      throw new KeysUnavailable(`the JWKS from ${this.url} is past its stale window (${this.#lastError})`);
    }
    return keys.set;
  }

  #refresh(): Promise<void> {
    this.#inFlight ??= this.#fetch().finally(() => this.#inFlight = undefined);
    return this.#inFlight;
  }

  async #fetch(): Promise<void> {
    this.#lastAttempt = this.now();
    const response = await fetch(this.url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(this.timings.timeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status}`);
    }
    const set = createLocalJWKSet(await response.json() as JSONWebKeySet);
    this.#keys = { set, fetchedAt: this.now() };
  }
}

/** Key types of the asymmetric algorithms (HMAC keys come from a secret, never a JWKS). */
const PUBLIC_KEY_TYPES = ["RSA", "EC", "OKP"];

/**
 * A JWKS known when the chain is built; throws if it is not one or a key with an `alg`
 * cannot be imported (so a broken key fails the build, not every request).
 */
export async function staticJwks(jwks: unknown, where: string): Promise<JWTVerifyGetKey> {
  try {
    const set = createLocalJWKSet(jwks as JSONWebKeySet);
    for (const [i, key] of (jwks as JSONWebKeySet).keys.entries()) {
      if (!PUBLIC_KEY_TYPES.includes(String(key.kty))) {
        throw new Error(`keys[${i}].kty must be RSA, EC or OKP`);
      }
      if (key.alg) await importJWK(key, key.alg);
    }
    return set;
  } catch (error) {
    throw new Error(`${where} is not a valid JWKS: ${(error as Error).message}`);
  }
}

/** Smallest HS256 secret (RFC 7518 §3.2: a key at least as long as the hash output). */
export const MIN_SECRET_BYTES = 32;

/**
 * The key getter for a policy: HS* tokens get the secret, the others go to the JWKS; a
 * token whose kind of key is not configured is refused (as an invalid token).
 */
export function keyGetter(
  secret: Uint8Array | undefined,
  jwks: JWTVerifyGetKey | undefined,
): JWTVerifyGetKey {
  return (header, token) => {
    if (header.alg?.startsWith("HS")) {
      if (secret) return secret;
      throw new errors.JWKSNoMatchingKey("no HMAC secret is configured");
    }
    if (jwks) return jwks(header, token);
    throw new errors.JWKSNoMatchingKey("no JWKS is configured");
  };
}

/**
 * The accepted keys of an api-key-auth instance, held as SHA-256 digests only. A presented
 * key is hashed and compared with every digest in constant time, so neither the keys nor
 * which of them matched can be told from the time an answer takes.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** A key entry as the parameters, the config and key files give it. */
export interface KeyEntry {
  readonly caller: string;
  readonly key?: string;
  readonly sha256?: string;
}

const MIN_KEY_LENGTH = 16;
const HEX_DIGEST = /^[0-9a-fA-F]{64}$/;

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Checks entries from a file or the engine config (the schema checks the inline ones). */
export function checkEntries(entries: readonly Record<string, unknown>[], where: string): KeyEntry[] {
  return entries.map((entry, i) => {
    const at = `${where}[${i}]`;
    if (typeof entry.caller !== "string" || entry.caller === "") {
      throw new Error(`${at}.caller must be a name`);
    }
    const hasKey = entry.key !== undefined, hasDigest = entry.sha256 !== undefined;
    if (hasKey === hasDigest) throw new Error(`${at} must have exactly one of key and sha256`);
    if (hasKey && (typeof entry.key !== "string" || entry.key.length < MIN_KEY_LENGTH)) {
      throw new Error(`${at}.key must be a string of at least ${MIN_KEY_LENGTH} characters`);
    }
    if (hasDigest && (typeof entry.sha256 !== "string" || !HEX_DIGEST.test(entry.sha256))) {
      throw new Error(`${at}.sha256 must be 64 hex digits`);
    }
    return entry as unknown as KeyEntry;
  });
}

/** Digests of the accepted keys, each with its caller. */
export class KeyRing {
  readonly #digests: Buffer[];
  readonly #callers: string[];

  constructor(entries: readonly KeyEntry[]) {
    this.#digests = entries.map((e) => e.key !== undefined ? sha256(e.key) : Buffer.from(e.sha256!, "hex"));
    this.#callers = entries.map((e) => e.caller);
    const seen = new Set<string>();
    for (const [i, digest] of this.#digests.entries()) {
      const hex = digest.toString("hex");
      if (seen.has(hex)) throw new Error(`the key of caller "${this.#callers[i]}" is listed twice`);
      seen.add(hex);
    }
  }

  get size(): number {
    return this.#digests.length;
  }

  /** The caller of `key`, or undefined: every digest is compared, whatever matches. */
  callerOf(key: string): string | undefined {
    const digest = sha256(key);
    let found = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      if (timingSafeEqual(digest, this.#digests[i])) found = i;
    }
    return found === -1 ? undefined : this.#callers[found];
  }
}

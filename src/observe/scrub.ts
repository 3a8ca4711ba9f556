/**
 * The last line of defence for secrets in messages: a policy's error text (from getPolicy or
 * a request) is logged, and printed by `validate`, so any secret parameter value it quotes is
 * replaced by "<redacted>" first.
 */
import { REDACTED } from "../config/ajv.ts";

/** Shorter values are not scrubbed: replacing every "a" in a message would only garble it. */
const MIN_SCRUBBED_LENGTH = 4;

/** `text` with every occurrence of every secret replaced by `<redacted>`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret containing another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= MIN_SCRUBBED_LENGTH) out = out.replaceAll(secret, REDACTED);
  }
  return out;
}

/**
 * The users of a basic-auth instance and how a password is checked against their hashes
 * (bcrypt and argon2id, by hash-wasm: WebAssembly, so no native code or FFI permission).
 */
import { argon2Verify, bcryptVerify } from "hash-wasm";

/** A user as the parameters, the config and user files give it. */
export interface UserEntry {
  readonly username: string;
  readonly passwordHash: string;
}

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const ARGON2ID = /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;

/** Checks user entries; messages name the entry, never its hash. */
export function checkUsers(entries: readonly Record<string, unknown>[], where: string): UserEntry[] {
  return entries.map((entry, i) => {
    const at = `${where}[${i}]`;
    const { username, passwordHash } = entry;
    if (typeof username !== "string" || username === "" || username.includes(":")) {
      throw new Error(`${at}.username must be a name without ":"`);
    }
    if (typeof passwordHash !== "string" || !(BCRYPT.test(passwordHash) || ARGON2ID.test(passwordHash))) {
      throw new Error(
        `${at}.passwordHash is not a bcrypt or argon2id hash (plain-text passwords are refused)`,
      );
    }
    return { username, passwordHash };
  });
}

/**
 * Whether `password` matches `hash` (a hash checkUsers accepted). A password the algorithm
 * cannot take (hash-wasm throws, e.g. for an empty one) does not match.
 */
export async function passwordMatches(password: string, hash: string): Promise<boolean> {
  try {
    return await (hash.startsWith("$argon2id$")
      ? argon2Verify({ password, hash })
      : bcryptVerify({ password, hash }));
  } catch {
    return false;
  }
}

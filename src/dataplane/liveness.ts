/**
 * The shared memory between a data-plane worker and the watchdog: a heartbeat counter the
 * worker's event loop advances, and a slot naming the policy whose synchronous part is
 * running. The control plane keeps the buffer, so it can still read the slot after it
 * terminated a stuck worker.
 */
import type { PolicyGuard } from "../chain/run.ts";

const BEAT = 0;
const LABEL_LENGTH = 1;
const HEADER_BYTES = 8;
const LABEL_BYTES = 248;

/** A new buffer for one worker. */
export function livenessBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + LABEL_BYTES);
}

/** The worker's side: beats from its event loop and names each policy call. */
export class LivenessWriter implements PolicyGuard {
  readonly #ints: Int32Array;
  readonly #label: Uint8Array;
  readonly #encoder = new TextEncoder();
  /** Each label's bytes, encoded once (a chain has few labels; every request names them). */
  readonly #encoded = new Map<string, Uint8Array>();

  constructor(buffer: SharedArrayBuffer, private readonly refuse: (label: string) => string | undefined) {
    this.#ints = new Int32Array(buffer, 0, 2);
    this.#label = new Uint8Array(buffer, HEADER_BYTES, LABEL_BYTES);
  }

  /** Advances the heartbeat every `intervalMs` while the event loop turns. */
  start(intervalMs: number): void {
    setInterval(() => Atomics.add(this.#ints, BEAT, 1), intervalMs);
  }

  enter(label: string): string | undefined {
    const reason = this.refuse(label);
    if (reason !== undefined) return reason;
    let bytes = this.#encoded.get(label);
    if (bytes === undefined) {
      bytes = this.#encoder.encode(label).subarray(0, LABEL_BYTES);
      this.#encoded.set(label, bytes);
    }
    this.#label.set(bytes);
    Atomics.store(this.#ints, LABEL_LENGTH, bytes.byteLength);
    return undefined;
  }

  leave(): void {
    Atomics.store(this.#ints, LABEL_LENGTH, 0);
  }
}

/** The watchdog's side. */
export class LivenessReader {
  readonly #ints: Int32Array;
  readonly #label: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#ints = new Int32Array(buffer, 0, 2);
    this.#label = new Uint8Array(buffer, HEADER_BYTES, LABEL_BYTES);
  }

  get beats(): number {
    return Atomics.load(this.#ints, BEAT);
  }

  /** The policy running now (or when the worker stopped), if one is. */
  get policy(): string | undefined {
    const length = Atomics.load(this.#ints, LABEL_LENGTH);
    return length === 0 ? undefined : new TextDecoder().decode(this.#label.slice(0, length));
  }
}

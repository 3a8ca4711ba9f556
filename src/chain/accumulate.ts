/**
 * Cuts a streamed body into what a policy asked to see (`streaming.accumulate`): chunks as
 * they come, whole lines, or whole server-sent events. Bytes after the last complete unit
 * are held until the unit completes, the cap is reached, or the body ends.
 */
import type { StreamingOptions } from "../sdk/chunk.ts";

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = new Uint8Array();

/** The length of the prefix of `bytes` that ends with a complete line (0: none). */
function linesEnd(bytes: Uint8Array): number {
  return bytes.lastIndexOf(LF) + 1;
}

/**
 * The length of the prefix of `bytes` that ends with a complete SSE event: an event ends
 * with a blank line, i.e. two line ends in a row (`\n\n`, `\r\n\r\n` or `\r\r`).
 */
function eventsEnd(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i > 0; i--) {
    const b = bytes[i];
    if (b === LF && bytes[i - 1] === LF) return i + 1;
    if (b === LF && bytes[i - 1] === CR && i >= 3 && bytes[i - 2] === LF && bytes[i - 3] === CR) return i + 1;
    if (b === CR && bytes[i - 1] === CR && bytes[i + 1] !== LF) return i + 1;
  }
  return 0;
}

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export class Accumulator {
  #held: Uint8Array = EMPTY;
  readonly #end: ((bytes: Uint8Array) => number) | undefined;

  /** @param cap hand over what is held once it reaches this many bytes */
  constructor(options: StreamingOptions, readonly cap: number) {
    this.#end = options.accumulate === "line"
      ? linesEnd
      : options.accumulate === "sse-event"
      ? eventsEnd
      : undefined;
  }

  /** Bytes held back, waiting for their unit to complete. */
  get held(): number {
    return this.#held.length;
  }

  /**
   * Adds `bytes` and returns what is ready to hand over (possibly empty): every complete
   * unit; everything at the end of the body or once the cap is reached.
   */
  take(bytes: Uint8Array, endOfStream: boolean): Uint8Array {
    const all = this.#held.length === 0
      ? bytes
      : concat([this.#held, bytes], this.#held.length + bytes.length);
    if (!this.#end || endOfStream || all.length >= this.cap) {
      this.#held = EMPTY;
      return all;
    }
    const end = this.#end(all);
    this.#held = all.slice(end);
    return all.subarray(0, end);
  }

  /** Everything held, which is dropped (the policy is bypassed from now on). */
  drain(): Uint8Array {
    const held = this.#held;
    this.#held = EMPTY;
    return held;
  }
}

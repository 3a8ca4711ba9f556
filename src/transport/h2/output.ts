/**
 * A connection's outgoing bytes: frames are written straight into one buffer (no array per
 * frame header, no join before the write), and two buffers alternate, one being filled
 * while the other is on its way to the socket.
 */
import { FRAME_HEADER_BYTES } from "./frames.ts";

/** Room for a tick's worth of small frames; a buffer grows beyond it when a large body needs it. */
const INITIAL_BYTES = 8 * 1024;
/** A grown buffer larger than this is not kept for reuse: idle connections hold little. */
const KEEP_BYTES = 64 * 1024;

export class OutputBuffer {
  #buffer: Uint8Array = new Uint8Array(INITIAL_BYTES);
  #spare: Uint8Array | undefined;
  #length = 0;

  /** Bytes waiting to be taken. */
  get length(): number {
    return this.#length;
  }

  /** Appends a frame header. */
  header(length: number, type: number, flags: number, streamId: number): void {
    const out = this.#room(FRAME_HEADER_BYTES);
    const at = this.#length;
    out[at] = length >>> 16;
    out[at + 1] = (length >>> 8) & 0xff;
    out[at + 2] = length & 0xff;
    out[at + 3] = type;
    out[at + 4] = flags;
    out[at + 5] = (streamId >>> 24) & 0x7f;
    out[at + 6] = (streamId >>> 16) & 0xff;
    out[at + 7] = (streamId >>> 8) & 0xff;
    out[at + 8] = streamId & 0xff;
    this.#length += FRAME_HEADER_BYTES;
  }

  /** Appends `bytes` (a payload, or a whole prebuilt frame). */
  bytes(bytes: Uint8Array): void {
    this.#room(bytes.byteLength).set(bytes, this.#length);
    this.#length += bytes.byteLength;
  }

  /** Everything appended so far, to be written; appending goes on into the other buffer. */
  take(): Uint8Array {
    const taken = this.#buffer.subarray(0, this.#length);
    this.#buffer = this.#spare ?? new Uint8Array(INITIAL_BYTES);
    this.#spare = undefined;
    this.#length = 0;
    return taken;
  }

  /** A taken buffer is written: it may be filled again. */
  recycle(taken: Uint8Array): void {
    if (taken.buffer.byteLength <= KEEP_BYTES) this.#spare = new Uint8Array(taken.buffer);
  }

  /** The buffer, with room for `bytes` more. */
  #room(bytes: number): Uint8Array {
    const needed = this.#length + bytes;
    if (needed > this.#buffer.byteLength) {
      const grown = new Uint8Array(Math.max(needed, 2 * this.#buffer.byteLength));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    return this.#buffer;
  }
}

/**
 * The wire format of the engine ⇄ executor hop: length-prefixed protobuf frames on a Unix
 * socket. A frame is a 5-byte header — the payload's length (4 bytes, big-endian) and its
 * kind (1 byte) — then the payload, an executor.proto message (empty for GOING_AWAY).
 * python/executor/frames.py is the other side; the constants must agree.
 */

export const HEADER_BYTES = 5;

export enum FrameKind {
  ExecuteRequest = 1,
  ExecuteResponse = 2,
  HealthRequest = 3,
  HealthResponse = 4,
  /** The executor is shutting down and closes the connection after this frame. */
  GoingAway = 5,
  /** One chunk of a streamed body for a batch of streaming policies. */
  ChunkRequest = 6,
  ChunkResponse = 7,
}

/** The peer broke the framing: nothing after it can be trusted, the connection must close. */
export class FrameError extends Error {
  override name = "FrameError";
}

/**
 * One frame around a payload given in `parts`, concatenated in order (a message's fields
 * may be encoded apart: protobuf reads concatenated encodings as one message).
 */
export function encodeFrame(kind: FrameKind, ...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const frame = new Uint8Array(HEADER_BYTES + length);
  new DataView(frame.buffer).setUint32(0, length);
  frame[4] = kind;
  let at = HEADER_BYTES;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  return frame;
}

export interface Frame {
  readonly kind: FrameKind;
  readonly payload: Uint8Array;
}

const NOTHING = new Uint8Array(0);

/** Cuts a byte stream into frames, refusing any larger than `maxBytes`. */
export class FrameDecoder {
  #buffer: Uint8Array = NOTHING;

  constructor(private readonly maxBytes: number) {}

  /** Every complete frame in what has arrived so far; throws FrameError for a bad one. */
  push(chunk: Uint8Array): Frame[] {
    const data = this.#buffer.length === 0 ? chunk : concat(this.#buffer, chunk);
    const frames: Frame[] = [];
    let at = 0;
    while (data.length - at >= HEADER_BYTES) {
      const length = ((data[at] << 24) | (data[at + 1] << 16) | (data[at + 2] << 8) | data[at + 3]) >>> 0;
      const kind = data[at + 4];
      if (length > this.maxBytes) {
        throw new FrameError(`a frame of ${length} bytes is over the ${this.maxBytes}-byte limit`);
      }
      if (!(kind in FrameKind)) throw new FrameError(`unknown frame kind ${kind}`);
      if (data.length - at - HEADER_BYTES < length) break;
      // A copy: decoded messages keep views of it, and the read buffer it came from is reused.
      frames.push({ kind, payload: data.slice(at + HEADER_BYTES, at + HEADER_BYTES + length) });
      at += HEADER_BYTES + length;
    }
    // Copy the unfinished rest for the same reason.
    this.#buffer = at === data.length ? NOTHING : data.slice(at);
    return frames;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

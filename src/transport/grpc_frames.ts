/**
 * gRPC's wire framing over HTTP/2 (the "Length-Prefixed-Message" of the gRPC HTTP/2
 * protocol): each message is a 1-byte compressed flag, a 4-byte big-endian length and the
 * payload, and may be split across DATA frames or share one with others.
 */

/** gRPC status codes this transport sends. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export type GrpcStatusCode = typeof GrpcStatus[keyof typeof GrpcStatus];

const PREFIX_BYTES = 5;

/** A stream's input cannot be read as gRPC messages; `code` is the status to end it with. */
export class FrameError extends Error {
  override name = "FrameError";
  constructor(readonly code: GrpcStatusCode, message: string) {
    super(message);
  }
}

/** One message with its prefix, in a single buffer (one write, one DATA frame when it fits). */
export function encodeMessage(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(PREFIX_BYTES + payload.byteLength);
  new DataView(frame.buffer).setUint32(1, payload.byteLength);
  frame.set(payload, PREFIX_BYTES);
  return frame;
}

/**
 * Cuts a stream of chunks into message payloads. A length over `maxMessageBytes` is refused
 * from its prefix, before any of the payload is buffered.
 */
export class MessageDecoder {
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Payload length of the message being assembled, once its prefix is complete. */
  #length: number | undefined;

  constructor(private readonly maxMessageBytes: number) {}

  /** The payloads completed by `chunk` (views: copy to keep beyond the next push). Throws FrameError. */
  push(chunk: Uint8Array): Uint8Array[] {
    const messages: Uint8Array[] = [];
    let input = chunk;
    // The common case: whole messages in one chunk, nothing pending, no copies.
    while (this.#pendingBytes === 0 && input.byteLength >= PREFIX_BYTES) {
      const length = this.#readPrefix(input);
      if (input.byteLength < PREFIX_BYTES + length) break;
      this.#length = undefined;
      messages.push(input.subarray(PREFIX_BYTES, PREFIX_BYTES + length));
      input = input.subarray(PREFIX_BYTES + length);
    }
    if (input.byteLength === 0) return messages;
    this.#pending.push(input);
    this.#pendingBytes += input.byteLength;
    while (true) {
      if (this.#length === undefined) {
        if (this.#pendingBytes < PREFIX_BYTES) break;
        this.#readPrefix(this.#take(PREFIX_BYTES, false));
      }
      const length = this.#length!;
      if (this.#pendingBytes < PREFIX_BYTES + length) break;
      this.#take(PREFIX_BYTES, true);
      messages.push(this.#take(length, true));
      this.#length = undefined;
    }
    return messages;
  }

  /** At the end of the stream: throws FrameError if a message was cut short. */
  finish(): void {
    if (this.#pendingBytes > 0) {
      throw new FrameError(
        GrpcStatus.INTERNAL,
        `stream ended inside a message (${this.#pendingBytes} bytes of an incomplete frame)`,
      );
    }
  }

  /** Validates a prefix at the start of `bytes` and returns the payload length it announces. */
  #readPrefix(bytes: Uint8Array): number {
    const flag = bytes[0];
    if (flag === 1) {
      throw new FrameError(GrpcStatus.UNIMPLEMENTED, "compressed messages are not supported");
    }
    if (flag !== 0) throw new FrameError(GrpcStatus.INTERNAL, `invalid message flag ${flag}`);
    const length = new DataView(bytes.buffer, bytes.byteOffset, PREFIX_BYTES).getUint32(1);
    if (length > this.maxMessageBytes) {
      throw new FrameError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `received message larger than max (${length} vs. ${this.maxMessageBytes})`,
      );
    }
    this.#length = length;
    return length;
  }

  /** The first `count` pending bytes (one view when they are in one chunk); `consume` drops them. */
  #take(count: number, consume: boolean): Uint8Array {
    if (count === 0) return new Uint8Array(0);
    const first = this.#pending[0];
    let out: Uint8Array;
    if (first.byteLength >= count) {
      out = first.subarray(0, count);
    } else {
      out = new Uint8Array(count);
      let offset = 0;
      for (const part of this.#pending) {
        const n = Math.min(part.byteLength, count - offset);
        out.set(part.subarray(0, n), offset);
        offset += n;
        if (offset === count) break;
      }
    }
    if (consume) this.#drop(count);
    return out;
  }

  #drop(count: number): void {
    this.#pendingBytes -= count;
    while (count > 0) {
      const first = this.#pending[0];
      if (first.byteLength <= count) {
        this.#pending.shift();
        count -= first.byteLength;
      } else {
        this.#pending[0] = first.subarray(count);
        count = 0;
      }
    }
  }
}

/**
 * `grpc-message` as the protocol wants it: UTF-8, with `%` and every byte outside printable
 * ASCII percent-encoded.
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(message)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

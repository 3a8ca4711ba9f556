/**
 * The writing side of one connection: frames go into an output buffer, and everything
 * queued in one tick (several streams' answers, window updates) leaves in one socket write
 * when the microtask queue drains; one write is in flight at a time.
 */
import { OutputBuffer } from "./output.ts";

/** What the connection hears from its writer. */
export interface WriterEvents {
  /** A write finished: streams waiting for room may go on. */
  written(): void;
  /** The socket failed, the peer let too much pile up unread, or a requested close is due. */
  done(): void;
}

export class FrameWriter {
  readonly #output = new OutputBuffer();
  #writingBytes = 0;
  #writing = false;
  #flushQueued = false;
  #closeWhenFlushed = false;
  #stopped = false;

  constructor(
    private readonly conn: Deno.Conn,
    /** Unwritten bytes beyond which the peer is taken for one that does not read. */
    private readonly maxBytes: number,
    private readonly events: WriterEvents,
  ) {}

  /** Bytes queued or being written. */
  get buffered(): number {
    return this.#output.length + this.#writingBytes;
  }

  /** Queues a prebuilt frame. */
  queue(frame: Uint8Array): void {
    if (this.#stopped) return;
    this.#output.bytes(frame);
    this.#flushSoon();
  }

  /** Queues a frame made of a header and `payload`. */
  frame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    if (this.#stopped) return;
    this.#output.header(payload.byteLength, type, flags, streamId);
    this.#output.bytes(payload);
    this.#flushSoon();
  }

  /** Calls `done` once everything queued is written (at once if nothing is). */
  closeWhenFlushed(): void {
    this.#closeWhenFlushed = true;
    if (!this.#writing && !this.#flushQueued) this.#finish();
  }

  /** Nothing more is written: the connection is gone. */
  stop(): void {
    this.#stopped = true;
  }

  #flushSoon(): void {
    if (this.buffered > this.maxBytes) {
      // Flow control bounds what streams send; only a peer that stops reading gets here.
      queueMicrotask(() => this.#finish());
      return;
    }
    if (!this.#flushQueued && !this.#writing) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushQueued = false;
    if (!this.#writing) this.#writeOut();
  };

  async #writeOut(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#output.length > 0 && !this.#stopped) {
        const buffer = this.#output.take();
        this.#writingBytes = buffer.byteLength;
        let written = 0;
        while (written < buffer.byteLength) written += await this.conn.write(buffer.subarray(written));
        this.#writingBytes = 0;
        this.#output.recycle(buffer);
        this.events.written();
      }
    } catch {
      // The peer is gone: reading ends too.
      this.#writing = false;
      return this.#finish();
    }
    this.#writing = false;
    if (this.#closeWhenFlushed) this.#finish();
  }

  #finish(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.events.done();
  }
}

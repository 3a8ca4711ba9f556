/**
 * One HTTP/2 stream of a server connection, as the gRPC layer sees it: callbacks for what
 * arrives, and methods for what it sends. The connection (src/transport/h2/connection.ts)
 * owns the protocol; a stream only holds its state and forwards to it.
 */
import type { ErrorCodeValue } from "./frames.ts";

/** What a stream needs of its connection. */
export interface StreamHost {
  sendHeaders(stream: H2Stream, block: Uint8Array, endStream: boolean): void;
  sendData(stream: H2Stream, data: Uint8Array): boolean;
  sendTrailers(stream: H2Stream, block: Uint8Array): void;
  resetStream(stream: H2Stream, code: ErrorCodeValue): void;
  resumed(stream: H2Stream): void;
}

const ignore = () => {};

export class H2Stream {
  /** Called with each piece of the request body, in order (views: copy to keep them beyond the stream). */
  onData: (chunk: Uint8Array) => void = ignore;
  /** The peer ended its side. */
  onEnd: () => void = ignore;
  /** Once, however the stream ends: finished both ways, reset by either side, or the connection lost. */
  onClose: () => void = ignore;
  /** After a `write` returned false, when the stream can take more. */
  onDrain: () => void = ignore;

  /** Bytes this side may still send, by the peer's window for the stream. */
  sendWindow: number;
  /** Bytes the peer may still send before a window update. */
  receiveWindow: number;
  /** Bytes delivered since the last window update for the stream. */
  unacknowledged = 0;
  /** Data waiting for flow-control window, in order. */
  readonly pending: Uint8Array[] = [];
  pendingBytes = 0;
  /** Trailers to send once the pending data is out. */
  trailers: Uint8Array | undefined;
  /** Received while paused, delivered on resume; `held.end` once the peer's end came too. */
  held: { chunks: [Uint8Array, number][]; end: boolean } | undefined;
  paused = false;
  localEnded = false;
  remoteEnded = false;
  closed = false;

  constructor(
    readonly id: number,
    private readonly host: StreamHost,
    sendWindow: number,
    receiveWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.receiveWindow = receiveWindow;
  }

  /** This side has ended, or its trailers wait for window: nothing more may be sent. */
  get ending(): boolean {
    return this.localEnded || this.trailers !== undefined || this.closed;
  }

  /** Sends the response headers (an encoded HPACK block); `endStream` for a headers-only answer. */
  respond(block: Uint8Array, endStream = false): void {
    if (!this.ending) this.host.sendHeaders(this, block, endStream);
  }

  /** Sends `data`; false when it (or earlier data) waits for window or the socket: wait for `onDrain`. */
  write(data: Uint8Array): boolean {
    if (this.ending) return true;
    return this.host.sendData(this, data);
  }

  /** Ends this side with trailers (an encoded HPACK block), after any data still waiting. */
  end(trailers: Uint8Array): void {
    if (!this.ending) this.host.sendTrailers(this, trailers);
  }

  /** Resets the stream (RST_STREAM with `code`) if it is still open. */
  reset(code: ErrorCodeValue): void {
    if (!this.closed) this.host.resetStream(this, code);
  }

  /** Stops delivering data and granting the peer window: flow control then holds the peer. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.host.resumed(this);
  }
}

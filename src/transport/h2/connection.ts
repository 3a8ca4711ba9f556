/**
 * The server side of one HTTP/2 connection (RFC 9113) over a Deno socket: frames read in
 * place from the input, HPACK-decoded request headers, flow control both ways, and every
 * frame a tick produces written to the socket in one write. It serves what a gRPC server
 * needs and refuses what a server must refuse; it neither pushes nor prioritises.
 *
 * Why not `node:http2`: Deno 2.9.3's writes each HTTP/2 operation (headers, a message,
 * trailers) to the socket separately and keeps every accepted connection's session alive
 * forever (docs/performance.md, "Lean transport" and "Own HTTP/2").
 */
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_WINDOW_BYTES,
  ErrorCode,
  type ErrorCodeValue,
  Flag,
  FRAME_HEADER_BYTES,
  FrameType,
  goawayFrame,
  MAX_FRAME_BYTES_LIMIT,
  MAX_WINDOW_BYTES,
  pingFrame,
  rstStreamFrame,
  Setting,
  SETTINGS_ACK,
  settingsFrame,
  windowUpdateFrame,
} from "./frames.ts";
import { requestHeadersProblem, trailersProblem } from "./header_rules.ts";
import { encodeHeaders, HpackDecoder, HpackError } from "./hpack.ts";
import { H2Stream, type StreamHost } from "./stream.ts";
import { FrameWriter } from "./writer.ts";

/** What this server advertises and enforces. */
export interface ConnectionSettings {
  readonly maxConcurrentStreams: number;
  /** Each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
  readonly streamWindowBytes: number;
  /** The connection's receive window, granted at the start. */
  readonly connectionWindowBytes: number;
  /** Largest decoded request header list (SETTINGS_MAX_HEADER_LIST_SIZE); larger ones are refused. */
  readonly maxHeaderListBytes: number;
  /**
   * Output queued and not yet written beyond which the peer is taken for one that does not
   * read (answers to its pings and settings pile up) and the connection is closed.
   */
  readonly maxOutputBytes: number;
}

export interface ConnectionHandlers {
  /** A new stream with its decoded headers (a flat [name, value, …] list). */
  stream(stream: H2Stream, headers: string[]): void;
  /** The peer's first SETTINGS arrived: its preface is complete. */
  settings?(): void;
  /** The connection is gone; every stream has had its `onClose`. */
  closed?(): void;
  /** A handler threw while the connection read its input: it ends with INTERNAL_ERROR. */
  failed?(error: unknown): void;
  /**
   * The peer broke the protocol: `reason` is `http2_connection_error` (the connection ended
   * with GOAWAY) or `malformed_request` (the stream was reset); `detail` says what it did.
   */
  malformed?(reason: "http2_connection_error" | "malformed_request", detail: string): void;
}

/** The input buffer: frames are parsed in place and handed out as views, so it is never reused. */
const SLAB_BYTES = 64 * 1024;
/** A fresh slab is taken when less than this is left to read into. */
const MIN_READ_BYTES = 8 * 1024;
/** The socket's buffered output beyond which `write` asks the stream to wait for a drain. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** A header block (HEADERS and its CONTINUATIONs) larger than this ends the connection. */
const MAX_HEADER_BLOCK_FACTOR = 2;

const HEADERS_TOO_LARGE = encodeHeaders([[":status", "431"]]);

/** The highest stream id: a GOAWAY naming it refuses nothing (the shutdown notice). */
const MAX_STREAM_ID = 2 ** 31 - 1;

/** A connection error: GOAWAY with `code`, then the connection closes. */
class ConnectionError extends Error {
  constructor(readonly code: ErrorCodeValue, message: string) {
    super(message);
  }
}

/** A header block being assembled from HEADERS and CONTINUATION frames. */
interface PendingBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly parts: Uint8Array[];
  bytes: number;
}

export class H2Connection implements StreamHost {
  readonly #conn: Deno.Conn;
  readonly #settings: ConnectionSettings;
  readonly #handlers: ConnectionHandlers;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, H2Stream>();

  #slab = new Uint8Array(SLAB_BYTES);
  #start = 0;
  #end = 0;
  #prefaceRead = false;
  #settingsSeen = false;
  #block: PendingBlock | undefined;
  #lastStreamId = 0;

  #peerStreamWindow = DEFAULT_WINDOW_BYTES;
  #peerMaxFrame = DEFAULT_MAX_FRAME_BYTES;
  #sendWindow = DEFAULT_WINDOW_BYTES;
  #receiveWindow = DEFAULT_WINDOW_BYTES;
  #unacknowledged = 0;
  /** Streams with data waiting for the connection's send window. */
  readonly #blocked = new Set<H2Stream>();
  /** Streams whose `write` returned false. */
  readonly #drainWaiters = new Set<H2Stream>();

  /** `close()` was called: the notice is out, the final GOAWAY follows. */
  #closing = false;
  #goawaySent = false;
  #peerGoaway = false;
  #dead = false;
  readonly #writer: FrameWriter;
  #closedReported = false;
  readonly #pings: (() => void)[] = [];

  constructor(conn: Deno.Conn, settings: ConnectionSettings, handlers: ConnectionHandlers) {
    this.#conn = conn;
    this.#settings = settings;
    this.#handlers = handlers;
    this.#writer = new FrameWriter(conn, settings.maxOutputBytes, {
      written: () => this.#notifyDrain(),
      done: () => this.destroy(),
    });
    this.#writer.queue(settingsFrame([
      [Setting.MAX_CONCURRENT_STREAMS, settings.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, settings.streamWindowBytes],
      [Setting.MAX_HEADER_LIST_SIZE, settings.maxHeaderListBytes],
    ]));
    const grant = settings.connectionWindowBytes - DEFAULT_WINDOW_BYTES;
    if (grant > 0) {
      this.#writer.queue(windowUpdateFrame(0, grant));
      this.#receiveWindow += grant;
    }
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** False once the connection is closing or gone. */
  get open(): boolean {
    return !this.#dead && !this.#closing && !this.#goawaySent;
  }

  /** Reads and serves until the peer or this side ends the connection. */
  async serve(): Promise<void> {
    try {
      while (!this.#dead) {
        if (SLAB_BYTES - this.#end < MIN_READ_BYTES) this.#freshSlab();
        const read = await this.#conn.read(this.#slab.subarray(this.#end));
        if (read === null) break;
        this.#end += read;
        this.#consume();
      }
    } catch {
      // The socket failed or was closed under the read: the connection is lost either way.
    } finally {
      this.#teardown();
    }
  }

  /** Sends a PING; `acknowledged` runs when the peer answers it. */
  ping(acknowledged: () => void): void {
    if (this.#dead) return;
    this.#pings.push(acknowledged);
    this.#writer.queue(pingFrame(new Uint8Array(8), false));
  }

  /** Graceful close: GOAWAY, no new streams, the socket closes when the open ones are done. */
  close(): void {
    if (this.#dead || this.#closing) return;
    this.#closing = true;
    // Two steps (RFC 9113 §6.8): a notice first, so streams the peer opens before it has seen
    // it are still served; the final GOAWAY, naming the last stream, once a ping's round trip
    // shows the peer has read the notice.
    this.#writer.queue(goawayFrame(MAX_STREAM_ID, ErrorCode.NO_ERROR));
    this.ping(() => this.#finalGoaway());
  }

  #finalGoaway(): void {
    if (this.#dead || this.#goawaySent) return;
    this.#goawaySent = true;
    this.#writer.queue(goawayFrame(this.#lastStreamId, ErrorCode.NO_ERROR));
    if (this.#streams.size === 0) this.#endSocket();
  }

  /** Closes the socket now; open streams end with `onClose`. */
  destroy(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#writer.stop();
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer.
    }
    this.#teardown();
  }

  // ---- reading ----

  #freshSlab(): void {
    const partial = this.#slab.subarray(this.#start, this.#end);
    this.#slab = new Uint8Array(SLAB_BYTES);
    this.#slab.set(partial);
    this.#start = 0;
    this.#end = partial.byteLength;
  }

  /** Handles every complete frame in the input. */
  #consume(): void {
    const slab = this.#slab;
    let at = this.#start;
    try {
      if (!this.#prefaceRead) {
        if (this.#end - at < CLIENT_PREFACE.byteLength) return;
        for (let i = 0; i < CLIENT_PREFACE.byteLength; i++) {
          if (slab[at + i] !== CLIENT_PREFACE[i]) {
            throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 connection preface");
          }
        }
        at += CLIENT_PREFACE.byteLength;
        this.#prefaceRead = true;
      }
      while (!this.#dead && this.#end - at >= FRAME_HEADER_BYTES) {
        const length = (slab[at] << 16) | (slab[at + 1] << 8) | slab[at + 2];
        if (length > DEFAULT_MAX_FRAME_BYTES) {
          throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes`);
        }
        if (this.#end - at < FRAME_HEADER_BYTES + length) break;
        const type = slab[at + 3];
        const flags = slab[at + 4];
        const streamId = ((slab[at + 5] & 0x7f) << 24) | (slab[at + 6] << 16) | (slab[at + 7] << 8) |
          slab[at + 8];
        const payload = slab.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
        at += FRAME_HEADER_BYTES + length;
        this.#frame(type, flags, streamId, payload);
      }
    } catch (error) {
      if (error instanceof ConnectionError) {
        this.#handlers.malformed?.("http2_connection_error", error.message);
        this.#fail(error.code, error.message);
      } else {
        // A fault of ours (a handler that threw): the connection cannot be trusted to go on.
        this.#handlers.failed?.(error);
        this.#fail(ErrorCode.INTERNAL_ERROR, "internal error");
      }
    }
    this.#start = at;
  }

  #frame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    if (!this.#settingsSeen && type !== FrameType.SETTINGS) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "the first frame is not SETTINGS");
    }
    if (this.#block && type !== FrameType.CONTINUATION) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "a header block was interrupted");
    }
    switch (type) {
      case FrameType.DATA:
        return this.#data(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.#headers(flags, streamId, payload);
      case FrameType.CONTINUATION:
        return this.#continuation(flags, streamId, payload);
      case FrameType.PRIORITY:
        if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (payload.byteLength !== 5) this.#streamError(streamId, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.RST_STREAM:
        return this.#rstStream(streamId, payload);
      case FrameType.SETTINGS:
        return this.#settingsFrame(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "a client sent PUSH_PROMISE");
      case FrameType.PING:
        return this.#pingFrame(flags, streamId, payload);
      case FrameType.GOAWAY:
        return this.#goaway(streamId, payload);
      case FrameType.WINDOW_UPDATE:
        return this.#windowUpdate(streamId, payload);
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  #data(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const length = payload.byteLength;
    this.#receiveWindow -= length;
    if (this.#receiveWindow < 0) {
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    }
    const data = flags & Flag.PADDED ? unpad(payload) : payload;
    const stream = this.#streams.get(streamId);
    if (!stream || stream.remoteEnded) {
      if (streamId > this.#lastStreamId) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
      }
      // A stream already closed: its bytes still count against the connection window.
      this.#acknowledge(length);
      if (stream) this.#streamError(streamId, ErrorCode.STREAM_CLOSED);
      return;
    }
    stream.receiveWindow -= length;
    if (stream.receiveWindow < 0) {
      this.#acknowledge(length);
      return this.#streamError(streamId, ErrorCode.FLOW_CONTROL_ERROR);
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (stream.paused) {
      stream.held ??= { chunks: [], end: false };
      stream.held.chunks.push([data, length]);
      stream.held.end = endStream;
      if (endStream) stream.remoteEnded = true;
      return;
    }
    this.#deliver(stream, data, length);
    if (endStream) this.#remoteEnd(stream);
  }

  #deliver(stream: H2Stream, data: Uint8Array, length: number): void {
    if (data.byteLength > 0) stream.onData(data);
    this.#acknowledge(length);
    stream.unacknowledged += length;
    if (
      !stream.remoteEnded && !stream.closed && !stream.paused &&
      stream.unacknowledged >= this.#settings.streamWindowBytes / 2
    ) {
      this.#writer.queue(windowUpdateFrame(stream.id, stream.unacknowledged));
      stream.receiveWindow += stream.unacknowledged;
      stream.unacknowledged = 0;
    }
  }

  /** Counts `length` bytes as consumed from the connection window, granting it back at half. */
  #acknowledge(length: number): void {
    this.#unacknowledged += length;
    if (this.#unacknowledged >= this.#settings.connectionWindowBytes / 2) {
      this.#writer.queue(windowUpdateFrame(0, this.#unacknowledged));
      this.#receiveWindow += this.#unacknowledged;
      this.#unacknowledged = 0;
    }
  }

  #headers(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    let fragment = flags & Flag.PADDED ? unpad(payload) : payload;
    if (flags & Flag.PRIORITY) {
      if (fragment.byteLength < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "short HEADERS");
      fragment = fragment.subarray(5);
    }
    const block: PendingBlock = {
      streamId,
      endStream: (flags & Flag.END_STREAM) !== 0,
      parts: [fragment],
      bytes: fragment.byteLength,
    };
    if (flags & Flag.END_HEADERS) return this.#headerBlock(block);
    this.#block = block;
    this.#checkBlockSize(block);
  }

  #continuation(flags: number, streamId: number, payload: Uint8Array): void {
    const block = this.#block;
    if (!block || block.streamId !== streamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without its HEADERS");
    }
    block.parts.push(payload);
    block.bytes += payload.byteLength;
    this.#checkBlockSize(block);
    if (flags & Flag.END_HEADERS) {
      this.#block = undefined;
      this.#headerBlock(block);
    }
  }

  #checkBlockSize(block: PendingBlock): void {
    if (block.bytes > MAX_HEADER_BLOCK_FACTOR * this.#settings.maxHeaderListBytes) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `a header block over ${block.bytes} bytes`);
    }
  }

  #headerBlock(block: PendingBlock): void {
    const bytes = block.parts.length === 1 ? block.parts[0] : joined(block.parts, block.bytes);
    let headers: string[];
    try {
      headers = this.#decoder.decode(bytes);
    } catch (error) {
      if (!(error instanceof HpackError)) throw error;
      throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, error.message);
    }
    const { streamId } = block;
    const stream = this.#streams.get(streamId);
    if (stream) {
      // Trailers: a gRPC client sends none, but they may end the stream.
      if (!block.endStream || stream.remoteEnded || trailersProblem(headers)) {
        return this.#streamError(streamId, ErrorCode.PROTOCOL_ERROR);
      }
      if (stream.paused) {
        stream.held ??= { chunks: [], end: false };
        stream.held.end = true;
        stream.remoteEnded = true;
        return;
      }
      return this.#remoteEnd(stream);
    }
    if (streamId % 2 === 0 || streamId <= this.#lastStreamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS opening stream ${streamId}`);
    }
    this.#lastStreamId = streamId;
    if (this.#goawaySent || this.#streams.size >= this.#settings.maxConcurrentStreams) {
      return this.#writer.queue(rstStreamFrame(streamId, ErrorCode.REFUSED_STREAM));
    }
    if (headerListBytes(headers) > this.#settings.maxHeaderListBytes) {
      // Not REFUSED_STREAM: that would tell the client a retry may work.
      this.#headerFrames(streamId, HEADERS_TOO_LARGE, true);
      return;
    }
    const problem = requestHeadersProblem(headers);
    if (problem) {
      this.#handlers.malformed?.("malformed_request", `stream ${streamId}: ${problem}`);
      return this.#writer.queue(rstStreamFrame(streamId, ErrorCode.PROTOCOL_ERROR));
    }
    const opened = new H2Stream(streamId, this, this.#peerStreamWindow, this.#settings.streamWindowBytes);
    this.#streams.set(streamId, opened);
    this.#handlers.stream(opened, headers);
    if (block.endStream && !opened.closed) this.#remoteEnd(opened);
  }

  #rstStream(streamId: number, payload: Uint8Array): void {
    if (payload.byteLength !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM size");
    if (streamId === 0 || streamId > this.#lastStreamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
    }
    const stream = this.#streams.get(streamId);
    if (stream) this.#finish(stream);
  }

  #settingsFrame(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & Flag.ACK) {
      if (payload.byteLength !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ack");
      return;
    }
    if (payload.byteLength % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS size");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    for (let at = 0; at < payload.byteLength; at += 6) {
      const id = view.getUint16(at);
      const value = view.getUint32(at + 2);
      if (id === Setting.ENABLE_PUSH && value > 1) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
      } else if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW_BYTES) {
          throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
        }
        this.#peerWindowChanged(value - this.#peerStreamWindow);
        this.#peerStreamWindow = value;
      } else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_BYTES || value > MAX_FRAME_BYTES_LIMIT) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
        }
        this.#peerMaxFrame = value;
      }
      // The header table size only matters to an encoder that indexes; ours never does.
    }
    this.#writer.queue(SETTINGS_ACK);
    if (!this.#settingsSeen) {
      this.#settingsSeen = true;
      this.#handlers.settings?.();
    }
  }

  /** The peer changed SETTINGS_INITIAL_WINDOW_SIZE: every open stream's window moves by `delta`. */
  #peerWindowChanged(delta: number): void {
    for (const stream of this.#streams.values()) {
      stream.sendWindow += delta;
      if (stream.sendWindow > MAX_WINDOW_BYTES) {
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "a stream window over 2^31-1");
      }
      if (delta > 0) this.#pump(stream);
    }
  }

  #pingFrame(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (payload.byteLength !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING size");
    if (flags & Flag.ACK) {
      this.#pings.shift()?.();
      return;
    }
    this.#writer.queue(pingFrame(payload.slice(), true));
  }

  #goaway(streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (payload.byteLength < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY size");
    this.#peerGoaway = true;
    if (this.#streams.size === 0) this.#endSocket();
  }

  #windowUpdate(streamId: number, payload: Uint8Array): void {
    if (payload.byteLength !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE size");
    const increment = ((payload[0] & 0x7f) << 24 | payload[1] << 16 | payload[2] << 8 | payload[3]) >>> 0;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW_BYTES) {
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "the connection window over 2^31-1");
      }
      for (const stream of [...this.#blocked]) {
        this.#blocked.delete(stream);
        this.#pump(stream);
      }
      return this.#notifyDrain();
    }
    const stream = this.#streams.get(streamId);
    if (!stream) {
      if (streamId > this.#lastStreamId) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      }
      return;
    }
    if (increment === 0) return this.#streamError(streamId, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW_BYTES) {
      return this.#streamError(streamId, ErrorCode.FLOW_CONTROL_ERROR);
    }
    this.#pump(stream);
    this.#notifyDrain();
  }

  // ---- stream life ----

  #remoteEnd(stream: H2Stream): void {
    stream.remoteEnded = true;
    stream.onEnd();
    if (stream.localEnded) this.#finish(stream);
  }

  /** The stream is closed both ways (or reset): forget it and tell its owner once. */
  #finish(stream: H2Stream): void {
    if (stream.closed) return;
    stream.closed = true;
    this.#streams.delete(stream.id);
    this.#blocked.delete(stream);
    this.#drainWaiters.delete(stream);
    stream.pending.length = 0;
    stream.pendingBytes = 0;
    stream.onClose();
    if (this.#streams.size === 0 && (this.#goawaySent || this.#peerGoaway)) this.#endSocket();
  }

  #streamError(streamId: number, code: ErrorCodeValue): void {
    this.#writer.queue(rstStreamFrame(streamId, code));
    const stream = this.#streams.get(streamId);
    if (stream) this.#finish(stream);
  }

  // ---- StreamHost: what streams send ----

  sendHeaders(stream: H2Stream, block: Uint8Array, endStream: boolean): void {
    this.#headerFrames(stream.id, block, endStream);
    if (endStream) this.#localEnd(stream);
  }

  sendData(stream: H2Stream, data: Uint8Array): boolean {
    if (data.byteLength === 0) return true;
    stream.pending.push(data);
    stream.pendingBytes += data.byteLength;
    this.#pump(stream);
    if (stream.pendingBytes === 0 && this.#writer.buffered < HIGH_WATER_BYTES) return true;
    this.#drainWaiters.add(stream);
    return false;
  }

  sendTrailers(stream: H2Stream, block: Uint8Array): void {
    stream.trailers = block;
    this.#pump(stream);
  }

  resetStream(stream: H2Stream, code: ErrorCodeValue): void {
    this.#streamError(stream.id, code);
  }

  resumed(stream: H2Stream): void {
    const held = stream.held;
    stream.held = undefined;
    if (held) {
      for (let i = 0; i < held.chunks.length; i++) {
        if (stream.closed) return;
        // A handler may pause again on what it is given: the rest waits for the next resume.
        if (stream.paused) {
          stream.held = { chunks: held.chunks.slice(i), end: held.end };
          return;
        }
        const [data, length] = held.chunks[i];
        this.#deliver(stream, data, length);
      }
      if (held.end && !stream.closed) {
        if (stream.paused) {
          stream.held = { chunks: [], end: true };
          return;
        }
        this.#remoteEnd(stream);
      }
    }
    if (!stream.closed && !stream.paused && !stream.remoteEnded && stream.unacknowledged > 0) {
      this.#writer.queue(windowUpdateFrame(stream.id, stream.unacknowledged));
      stream.receiveWindow += stream.unacknowledged;
      stream.unacknowledged = 0;
    }
  }

  #localEnd(stream: H2Stream): void {
    stream.localEnded = true;
    if (stream.remoteEnded) this.#finish(stream);
  }

  /** Sends what the windows allow of the stream's pending data, then its trailers once all is out. */
  #pump(stream: H2Stream): void {
    while (stream.pendingBytes > 0) {
      const allowed = Math.min(this.#sendWindow, stream.sendWindow, this.#peerMaxFrame);
      if (allowed <= 0) {
        if (this.#sendWindow <= 0) this.#blocked.add(stream);
        return;
      }
      const first = stream.pending[0];
      const chunk = first.byteLength <= allowed ? first : first.subarray(0, allowed);
      if (chunk === first) stream.pending.shift();
      else stream.pending[0] = first.subarray(allowed);
      stream.pendingBytes -= chunk.byteLength;
      this.#sendWindow -= chunk.byteLength;
      stream.sendWindow -= chunk.byteLength;
      this.#writer.frame(FrameType.DATA, 0, stream.id, chunk);
    }
    if (stream.trailers && !stream.closed) {
      const trailers = stream.trailers;
      stream.trailers = undefined;
      this.#headerFrames(stream.id, trailers, true);
      this.#localEnd(stream);
    }
  }

  /** One HEADERS frame, or HEADERS and CONTINUATIONs for a block over the peer's frame size. */
  #headerFrames(streamId: number, block: Uint8Array, endStream: boolean): void {
    const end = endStream ? Flag.END_STREAM : 0;
    if (block.byteLength <= this.#peerMaxFrame) {
      this.#writer.frame(FrameType.HEADERS, end | Flag.END_HEADERS, streamId, block);
      return;
    }
    for (let at = 0; at < block.byteLength; at += this.#peerMaxFrame) {
      const part = block.subarray(at, at + this.#peerMaxFrame);
      const last = at + this.#peerMaxFrame >= block.byteLength ? Flag.END_HEADERS : 0;
      const type = at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      this.#writer.frame(type, (at === 0 ? end : 0) | last, streamId, part);
    }
  }

  // ---- writing ----

  #notifyDrain(): void {
    if (this.#drainWaiters.size === 0 || this.#writer.buffered >= HIGH_WATER_BYTES) return;
    for (const stream of [...this.#drainWaiters]) {
      if (stream.pendingBytes > 0) continue;
      this.#drainWaiters.delete(stream);
      stream.onDrain();
    }
  }

  /** Closes the socket once everything queued is written. */
  #endSocket(): void {
    this.#writer.closeWhenFlushed();
  }

  /** A connection error: GOAWAY with `code`, then close. */
  #fail(code: ErrorCodeValue, message: string): void {
    if (this.#dead) return;
    this.#goawaySent = true;
    this.#writer.queue(goawayFrame(this.#lastStreamId, code, message));
    for (const stream of [...this.#streams.values()]) this.#finish(stream);
    this.#endSocket();
  }

  #teardown(): void {
    const wasDead = this.#dead;
    this.#dead = true;
    this.#writer.stop();
    for (const stream of [...this.#streams.values()]) this.#finish(stream);
    this.#pings.length = 0;
    if (!wasDead) {
      try {
        this.#conn.close();
      } catch {
        // Already closed.
      }
    }
    if (!this.#closedReported) {
      this.#closedReported = true;
      this.#handlers.closed?.();
    }
  }
}

/** The data of a PADDED frame (its first byte is the padding length). */
function unpad(payload: Uint8Array): Uint8Array {
  const padding = payload[0];
  if (padding >= payload.byteLength) {
    throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame");
  }
  return payload.subarray(1, payload.byteLength - padding);
}

function joined(parts: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** A header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2). */
function headerListBytes(headers: string[]): number {
  let bytes = 0;
  for (const field of headers) bytes += field.length;
  return bytes + 16 * headers.length;
}

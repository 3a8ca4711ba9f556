/**
 * Tollgate's HTTP/2 server connection (src/transport/h2/connection.ts) driven frame by frame
 * from a raw client over a real Unix socket: the protocol rules a server must keep, flow
 * control both ways, and the single write per tick the transport exists for. The gRPC layer
 * above it is tested against real clients in tests/protocol/.
 */
import assert from "node:assert/strict";
import { type ConnectionSettings, H2Connection } from "../../src/transport/h2/connection.ts";
import {
  CLIENT_PREFACE,
  ErrorCode,
  Flag,
  frame,
  FrameType,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from "../../src/transport/h2/frames.ts";
import { encodeHeaders, HpackDecoder } from "../../src/transport/h2/hpack.ts";
import type { H2Stream } from "../../src/transport/h2/stream.ts";

const SETTINGS: ConnectionSettings = {
  maxConcurrentStreams: 2,
  streamWindowBytes: 1000,
  connectionWindowBytes: 65_535,
  maxHeaderListBytes: 1024,
  maxOutputBytes: 64 * 1024,
};

const REQUEST = encodeHeaders([
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/svc/Method"],
  [":authority", "tollgate"],
  ["content-type", "application/grpc"],
]);

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/** The client's side: raw frames out, parsed frames in. */
class RawClient {
  #buffer = new Uint8Array(0);
  readonly decoder = new HpackDecoder();

  constructor(readonly conn: Deno.Conn) {}

  async send(...chunks: Uint8Array[]): Promise<void> {
    for (const chunk of chunks) await this.conn.write(chunk);
  }

  /** The preface, empty SETTINGS (or `settings`), and the ack of the server's. */
  async start(settings: [number, number][] = []): Promise<Frame[]> {
    await this.send(CLIENT_PREFACE, settingsFrame(settings));
    const seen: Frame[] = [];
    while (!seen.some((f) => f.type === FrameType.SETTINGS && f.flags & Flag.ACK)) {
      seen.push(await this.next());
    }
    await this.send(frame(FrameType.SETTINGS, Flag.ACK, 0));
    return seen;
  }

  /** The next frame; undefined once the server closed the connection. */
  async next(): Promise<Frame> {
    const frame = await this.maybeNext();
    assert.ok(frame, "the connection closed");
    return frame;
  }

  async maybeNext(): Promise<Frame | undefined> {
    while (true) {
      if (this.#buffer.byteLength >= 9) {
        const length = (this.#buffer[0] << 16) | (this.#buffer[1] << 8) | this.#buffer[2];
        if (this.#buffer.byteLength >= 9 + length) {
          const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset);
          const out = {
            type: this.#buffer[3],
            flags: this.#buffer[4],
            streamId: view.getUint32(5) & 0x7fffffff,
            payload: this.#buffer.slice(9, 9 + length),
          };
          this.#buffer = this.#buffer.slice(9 + length);
          return out;
        }
      }
      const chunk = new Uint8Array(65536);
      const read = await this.conn.read(chunk).catch(() => null);
      if (read === null) return undefined;
      const joined = new Uint8Array(this.#buffer.byteLength + read);
      joined.set(this.#buffer);
      joined.set(chunk.subarray(0, read), this.#buffer.byteLength);
      this.#buffer = joined;
    }
  }

  /** Frames until (and including) the first of `type`, skipping window updates and pings. */
  async until(type: number): Promise<Frame[]> {
    const seen: Frame[] = [];
    while (true) {
      const next = await this.next();
      seen.push(next);
      if (next.type === type) return seen;
    }
  }

  /** Waits for the GOAWAY the server ends the connection with, and returns its error code. */
  async goaway(): Promise<number> {
    const [last] = (await this.until(FrameType.GOAWAY)).slice(-1);
    return new DataView(last.payload.buffer).getUint32(4);
  }

  headers(streamId: number, endStream = false, block = REQUEST): Uint8Array {
    return frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, block);
  }

  data(streamId: number, bytes: Uint8Array, endStream = false): Uint8Array {
    return frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, bytes);
  }
}

/** Serves one connection with `onStream`, runs `body` against it from a raw client, cleans up. */
async function withConnection(
  onStream: (stream: H2Stream, headers: string[], connection: H2Connection) => void,
  body: (client: RawClient, connection: H2Connection, writes: () => number) => Promise<void>,
  settings: ConnectionSettings = SETTINGS,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/h2.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const client = new RawClient(await Deno.connect({ transport: "unix", path }));
  const conn = await accepted;
  let writes = 0;
  const counted = new Proxy(conn, {
    get(target, key) {
      if (key === "write") return (bytes: Uint8Array) => (writes++, target.write(bytes));
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const connection: H2Connection = new H2Connection(counted, settings, {
    stream: (stream, headers) => onStream(stream, headers, connection),
  });
  const served = connection.serve();
  try {
    await body(client, connection, () => writes);
  } finally {
    connection.destroy();
    try {
      client.conn.close();
    } catch {
      // The server closed it.
    }
    await served;
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Echoes each stream's data back and ends it with trailers once the client has ended. */
function echo(stream: H2Stream): void {
  stream.respond(encodeHeaders([[":status", "200"]]));
  stream.onData = (chunk) => stream.write(chunk.slice());
  stream.onEnd = () => stream.end(encodeHeaders([["grpc-status", "0"]]));
}

const setting = (frames: Frame[], id: number) => {
  const settings = frames.find((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK))!;
  const view = new DataView(settings.payload.buffer);
  for (let at = 0; at < settings.payload.byteLength; at += 6) {
    if (view.getUint16(at) === id) return view.getUint32(at + 2);
  }
  return undefined;
};

Deno.test("the server's SETTINGS advertise its limits, and a stream is served end to end", async () => {
  await withConnection(echo, async (client) => {
    const opening = await client.start();
    assert.equal(setting(opening, Setting.MAX_CONCURRENT_STREAMS), 2);
    assert.equal(setting(opening, Setting.INITIAL_WINDOW_SIZE), 1000);
    assert.equal(setting(opening, Setting.MAX_HEADER_LIST_SIZE), 1024);
    await client.send(client.headers(1), client.data(1, new Uint8Array([1, 2, 3]), true));
    const headers = (await client.until(FrameType.HEADERS)).at(-1)!;
    const rest = await client.until(FrameType.HEADERS);
    const trailers = rest.at(-1)!;
    assert.deepEqual(client.decoder.decode(headers.payload), [":status", "200"]);
    const data = rest.find((f) => f.type === FrameType.DATA);
    assert.deepEqual(data?.payload, new Uint8Array([1, 2, 3]));
    assert.equal(trailers.flags & Flag.END_STREAM, Flag.END_STREAM);
    assert.deepEqual(client.decoder.decode(trailers.payload), ["grpc-status", "0"]);
  });
});

Deno.test("what one tick produces leaves in one socket write", async () => {
  await withConnection((stream) => {
    stream.respond(encodeHeaders([[":status", "200"]]));
    stream.write(new Uint8Array(10));
    stream.end(encodeHeaders([["grpc-status", "0"]]));
  }, async (client, _connection, writes) => {
    await client.start();
    const before = writes();
    await client.send(client.headers(1, true));
    const frames = await client.until(FrameType.HEADERS);
    await client.until(FrameType.HEADERS);
    assert.ok(frames.length >= 1);
    assert.equal(writes() - before, 1, "headers, data and trailers in one write");
  });
});

Deno.test("data waits for the peer's window and the trailers wait for the data", async () => {
  await withConnection((stream) => {
    stream.respond(encodeHeaders([[":status", "200"]]));
    stream.onEnd = () => {
      const drained = stream.write(new Uint8Array(25).fill(7));
      assert.equal(drained, false, "write says to wait while data is held by the window");
      stream.end(encodeHeaders([["grpc-status", "0"]]));
    };
  }, async (client) => {
    await client.start([[Setting.INITIAL_WINDOW_SIZE, 10]]);
    await client.send(client.headers(1, true));
    await client.until(FrameType.HEADERS);
    const first = (await client.until(FrameType.DATA)).at(-1)!;
    assert.equal(first.payload.byteLength, 10);
    await client.send(windowUpdateFrame(1, 100));
    const rest = await client.until(FrameType.HEADERS);
    const data = rest.filter((f) => f.type === FrameType.DATA);
    assert.deepEqual(data.map((f) => f.payload.byteLength), [15]);
    assert.equal(rest.at(-1)!.flags & Flag.END_STREAM, Flag.END_STREAM);
  });
});

Deno.test("a paused stream grants no window until it resumes, and loses nothing", async () => {
  const received: number[] = [];
  let paused: H2Stream | undefined;
  await withConnection((stream) => {
    paused = stream;
    stream.pause();
    stream.onData = (chunk) => received.push(chunk.byteLength);
  }, async (client) => {
    await client.start();
    await client.send(client.headers(1), client.data(1, new Uint8Array(600)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(received, []);
    paused!.resume();
    const update = (await client.until(FrameType.WINDOW_UPDATE)).filter((f) => f.streamId === 1);
    assert.deepEqual(received, [600]);
    assert.equal(new DataView(update.at(-1)!.payload.buffer).getUint32(0), 600);
  });
});

Deno.test("data beyond a stream's window resets it with FLOW_CONTROL_ERROR", async () => {
  await withConnection(() => {}, async (client) => {
    await client.start();
    await client.send(client.headers(1), client.data(1, new Uint8Array(1001)));
    const reset = (await client.until(FrameType.RST_STREAM)).at(-1)!;
    assert.equal(reset.streamId, 1);
    assert.equal(new DataView(reset.payload.buffer).getUint32(0), ErrorCode.FLOW_CONTROL_ERROR);
  });
});

Deno.test("data beyond the connection's window ends the connection with FLOW_CONTROL_ERROR", async () => {
  await withConnection(
    (stream) => stream.pause(),
    async (client) => {
      await client.start();
      // Paused streams consume the connection window without granting it back.
      for (let id = 1; id <= 11; id += 2) {
        await client.send(client.headers(id));
        for (let sent = 0; sent < 12_000; sent += 4000) {
          await client.send(client.data(id, new Uint8Array(4000)));
        }
      }
      assert.equal(await client.goaway(), ErrorCode.FLOW_CONTROL_ERROR);
    },
    { ...SETTINGS, streamWindowBytes: 16_000, maxConcurrentStreams: 100 },
  );
});

Deno.test("a header block across CONTINUATION frames, padding and priority are read", async () => {
  const seen: string[][] = [];
  await withConnection((stream, headers) => {
    seen.push(headers);
    echo(stream);
  }, async (client) => {
    await client.start();
    const half = Math.floor(REQUEST.byteLength / 2);
    const padded = new Uint8Array([3, ...[0, 0, 0, 0, 16], ...REQUEST.subarray(0, half), 0, 0, 0]);
    await client.send(
      frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, padded),
      frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, REQUEST.subarray(half)),
      frame(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, new Uint8Array([2, 9, 9, 0, 0])),
    );
    const frames = [...await client.until(FrameType.HEADERS), ...await client.until(FrameType.HEADERS)];
    assert.deepEqual(seen[0].slice(0, 6), [":method", "POST", ":scheme", "http", ":path", "/svc/Method"]);
    assert.deepEqual(frames.find((f) => f.type === FrameType.DATA)?.payload, new Uint8Array([9, 9]));
  });
});

for (
  const [name, frames, code] of [
    [
      "a header block interrupted by another frame",
      [
        frame(FrameType.HEADERS, 0, 1, REQUEST.subarray(0, 4)),
        frame(FrameType.PING, 0, 0, new Uint8Array(8)),
      ],
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      "a header block larger than twice the header list limit",
      [
        frame(FrameType.HEADERS, 0, 1, new Uint8Array(1500)),
        frame(FrameType.CONTINUATION, 0, 1, new Uint8Array(1500)),
      ],
      ErrorCode.ENHANCE_YOUR_CALM,
    ],
    [
      "a frame over 16 KiB",
      [frame(FrameType.DATA, 0, 1, new Uint8Array(16_385))],
      ErrorCode.FRAME_SIZE_ERROR,
    ],
    [
      "a stream opened with an even id",
      [frame(FrameType.HEADERS, Flag.END_HEADERS, 2, REQUEST)],
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      "an undecodable header block",
      [frame(FrameType.HEADERS, Flag.END_HEADERS, 1, new Uint8Array([0x80]))],
      ErrorCode.COMPRESSION_ERROR,
    ],
    [
      "DATA on a stream never opened",
      [frame(FrameType.DATA, 0, 5, new Uint8Array(1))],
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      "PUSH_PROMISE from a client",
      [frame(FrameType.PUSH_PROMISE, 0, 1, new Uint8Array(4))],
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      "a PING that is not 8 bytes",
      [frame(FrameType.PING, 0, 0, new Uint8Array(7))],
      ErrorCode.FRAME_SIZE_ERROR,
    ],
    ["a window update of 0 for the connection", [windowUpdateFrame(0, 0)], ErrorCode.PROTOCOL_ERROR],
  ] as const
) {
  Deno.test(`${name} ends the connection with GOAWAY`, async () => {
    await withConnection(echo, async (client) => {
      await client.start();
      await client.send(...frames);
      assert.equal(await client.goaway(), code);
      assert.equal(await client.maybeNext(), undefined, "the connection is closed after GOAWAY");
    });
  });
}

Deno.test("a client that does not speak HTTP/2, or starts without SETTINGS, is refused", async () => {
  await withConnection(echo, async (client) => {
    await client.send(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.equal(await client.goaway(), ErrorCode.PROTOCOL_ERROR);
  });
  await withConnection(echo, async (client) => {
    await client.send(CLIENT_PREFACE, frame(FrameType.PING, 0, 0, new Uint8Array(8)));
    assert.equal(await client.goaway(), ErrorCode.PROTOCOL_ERROR);
  });
});

Deno.test("streams over the advertised limit are refused; a reset stream is closed at once", async () => {
  const closed: number[] = [];
  await withConnection((stream) => {
    stream.onClose = () => closed.push(stream.id);
  }, async (client) => {
    await client.start();
    await client.send(client.headers(1), client.headers(3), client.headers(5));
    const refused = (await client.until(FrameType.RST_STREAM)).at(-1)!;
    assert.equal(refused.streamId, 5);
    assert.equal(new DataView(refused.payload.buffer).getUint32(0), ErrorCode.REFUSED_STREAM);
    const reset = new Uint8Array(4);
    new DataView(reset.buffer).setUint32(0, ErrorCode.CANCEL);
    await client.send(frame(FrameType.RST_STREAM, 0, 1, reset));
    await client.send(frame(FrameType.PING, 0, 0, new Uint8Array(8)));
    await client.until(FrameType.PING);
    assert.deepEqual(closed, [1]);
  });
});

Deno.test("pings are answered with the same payload, and the server's are acknowledged", async () => {
  let acknowledged = false;
  await withConnection(echo, async (client, connection) => {
    await client.start();
    await client.send(frame(FrameType.PING, 0, 0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])));
    const pong = (await client.until(FrameType.PING)).at(-1)!;
    assert.equal(pong.flags & Flag.ACK, Flag.ACK);
    assert.deepEqual(pong.payload, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    connection.ping(() => acknowledged = true);
    const ping = (await client.until(FrameType.PING)).at(-1)!;
    assert.equal(ping.flags & Flag.ACK, 0);
    await client.send(frame(FrameType.PING, Flag.ACK, 0, ping.payload));
    await client.send(frame(FrameType.PING, 0, 0, new Uint8Array(8)));
    await client.until(FrameType.PING);
    assert.ok(acknowledged);
  });
});

Deno.test("close() notifies, serves what crosses the notice, then a final GOAWAY; closes when done", async () => {
  const open: H2Stream[] = [];
  await withConnection((stream) => {
    open.push(stream);
    stream.respond(encodeHeaders([[":status", "200"]]));
  }, async (client, connection) => {
    await client.start();
    await client.send(client.headers(1));
    await client.until(FrameType.HEADERS);
    connection.close();
    const notice = (await client.until(FrameType.GOAWAY)).at(-1)!;
    const view = new DataView(notice.payload.buffer);
    assert.deepEqual([view.getUint32(0), view.getUint32(4)], [2 ** 31 - 1, ErrorCode.NO_ERROR]);
    // A stream opened before the client answers the notice's ping is still served.
    await client.send(client.headers(3));
    const ping = (await client.until(FrameType.PING)).at(-1)!;
    await client.until(FrameType.HEADERS);
    assert.deepEqual(open.map((s) => s.id), [1, 3]);
    await client.send(frame(FrameType.PING, Flag.ACK, 0, ping.payload));
    const final = (await client.until(FrameType.GOAWAY)).at(-1)!;
    assert.equal(
      new DataView(final.payload.buffer).getUint32(0),
      3,
      "the final GOAWAY names the last stream",
    );
    await client.send(client.headers(5, true));
    const refused = (await client.until(FrameType.RST_STREAM)).at(-1)!;
    assert.equal(refused.streamId, 5);
    for (const [stream, id] of [[open[0], 1], [open[1], 3]] as const) {
      stream.end(encodeHeaders([["grpc-status", "0"]]));
      await client.send(client.data(id, new Uint8Array(0), true));
      await client.until(FrameType.HEADERS);
    }
    assert.equal(await client.maybeNext(), undefined, "the socket closes once the last stream is done");
  });
});

Deno.test("a header list over the limit is answered 431, not refused for a retry", async () => {
  await withConnection(echo, async (client) => {
    await client.start();
    const big = encodeHeaders([[":method", "POST"], [":path", "/"], ["x-big", "v".repeat(1100)]]);
    await client.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, big));
    const answer = (await client.until(FrameType.HEADERS)).at(-1)!;
    assert.deepEqual(client.decoder.decode(answer.payload), [":status", "431"]);
    assert.equal(answer.flags & Flag.END_STREAM, Flag.END_STREAM);
  });
});

Deno.test("a large message leaves in frames of the peer's maximum size, in order", async () => {
  const body = Uint8Array.from({ length: 100_000 }, (_, i) => i % 251);
  await withConnection((stream) => {
    stream.respond(encodeHeaders([[":status", "200"]]));
    stream.onEnd = () => {
      stream.write(body);
      stream.end(encodeHeaders([["grpc-status", "0"]]));
    };
  }, async (client) => {
    await client.start([[Setting.INITIAL_WINDOW_SIZE, 200_000]]);
    await client.send(windowUpdateFrame(0, 200_000), client.headers(1, true));
    await client.until(FrameType.HEADERS);
    const frames = (await client.until(FrameType.HEADERS)).filter((f) => f.type === FrameType.DATA);
    assert.ok(frames.every((f) => f.payload.byteLength <= 16_384));
    const received = new Uint8Array(frames.reduce((n, f) => n + f.payload.byteLength, 0));
    let at = 0;
    for (const f of frames) {
      received.set(f.payload, at);
      at += f.payload.byteLength;
    }
    assert.deepEqual(received, body);
  });
});

Deno.test("a malformed request is reset with PROTOCOL_ERROR, and the connection serves on", async () => {
  const served: number[] = [];
  await withConnection((stream) => {
    served.push(stream.id);
    echo(stream);
  }, async (client) => {
    await client.start();
    const base: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":path", "/svc/Method"]];
    const malformed: [string, string][][] = [
      [[":method", "POST"], ["x-a", "1"], [":scheme", "http"], [":path", "/"]],
      [...base, [":status", "200"]],
      [...base, [":method", "GET"]],
      [[":method", "POST"], [":scheme", "http"]],
      [...base, ["connection", "keep-alive"]],
      [...base, ["te", "gzip"]],
      [[":method", "POST"], [":scheme", "http"], [":path", ""]],
    ];
    let id = 1;
    for (const headers of malformed) {
      await client.send(
        frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, encodeHeaders(headers)),
      );
      const reset = (await client.until(FrameType.RST_STREAM)).at(-1)!;
      assert.equal(reset.streamId, id, JSON.stringify(headers));
      assert.equal(new DataView(reset.payload.buffer).getUint32(0), ErrorCode.PROTOCOL_ERROR);
      id += 2;
    }
    // Our encoder refuses uppercase names, so this one is written by hand: a literal without indexing.
    const upper = new TextEncoder().encode("X-Upper");
    const block = new Uint8Array([...encodeHeaders(base), 0x00, upper.byteLength, ...upper, 1, 0x31]);
    await client.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, block));
    assert.equal((await client.until(FrameType.RST_STREAM)).at(-1)!.streamId, id);
    id += 2;
    assert.deepEqual(served, []);
    await client.send(client.headers(id, true));
    await client.until(FrameType.HEADERS);
    assert.deepEqual(served, [id], "a well-formed request on the same connection is served");
  });
});

Deno.test("a peer that sends pings but never reads is disconnected once its answers pile up", async () => {
  await withConnection(echo, async (client) => {
    await client.start();
    // 8,000 pings are 136 KB of acknowledgements, over the 64 KB limit; the client reads none.
    const pings = new Uint8Array(17 * 8000);
    for (let i = 0; i < 8000; i++) pings.set(frame(FrameType.PING, 0, 0, new Uint8Array(8)), 17 * i);
    await client.send(pings).catch(() => {});
    let frames = 0;
    while (await client.maybeNext()) frames++;
    assert.ok(frames < 8000, `the connection was closed before every ping was answered (${frames} frames)`);
  });
});

Deno.test("a handler that throws ends the connection with INTERNAL_ERROR, reported once", async () => {
  const failures: unknown[] = [];
  const dir = await Deno.makeTempDir();
  const path = `${dir}/h2.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const client = new RawClient(await Deno.connect({ transport: "unix", path }));
  const connection = new H2Connection(await accepted, SETTINGS, {
    stream: () => {
      throw new Error("a bug");
    },
    failed: (error) => failures.push(error),
  });
  const served = connection.serve();
  await client.start();
  await client.send(client.headers(1, true));
  assert.equal(await client.goaway(), ErrorCode.INTERNAL_ERROR);
  await served;
  assert.deepEqual(failures.map((e) => (e as Error).message), ["a bug"]);
  client.conn.close();
  listener.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a stream that pauses again on what a resume delivers gets the rest on the next resume", async () => {
  const received: number[] = [];
  let ended = false;
  let paused: H2Stream | undefined;
  await withConnection((stream) => {
    paused = stream;
    stream.pause();
    stream.onData = (chunk) => {
      received.push(chunk.byteLength);
      stream.pause();
    };
    stream.onEnd = () => ended = true;
  }, async (client) => {
    await client.start();
    await client.send(
      client.headers(1),
      client.data(1, new Uint8Array(10)),
      client.data(1, new Uint8Array(20)),
      client.data(1, new Uint8Array(30), true),
    );
    await client.send(frame(FrameType.PING, 0, 0, new Uint8Array(8)));
    await client.until(FrameType.PING);
    assert.deepEqual(received, []);
    paused!.resume();
    assert.deepEqual(received, [10]);
    paused!.resume();
    assert.deepEqual(received, [10, 20]);
    assert.equal(ended, false);
    paused!.resume();
    assert.deepEqual(received, [10, 20, 30]);
    assert.equal(ended, false, "the end waits for a resume too");
    paused!.resume();
    assert.equal(ended, true);
  });
});

Deno.test("protocol violations are reported to the owner with what the peer did", async () => {
  const reports: string[] = [];
  const dir = await Deno.makeTempDir();
  const path = `${dir}/h2.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const client = new RawClient(await Deno.connect({ transport: "unix", path }));
  const connection = new H2Connection(await accepted, SETTINGS, {
    stream: echo,
    malformed: (reason, detail) => reports.push(`${reason}: ${detail}`),
  });
  const served = connection.serve();
  await client.start();
  await client.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, encodeHeaders([[":method", "POST"]])));
  await client.until(FrameType.RST_STREAM);
  await client.send(frame(FrameType.PUSH_PROMISE, 0, 3, new Uint8Array(4)));
  assert.equal(await client.goaway(), ErrorCode.PROTOCOL_ERROR);
  await served;
  assert.deepEqual(reports, [
    "malformed_request: stream 1: a request without :method, :scheme and :path",
    "http2_connection_error: a client sent PUSH_PROMISE",
  ]);
  client.conn.close();
  listener.close();
  await Deno.remove(dir, { recursive: true });
});

/** The engine side of the executor's framing: frames split anywhere, and broken framing refused. */
import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder, FrameError, FrameKind } from "../../src/python/frames.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

Deno.test("a frame is its 4-byte big-endian length, its kind, then the payload", () => {
  assert.deepEqual(encodeFrame(FrameKind.ExecuteRequest, bytes(7, 8, 9)), bytes(0, 0, 0, 3, 1, 7, 8, 9));
  assert.deepEqual(encodeFrame(FrameKind.HealthRequest, bytes()), bytes(0, 0, 0, 0, 3));
});

Deno.test("frames arrive whole whatever the chunks: one byte at a time, or several in one read", () => {
  const stream = new Uint8Array([
    ...encodeFrame(FrameKind.ExecuteResponse, bytes(1, 2, 3)),
    ...encodeFrame(FrameKind.HealthResponse, bytes()),
    ...encodeFrame(FrameKind.GoingAway, bytes()),
  ]);
  const expected = [
    { kind: FrameKind.ExecuteResponse, payload: bytes(1, 2, 3) },
    { kind: FrameKind.HealthResponse, payload: bytes() },
    { kind: FrameKind.GoingAway, payload: bytes() },
  ];
  assert.deepEqual(new FrameDecoder(1024).push(stream), expected);
  const oneByOne = new FrameDecoder(1024);
  const frames = [...stream].flatMap((b) => oneByOne.push(bytes(b)));
  assert.deepEqual(frames, expected);
});

Deno.test("payloads are copies: reusing the read buffer does not change a decoded frame", () => {
  const buffer = new Uint8Array(encodeFrame(FrameKind.ExecuteResponse, bytes(5, 6)));
  const [frame] = new FrameDecoder(1024).push(buffer);
  buffer.fill(0);
  assert.deepEqual(frame.payload, bytes(5, 6));
});

Deno.test("a frame over the limit or of an unknown kind is refused from its header alone", () => {
  assert.throws(
    () => new FrameDecoder(16).push(bytes(0, 0, 0, 17, 2)),
    (error: unknown) =>
      error instanceof FrameError && /17 bytes is over the 16-byte limit/.test(error.message),
  );
  assert.throws(() => new FrameDecoder(16).push(bytes(0, 0, 0, 0, 42)), /unknown frame kind 42/);
  assert.deepEqual(
    new FrameDecoder(16).push(encodeFrame(FrameKind.ExecuteResponse, new Uint8Array(16))).length,
    1,
  );
});

Deno.test("the frame kinds agree with the executor's (python/executor/frames.py)", async () => {
  const source = await Deno.readTextFile(new URL("../../python/executor/frames.py", import.meta.url));
  const python = Object.fromEntries(
    [...source.matchAll(/^ {4}([A-Z_]+) = (\d+)$/gm)].map(([, name, value]) => [
      name.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, letter: string) => letter.toUpperCase()),
      Number(value),
    ]),
  );
  const engine = Object.fromEntries(
    Object.entries(FrameKind).filter(([, value]) => typeof value === "number"),
  );
  assert.deepEqual(python, engine);
  assert.equal(engine.ChunkRequest, 6);
  assert.equal(engine.ChunkResponse, 7);
});

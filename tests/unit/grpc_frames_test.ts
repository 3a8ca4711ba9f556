import assert from "node:assert/strict";
import {
  encodeGrpcMessage,
  encodeMessage,
  FrameError,
  GrpcStatus,
  MessageDecoder,
} from "../../src/transport/grpc_frames.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
};

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (error) {
    if (error instanceof FrameError) return error.code;
    throw error;
  }
  throw new Error("no FrameError");
}

Deno.test("encodeMessage writes the flag, the big-endian length and the payload", () => {
  assert.deepEqual(encodeMessage(bytes(7, 8, 9)), bytes(0, 0, 0, 0, 3, 7, 8, 9));
  assert.deepEqual(encodeMessage(new Uint8Array(0)), bytes(0, 0, 0, 0, 0));
});

Deno.test("MessageDecoder finds the same messages however the stream is cut", () => {
  const messages = [bytes(1), new Uint8Array(0), new Uint8Array(300).fill(5), bytes(2, 3)];
  const wire = concat(...messages.map(encodeMessage));
  for (const size of [1, 2, 4, 5, 6, 7, 100, wire.byteLength]) {
    const decoder = new MessageDecoder(1024);
    const out: Uint8Array[] = [];
    for (let at = 0; at < wire.byteLength; at += size) {
      out.push(...decoder.push(wire.subarray(at, at + size)).map((m) => m.slice()));
    }
    decoder.finish();
    assert.deepEqual(out, messages, `chunks of ${size} bytes`);
  }
});

Deno.test("MessageDecoder refuses a length over the limit from the prefix alone", () => {
  const decoder = new MessageDecoder(10);
  assert.deepEqual(decoder.push(encodeMessage(new Uint8Array(10))).length, 1, "at the limit is fine");
  assert.equal(codeOf(() => decoder.push(bytes(0, 0, 0, 0, 11))), GrpcStatus.RESOURCE_EXHAUSTED);
  assert.equal(codeOf(() => new MessageDecoder(10).push(bytes(0, 0xff, 0xff, 0xff, 0xff))), 8);
});

Deno.test("MessageDecoder refuses compressed frames, unknown flags and a stream cut inside a message", () => {
  assert.equal(codeOf(() => new MessageDecoder(10).push(bytes(1, 0, 0, 0, 1, 9))), GrpcStatus.UNIMPLEMENTED);
  assert.equal(codeOf(() => new MessageDecoder(10).push(bytes(2, 0, 0, 0, 0))), GrpcStatus.INTERNAL);
  const split = new MessageDecoder(10);
  assert.deepEqual(split.push(bytes(0, 0, 0, 0, 0, 1, 0)), [new Uint8Array(0)]);
  assert.equal(codeOf(() => split.push(bytes(0, 0, 1))), GrpcStatus.UNIMPLEMENTED, "prefix across chunks");
  const cut = new MessageDecoder(10);
  assert.deepEqual(cut.push(bytes(0, 0, 0, 0, 4, 1, 2)), []);
  assert.equal(codeOf(() => cut.finish()), GrpcStatus.INTERNAL);
  const prefixOnly = new MessageDecoder(10);
  prefixOnly.push(bytes(0, 0));
  assert.equal(codeOf(() => prefixOnly.finish()), GrpcStatus.INTERNAL);
});

Deno.test("encodeGrpcMessage percent-encodes %, control characters and non-ASCII as UTF-8", () => {
  assert.equal(encodeGrpcMessage("plain text: ok"), "plain text: ok");
  assert.equal(encodeGrpcMessage("100%\nnext"), "100%25%0Anext");
  assert.equal(encodeGrpcMessage("größe ✓"), "gr%C3%B6%C3%9Fe %E2%9C%93");
  assert.equal(decodeURIComponent(encodeGrpcMessage("größe 100% ✓\t")), "größe 100% ✓\t");
});

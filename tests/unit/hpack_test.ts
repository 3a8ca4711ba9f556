import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { encodeHeaders, HpackDecoder, HpackError } from "../../src/transport/h2/hpack.ts";
import { decodeHuffman } from "../../src/transport/h2/huffman.ts";
import { HUFFMAN_CODES } from "../../src/transport/h2/huffman_code.ts";

const hex = (text: string) => {
  const digits = text.replace(/\s+/g, "");
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
};
const bytes = (...values: number[]) => new Uint8Array(values);
const latin1 = (text: string) => Uint8Array.from(text, (char) => char.charCodeAt(0));
const flat = (pairs: [string, string][]) => pairs.flat();

function hpackError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error) => error instanceof HpackError && pattern.test(error.message));
}

/** One step of an RFC 7541 Appendix C series: the block, the headers, the dynamic table after it. */
type Step = { block: string; headers: [string, string][]; table: [string, string][]; bytes: number };

function decodeSeries(maxTableBytes: number, steps: Step[]): void {
  const decoder = new HpackDecoder({ maxTableBytes });
  for (const [i, step] of steps.entries()) {
    assert.deepEqual(decoder.decode(hex(step.block)), flat(step.headers), `block ${i + 1}`);
    assert.deepEqual(decoder.dynamicTable, { entries: step.table, bytes: step.bytes }, `table ${i + 1}`);
  }
}

Deno.test("RFC 7541 C.2: each literal and indexed representation", () => {
  decodeSeries(4096, [{
    block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
    headers: [["custom-key", "custom-header"]],
    table: [["custom-key", "custom-header"]],
    bytes: 55,
  }]);
  const empty = { table: [], bytes: 0 };
  decodeSeries(4096, [{
    block: "040c 2f73 616d 706c 652f 7061 7468",
    headers: [[":path", "/sample/path"]],
    ...empty,
  }]);
  decodeSeries(4096, [{
    block: "1008 7061 7373 776f 7264 0673 6563 7265 74",
    headers: [["password", "secret"]],
    ...empty,
  }]);
  decodeSeries(4096, [{ block: "82", headers: [[":method", "GET"]], ...empty }]);
});

const requestHeaders: [string, string][][] = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], [
    "cache-control",
    "no-cache",
  ]],
  [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], [
    "custom-key",
    "custom-value",
  ]],
];
const requestTables: { table: [string, string][]; bytes: number }[] = [
  { table: [[":authority", "www.example.com"]], bytes: 57 },
  { table: [["cache-control", "no-cache"], [":authority", "www.example.com"]], bytes: 110 },
  {
    table: [["custom-key", "custom-value"], ["cache-control", "no-cache"], [":authority", "www.example.com"]],
    bytes: 164,
  },
];

Deno.test("RFC 7541 C.3: three requests without Huffman share the dynamic table", () => {
  const blocks = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
  ];
  decodeSeries(4096, blocks.map((block, i) => ({ block, headers: requestHeaders[i], ...requestTables[i] })));
});

Deno.test("RFC 7541 C.4: the same requests with Huffman", () => {
  const blocks = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
  ];
  decodeSeries(4096, blocks.map((block, i) => ({ block, headers: requestHeaders[i], ...requestTables[i] })));
});

const date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const location = "https://www.example.com";
const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const responseHeaders: [string, string][][] = [
  [[":status", "302"], ["cache-control", "private"], ["date", date1], ["location", location]],
  [[":status", "307"], ["cache-control", "private"], ["date", date1], ["location", location]],
  [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", date2],
    ["location", location],
    ["content-encoding", "gzip"],
    ["set-cookie", cookie],
  ],
];
// A 256-octet table: the second response evicts ":status: 302", the third evicts three more.
const responseTables: { table: [string, string][]; bytes: number }[] = [
  {
    table: [["location", location], ["date", date1], ["cache-control", "private"], [":status", "302"]],
    bytes: 222,
  },
  {
    table: [[":status", "307"], ["location", location], ["date", date1], ["cache-control", "private"]],
    bytes: 222,
  },
  { table: [["set-cookie", cookie], ["content-encoding", "gzip"], ["date", date2]], bytes: 215 },
];

Deno.test("RFC 7541 C.5: three responses without Huffman evict from a 256-octet table", () => {
  const blocks = [
    `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32
     3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
    "4803 3330 37c1 c0bf",
    `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970
     7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61
     6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
  ];
  decodeSeries(256, blocks.map((block, i) => ({ block, headers: responseHeaders[i], ...responseTables[i] })));
});

Deno.test("RFC 7541 C.6: the same responses with Huffman", () => {
  const blocks = [
    `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad
     1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
    "4883 640e ffc1 c0bf",
    `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2
     e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
  ];
  decodeSeries(256, blocks.map((block, i) => ({ block, headers: responseHeaders[i], ...responseTables[i] })));
});

/** A test-local Huffman encoder from the same code table. */
function huffmanEncode(text: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let pending = 0;
  for (const char of text) {
    const [code, length] = HUFFMAN_CODES[char.charCodeAt(0)];
    for (let at = length - 1; at >= 0; at--) {
      pending = (pending << 1) | ((code >>> at) & 1);
      if (++bits === 8) {
        out.push(pending);
        bits = pending = 0;
      }
    }
  }
  if (bits > 0) out.push((pending << (8 - bits)) | (0xff >> bits)); // pad with the EOS prefix (ones)
  return new Uint8Array(out);
}

Deno.test("Huffman: the RFC's strings, every octet value alone, in runs and mixed", () => {
  assert.equal(decodeHuffman(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")), "www.example.com");
  assert.equal(decodeHuffman(hex("a8eb 1064 9cbf")), "no-cache");
  assert.equal(decodeHuffman(hex("6402")), "302");
  assert.equal(decodeHuffman(hex("aec3 771a 4b")), "private");
  assert.equal(decodeHuffman(new Uint8Array(0)), "");
  let all = "";
  for (let octet = 0; octet < 256; octet++) {
    const char = String.fromCharCode(octet);
    all += char;
    assert.equal(decodeHuffman(huffmanEncode(char)), char, `octet ${octet}`);
    assert.equal(decodeHuffman(huffmanEncode(char.repeat(9))), char.repeat(9), `octet ${octet} × 9`);
  }
  assert.equal(decodeHuffman(huffmanEncode(all)), all);
  const reversed = [...all].reverse().join("").repeat(40); // long: the decoder's output buffer grows
  assert.equal(decodeHuffman(huffmanEncode(reversed)), reversed);
});

Deno.test("Huffman: the code is the RFC's canonical code (codes follow from lengths)", () => {
  // RFC 7541's code is canonical: sorted by (length, symbol), each code is the previous plus one, shifted
  // left on a longer length. A mistyped code breaks this; a mistyped length breaks completeness.
  const order = HUFFMAN_CODES.map(([, bits], symbol) => ({ bits, symbol }))
    .sort((a, b) => a.bits - b.bits || a.symbol - b.symbol);
  let code = 0;
  let previous = order[0].bits;
  for (const { bits, symbol } of order) {
    code <<= bits - previous;
    previous = bits;
    assert.equal(HUFFMAN_CODES[symbol][0], code, `symbol ${symbol}`);
    code++;
  }
  assert.equal(code, 2 ** 30, "the code is complete");
  assert.deepEqual(HUFFMAN_CODES[256], [0x3fffffff, 30], "EOS");
});

Deno.test("Huffman: padding longer than 7 bits, padding not all ones and EOS are refused", () => {
  // 'a' is 00011: with 3 bits of ones, 0x1f
  assert.equal(decodeHuffman(bytes(0x1f)), "a");
  hpackError(() => decodeHuffman(bytes(0x1f, 0xff)), /padding/); // 11 bits of padding
  hpackError(() => decodeHuffman(bytes(0xff)), /padding/); // 8 bits, no symbol
  hpackError(() => decodeHuffman(bytes(0x18)), /padding/); // padding 000
  hpackError(() => decodeHuffman(bytes(0x1e)), /padding/); // padding 110
  hpackError(() => decodeHuffman(bytes(0xff, 0xff, 0xff, 0xfc)), /EOS/); // EOS (30 ones) then 00
  hpackError(() => decodeHuffman(bytes(0x1f, 0xff, 0xff, 0xff, 0xff)), /EOS at its octet 4/); // 'a', EOS
  hpackError(() => new HpackDecoder().decode(hex("0001 6184 ffff fffc")), /EOS at its octet 3/); // a value
  hpackError(() => new HpackDecoder().decode(hex("0081 ff00")), /string of 1 octets ends in padding/); // a name
  // the first 8 bits of a 13-bit code ('\x00'), all ones: padding of 8 bits
  hpackError(() => decodeHuffman(huffmanEncode("\x00").subarray(0, 1)), /padding/);
});

Deno.test("HpackDecoder: index 0, and indices beyond the static and dynamic tables", () => {
  hpackError(() => new HpackDecoder().decode(bytes(0x80)), /index 0/);
  hpackError(() => new HpackDecoder().decode(bytes(0xbe)), /index 62 beyond/); // no dynamic entry yet
  hpackError(() => new HpackDecoder().decode(bytes(0xff, 0x80, 0x01)), /index 255 beyond/);
  // a literal's indexed name, in each literal representation
  for (const prefix of [bytes(0x7e), bytes(0x0f, 0x2f), bytes(0x1f, 0x2f)]) {
    hpackError(() => new HpackDecoder().decode(Uint8Array.of(...prefix, 0x00)), /index 62 beyond/);
  }
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex("4001 6101 62 be")), ["a", "b", "a", "b"]);
  hpackError(() => decoder.decode(bytes(0xbf)), /index 63 beyond the 61 static and 1 dynamic/);
});

Deno.test("HpackDecoder: strings and integers that run past the block, and oversized integers", () => {
  hpackError(() => new HpackDecoder().decode(hex("4005 6162")), /string of 5 octets at octet 1 runs past/);
  hpackError(() => new HpackDecoder().decode(hex("0001 61")), /block ends before a string/);
  hpackError(() => new HpackDecoder().decode(hex("0081")), /string of 1 octets/); // a Huffman one
  hpackError(() => new HpackDecoder().decode(hex("ff")), /ends inside the integer/);
  hpackError(() => new HpackDecoder().decode(hex("ff80")), /ends inside the integer/);
  hpackError(() => new HpackDecoder().decode(hex("007f ffff")), /ends inside the integer/);
  // 2^31 - 1 is the largest: here as a string length, refused only because the block is shorter
  hpackError(() => new HpackDecoder().decode(hex("007f 80ff ffff 07")), /string of 2147483647 octets/);
  hpackError(() => new HpackDecoder().decode(hex("007f 81ff ffff 07")), /integer 2147483648 .* above 2\^31/);
  hpackError(() => new HpackDecoder().decode(hex("ffff ffff ff0f")), /above 2\^31/);
  // value 127, but in 7 octets (5 continuation octets at most)
  hpackError(() => new HpackDecoder().decode(hex("ff80 8080 8080 00")), /longer than 6 octets/);
  // the same in 6 octets is an integer: the index is then refused for the empty dynamic table
  hpackError(() => new HpackDecoder().decode(hex("ff80 8080 8000")), /index 127 beyond/);
});

Deno.test("HpackDecoder: dynamic table size updates only at the block's start, at most our limit", () => {
  const decoder = new HpackDecoder({ maxTableBytes: 100 });
  // two entries of 34 octets each ("a" "b" + 32), then an update to 40 evicts the older one
  decoder.decode(hex("4001 6101 62 4001 6301 64"));
  assert.deepEqual(decoder.dynamicTable, { entries: [["c", "d"], ["a", "b"]], bytes: 68 });
  assert.deepEqual(decoder.decode(hex("3f09 be")), ["c", "d"]); // 31 + 9 = 40
  assert.deepEqual(decoder.dynamicTable, { entries: [["c", "d"]], bytes: 34 });
  // several in a row: down to 0 (empties the table), back up to 100 (our limit)
  assert.deepEqual(decoder.decode(hex("20 3f45 82")), [":method", "GET"]);
  assert.deepEqual(decoder.dynamicTable, { entries: [], bytes: 0 });
  hpackError(() => decoder.decode(hex("3f46")), /update to 101 above our limit 100, at octet 0/);
  hpackError(() => decoder.decode(hex("82 20")), /size update after a field, at octet 1/);
  hpackError(() => new HpackDecoder({ maxTableBytes: 0 }).decode(hex("21")), /update to 1 above our limit 0/);
  assert.deepEqual(new HpackDecoder().decode(hex("3fe1 1f")), []); // 4096, the default limit
  hpackError(() => new HpackDecoder().decode(hex("3fe2 1f")), /update to 4097 above our limit 4096/);
});

Deno.test("HpackDecoder: a table limit lowered by an update applies to later entries", () => {
  const decoder = new HpackDecoder({ maxTableBytes: 4096 });
  // limit 33: "a" "b" (34) does not fit and is not added (RFC 7541 §4.4), "a" "" (33) does
  assert.deepEqual(decoder.decode(hex("3f02 4001 6101 62")), ["a", "b"]);
  assert.deepEqual(decoder.dynamicTable, { entries: [], bytes: 0 });
  assert.deepEqual(decoder.decode(hex("4001 6100 be")), ["a", "", "a", ""]);
  assert.deepEqual(decoder.dynamicTable, { entries: [["a", ""]], bytes: 33 });
  // an entry larger than the whole table empties it
  assert.deepEqual(decoder.decode(hex("4001 6201 63")), ["b", "c"]);
  assert.deepEqual(decoder.dynamicTable, { entries: [], bytes: 0 });
});

Deno.test("HpackDecoder: a limit above HTTP/2's 4096 applies only once the peer's update asks for it", () => {
  // The peer's encoder starts at the protocol's 4096 (RFC 9113 §6.5.2) and signals any change (RFC 7541 §4.2)
  const decoder = new HpackDecoder({ maxTableBytes: 8192 });
  const entry = (
    name: string,
  ) => [0x40, 0x01, name.charCodeAt(0), ...integer(7, 0, 2000), ...new Array(2000).fill(0x76)];
  decoder.decode(Uint8Array.from([...entry("a"), ...entry("b"), ...entry("c")])); // 3 × 2033 octets
  assert.deepEqual(decoder.dynamicTable.entries.map(([name]) => name), ["c", "b"]);
  decoder.decode(Uint8Array.from([...integer(5, 0x20, 8192), ...entry("d"), ...entry("e")]));
  assert.deepEqual(decoder.dynamicTable.entries.map(([name]) => name), ["e", "d", "c", "b"]);
});

Deno.test("HpackDecoder: values are octets, one Latin-1 char each, long and short, plain and Huffman", () => {
  const octets = Uint8Array.from({ length: 256 }, (_, i) => i);
  const text = String.fromCharCode(...octets);
  for (const value of [text, text.slice(0x80, 0xa0), "é", "x".repeat(5000) + "\x85", "y".repeat(5000)]) {
    const plain = latin1(value);
    const length = integer(7, 0x00, plain.byteLength);
    const huffman = huffmanEncode(value);
    const block = Uint8Array.of(
      0x00,
      0x01,
      0x76,
      ...length,
      ...plain,
      0x00,
      0x01,
      0x68,
      ...integer(7, 0x80, huffman.byteLength),
      ...huffman,
    );
    assert.deepEqual(new HpackDecoder().decode(block), ["v", value, "h", value]);
  }
});

/** An RFC 7541 §5.1 integer with a prefix of `prefixBits`, the first octet's other bits from `flags`. */
function integer(prefixBits: number, flags: number, value: number): number[] {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) return [flags | value];
  const out = [flags | mask];
  for (value -= mask; value >= 128; value >>>= 7) out.push((value & 0x7f) | 0x80);
  out.push(value);
  return out;
}

Deno.test("encodeHeaders: static matches indexed, static names indexed, other names literal", () => {
  assert.deepEqual(encodeHeaders([[":status", "200"]]), hex("88"));
  assert.deepEqual(
    encodeHeaders([["content-type", "application/grpc"]]),
    Uint8Array.of(0x0f, 0x10, 0x10, ...latin1("application/grpc")),
  );
  assert.deepEqual(
    encodeHeaders([["grpc-status", "0"]]),
    Uint8Array.of(0x00, 0x0b, ...latin1("grpc-status"), 0x01, 0x30),
  );
  assert.deepEqual(encodeHeaders([]), new Uint8Array(0));
  assert.deepEqual(encodeHeaders([[":authority", ""]]), hex("81")); // a name-only entry, the empty value
  assert.deepEqual(encodeHeaders([[":status", "201"]]), hex("0803 3230 31")); // :status is index 8
});

Deno.test("encodeHeaders round-trips through the decoder and leaves its dynamic table empty", () => {
  const octets = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
  const headers: [string, string][] = [
    [":status", "200"],
    ["content-type", "application/grpc"],
    ["grpc-status", "13"],
    ["grpc-message", "a%20b" + "z".repeat(300)],
    ["x-octets", octets],
    ["set-cookie", "a=1"],
    ["set-cookie", "a=1"],
    ["x-empty", ""],
    ["", ""],
    ["x-long-" + "n".repeat(200), "v".repeat(70_000)],
  ];
  const decoder = new HpackDecoder();
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(decoder.decode(encodeHeaders(headers)), flat(headers));
  }
  assert.deepEqual(decoder.dynamicTable, { entries: [], bytes: 0 });
});

Deno.test("encodeHeaders: a block stays as returned while later blocks are encoded, across pools", () => {
  const first = encodeHeaders([["grpc-status", "0"]]);
  const copy = first.slice();
  const later = Array.from({ length: 50 }, (_, i) => encodeHeaders([["x-fill", String(i).repeat(1000)]]));
  assert.deepEqual(first, copy);
  later.forEach((block, i) =>
    assert.deepEqual(new HpackDecoder().decode(block), ["x-fill", String(i).repeat(1000)])
  );
  assert.throws(() => encodeHeaders([["x-a", "b"], ["x-b", "\u0100"]]));
  assert.deepEqual(first, copy, "a refused encoding writes over no returned block");
  assert.deepEqual(new HpackDecoder().decode(later[49]), ["x-fill", "49".repeat(1000)]);
});

Deno.test("encodeHeaders refuses chars above 0xFF and uppercase names, naming the header", () => {
  assert.throws(
    () => encodeHeaders([["x-a", "caf\u20ac"]]),
    /header "x-a": value has a char above 0xFF at 3/,
  );
  assert.throws(() => encodeHeaders([["X-A", "b"]]), /header "X-A": name has an uppercase letter at 0/);
  assert.throws(() => encodeHeaders([["x-\u0100", "b"]]), /name has a char above 0xFF/);
});

type RequestHeaders = Record<string, string | string[]>;

/**
 * The header blocks a real encoder (Deno's node:http2 client, Huffman and dynamic table on) sends for
 * `requests`, captured by a raw TCP server that announces `settings` (id, value pairs) and reads HEADERS and
 * CONTINUATION frames after the connection preface. The requests start once the client has our settings.
 */
async function capturedBlocks(
  requests: RequestHeaders[],
  settings: [number, number][],
): Promise<Uint8Array[]> {
  const blocks: Uint8Array[] = [];
  const done = Promise.withResolvers<void>();
  const server = net.createServer((socket) => {
    const frame = new Uint8Array(9 + 6 * settings.length);
    frame.set([0, 0, 6 * settings.length, 4]); // SETTINGS on stream 0
    const view = new DataView(frame.buffer);
    settings.forEach(([id, value], i) => {
      view.setUint16(9 + 6 * i, id);
      view.setUint32(11 + 6 * i, value);
    });
    socket.write(frame);
    let pending = new Uint8Array(0);
    let preface = true;
    let fragments: Uint8Array[] = [];
    socket.on("data", (chunk: Uint8Array) => {
      pending = Uint8Array.of(...pending, ...chunk);
      if (preface) {
        if (pending.byteLength < 24) return;
        assert.equal(new TextDecoder().decode(pending.subarray(0, 24)), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        pending = pending.subarray(24);
        preface = false;
      }
      while (pending.byteLength >= 9) {
        const length = (pending[0] << 16) | (pending[1] << 8) | pending[2];
        if (pending.byteLength < 9 + length) break;
        const [type, flags] = [pending[3], pending[4]];
        let payload = pending.subarray(9, 9 + length);
        pending = pending.slice(9 + length);
        if (type === 0x1) { // HEADERS: strip PADDED (0x8) and PRIORITY (0x20)
          if (flags & 0x8) payload = payload.subarray(1, payload.byteLength - payload[0]);
          if (flags & 0x20) payload = payload.subarray(5);
        } else if (type !== 0x9) continue; // neither HEADERS nor CONTINUATION
        fragments.push(payload);
        if (flags & 0x4) { // END_HEADERS
          blocks.push(Uint8Array.from(fragments.flatMap((part) => [...part])));
          fragments = [];
          if (blocks.length === requests.length) done.resolve();
        }
      }
    });
    socket.on("error", () => {}); // the client's reset at the end
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  client.on("error", done.reject);
  client.once("remoteSettings", () => {
    for (const headers of requests) client.request(headers).on("error", () => {}).end();
  });
  const timeout = setTimeout(
    () => done.reject(new Error(`only ${blocks.length} header blocks arrived`)),
    10_000,
  );
  try {
    await done.promise;
  } finally {
    clearTimeout(timeout);
    client.destroy();
    await new Promise((closed) => server.close(closed));
  }
  return blocks;
}

/** The fields node:http2 sends for a request object: in order, a list's values one field each. */
const fieldsOf = (headers: RequestHeaders) =>
  Object.entries(headers).flatMap(([name, value]) => [value].flat().flatMap((one) => [name, one]));

function variedRequests(): RequestHeaders[] {
  const grpc = (i: number): RequestHeaders => ({
    ":method": "POST",
    ":scheme": "http",
    ":authority": "tollgate",
    ":path": "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
    "content-type": "application/grpc",
    "te": "trailers",
    "grpc-timeout": `${200 + (i % 3)}m`,
    "x-request-id": crypto.randomUUID(),
  });
  const octets = String.fromCharCode(0x09, ...Array.from({ length: 0x5f }, (_, i) => 0x20 + i), 0x80, 0xff);
  return [
    grpc(0),
    grpc(1),
    { ...grpc(2), "x-octets": octets, "x-latin1": "caf\u00e9 \u0080\u009f\u00a0\u00ff\t!" },
    { ...grpc(3), "x-long": "abcdefghijklmnopqrstuvwxyz0123456789".repeat(1000) }, // CONTINUATION frames
    { ...grpc(4), "x-repeat": ["same", "same", "same"], "set-cookie": ["a=1", "b=2"], "x-octets": octets },
    { ...grpc(5), "authorization": "Bearer abc", "cookie": "k=v", "x-empty": "" },
    ...Array.from(
      { length: 20 },
      (_, i) => ({ ...grpc(6 + i), [`x-field-${i % 7}`]: `value-${i}-`.repeat(i) }),
    ),
    grpc(26),
  ];
}

for (const [tableBytes, settings] of [[4096, []], [256, [[0x1, 256]]]] as [number, [number, number][]][]) {
  Deno.test(`HpackDecoder decodes what node:http2's encoder sends (table ${tableBytes} octets)`, async () => {
    const requests = variedRequests();
    const blocks = await capturedBlocks(requests, settings);
    const decoder = new HpackDecoder({ maxTableBytes: tableBytes });
    blocks.forEach((block, i) =>
      assert.deepEqual(decoder.decode(block), fieldsOf(requests[i]), `request ${i}`)
    );
    assert.ok(blocks[3].byteLength > 16_384, "the long request's block spans CONTINUATION frames");
    // RFC 7541 §4.2: the encoder signals our smaller limit with a size update at its first block's start
    if (tableBytes === 256) assert.deepEqual([...blocks[0].subarray(0, 3)], [0x3f, 0xe1, 0x01]);
    const table = decoder.dynamicTable;
    assert.ok(table.entries.length > 0 && table.bytes <= tableBytes, `table of ${table.bytes} octets`);
  });
}

Deno.test("HpackDecoder: its dynamic table follows RFC 7541 §4 over many blocks (against a plain model)", () => {
  let seed = 7; // xorshift32 from a fixed seed, so a failure repeats
  const random = (below: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % below;
  };
  const decoder = new HpackDecoder({ maxTableBytes: 2000 });
  const model: [string, string][] = [];
  let limit = 2000;
  let most = 0;
  const evict = (bytes: number) => {
    while (model.reduce((n, [a, b]) => n + a.length + b.length + 32, 0) > bytes) model.pop();
  };
  for (let block = 0; block < 300; block++) {
    const octets: number[] = [];
    const expected: string[] = [];
    if (random(10) === 0) {
      limit = random(2001);
      octets.push(...integer(5, 0x20, limit));
      evict(limit);
    }
    for (let field = random(6); field > 0; field--) {
      if (model.length > 0 && random(2) === 0) {
        const position = random(model.length);
        octets.push(...integer(7, 0x80, 62 + position));
        expected.push(...model[position]);
      } else {
        const name = `n${random(100)}`;
        const value = "v".repeat(random(random(8) === 0 ? 2100 : 30));
        octets.push(0x40, name.length, ...latin1(name), ...integer(7, 0, value.length), ...latin1(value));
        expected.push(name, value);
        const size = name.length + value.length + 32;
        evict(size > limit ? 0 : limit - size);
        if (size <= limit) model.unshift([name, value]);
      }
    }
    assert.deepEqual(decoder.decode(Uint8Array.from(octets)), expected, `block ${block}`);
    const bytes = model.reduce((n, [a, b]) => n + a.length + b.length + 32, 0);
    assert.deepEqual(decoder.dynamicTable, { entries: model, bytes }, `table after block ${block}`);
    most = Math.max(most, model.length);
  }
  assert.ok(most > 16, `the table held up to ${most} entries (its ring grew twice)`);
});

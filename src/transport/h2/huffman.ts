// HPACK's Huffman decoding (RFC 7541 §5.2), table-driven: four bits at a time through a state table built
// once at module load from the code of Appendix B. A state is an inner node of the code's tree (the bits read
// since the last symbol); each entry gives the next state and the symbol completed on the way, if any (every
// code is 5 bits or longer, so four bits complete at most one).

import { HpackError } from "./hpack_error.ts";
import { HUFFMAN_CODES } from "./huffman_code.ts";
import { latin1String } from "./latin1.ts";

const EOS = 256;
const EMITS = 1 << 16;
const FAILS = 1 << 17;

/** [state << 4 | nibble] → next state | symbol << 8 | EMITS, or FAILS where the nibble completes EOS. */
const transitions = new Uint32Array(256 * 16);
/** 1 for the states a string may end in: the root, or up to seven 1 bits of padding (§5.2). */
const endStates = new Uint8Array(256);

buildTables();

function buildTables(): void {
  // children[2 * node + bit]: an inner node (> 0, the root 0 is no one's child) or ~symbol for a leaf.
  const children = new Int32Array(2 * 256);
  let nodes = 1;
  HUFFMAN_CODES.forEach(([code, bits], symbol) => {
    let node = 0;
    for (let at = bits - 1; at >= 0; at--) {
      const slot = 2 * node + ((code >>> at) & 1);
      if (at === 0) {
        if (children[slot] !== 0) throw new Error(`Huffman table: code of ${symbol} is not prefix-free`);
        children[slot] = ~symbol;
      } else {
        if (children[slot] < 0) throw new Error(`Huffman table: code of ${symbol} is not prefix-free`);
        if (children[slot] === 0) children[slot] = nodes++;
        node = children[slot];
      }
    }
  });
  if (nodes !== 256 || children.includes(0, 2)) throw new Error("Huffman table: the code is not complete");
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let at = 3; at >= 0; at--) {
        const child = children[2 * node + ((nibble >>> at) & 1)];
        if (child >= 0) {
          node = child;
          continue;
        }
        if (~child === EOS) {
          entry = FAILS;
          break;
        }
        if (entry & EMITS) throw new Error("Huffman table: two symbols in four bits");
        entry = EMITS | (~child << 8);
        node = 0;
      }
      transitions[(state << 4) | nibble] = entry === FAILS ? FAILS : entry | node;
    }
  }
  for (let node = 0, depth = 0; depth <= 7; depth++, node = children[2 * node + 1]) endStates[node] = 1;
}

let scratch = new Uint8Array(256);

/** Decodes a Huffman-coded string literal (RFC 7541 §5.2) as Latin-1. Throws HpackError. */
export function decodeHuffman(bytes: Uint8Array): string {
  return decodeHuffmanRange(bytes, 0, bytes.byteLength);
}

/** decodeHuffman of bytes[start, end), without a subarray. */
export function decodeHuffmanRange(bytes: Uint8Array, start: number, end: number): string {
  // The shortest code is 5 bits: at most 8/5 symbols an octet.
  const most = Math.ceil(((end - start) * 8) / 5);
  if (scratch.byteLength < most) scratch = new Uint8Array(Math.max(most, 2 * scratch.byteLength));
  const out = scratch;
  let length = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const octet = bytes[i];
    let entry = transitions[(state << 4) | (octet >>> 4)];
    if (entry & FAILS) throw new HpackError(`HPACK: Huffman string has EOS at its octet ${i - start}`);
    if (entry & EMITS) out[length++] = (entry >>> 8) & 0xff;
    entry = transitions[((entry & 0xff) << 4) | (octet & 0xf)];
    if (entry & FAILS) throw new HpackError(`HPACK: Huffman string has EOS at its octet ${i - start}`);
    if (entry & EMITS) out[length++] = (entry >>> 8) & 0xff;
    state = entry & 0xff;
  }
  if (endStates[state] === 0) {
    throw new HpackError(
      `HPACK: Huffman string of ${end - start} octets ends in padding longer than 7 bits or not all ones`,
    );
  }
  return latin1String(out, 0, length);
}

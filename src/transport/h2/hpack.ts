// HPACK (RFC 7541) for our HTTP/2 server: a strict decoder for the peer's header blocks, and an encoder that
// never uses the dynamic table.

import { HpackError } from "./hpack_error.ts";
import { STATIC_TABLE } from "./hpack_static_table.ts";
import { decodeHuffmanRange } from "./huffman.ts";
import { latin1String } from "./latin1.ts";

export { HpackError };

const STATIC_COUNT = STATIC_TABLE.length;
/** Indexed by HPACK index (slot 0 unused). */
const STATIC_NAMES = ["", ...STATIC_TABLE.map(([name]) => name)];
const STATIC_VALUES = ["", ...STATIC_TABLE.map(([, value]) => value)];
/** RFC 7541 §4.1: an entry's size is its name's and value's octets plus 32. */
const ENTRY_OVERHEAD = 32;
/** The largest integer we accept (§5.1 sets no limit; §7 asks implementations to set one). */
const MAX_INTEGER = 2 ** 31 - 1;
/** Continuation octets after the prefix: 5 carry 35 bits, more than MAX_INTEGER needs. */
const MAX_CONTINUATIONS = 5;
/** HTTP/2's initial SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2): the peer's encoder starts there. */
const INITIAL_TABLE_BYTES = 4096;

/** Decodes the header blocks of one connection's peer, in order (the dynamic table spans blocks). */
export class HpackDecoder {
  readonly #maxTableBytes: number;
  /**
   * The table's size limit, as the peer last set it (§6.3), ≤ #maxTableBytes. It starts at HTTP/2's 4096: a
   * peer uses more only after an update (§4.2). Below 4096, it starts at our limit, as RFC 7541's examples
   * do, which is right once the peer has our SETTINGS (it must then open with an update to at most that).
   */
  #limit: number;
  #bytes = 0;
  // The dynamic table, a ring grown on demand: the newest entry (index 62) at #newest, older ones after it.
  #names: string[] = [];
  #values: string[] = [];
  #newest = 0;
  #count = 0;
  /** The cursor of the block being decoded. */
  #at = 0;

  /**
   * `maxTableBytes` is our SETTINGS_HEADER_TABLE_SIZE (default 4096), the most a size update may ask for.
   * Advertise no less than 4096: a peer that encodes before it has our SETTINGS uses 4096.
   */
  constructor(options: { maxTableBytes?: number } = {}) {
    const max = options.maxTableBytes ?? 4096;
    if (!Number.isInteger(max) || max < 0 || max > MAX_INTEGER) {
      throw new RangeError(`maxTableBytes must be an integer in [0, ${MAX_INTEGER}], not ${max}`);
    }
    this.#maxTableBytes = max;
    this.#limit = Math.min(max, INITIAL_TABLE_BYTES);
  }

  /** The dynamic table's entries, newest (index 62) first, and its size in RFC octets: for tests. */
  get dynamicTable(): { entries: [string, string][]; bytes: number } {
    const entries: [string, string][] = [];
    for (let i = 0; i < this.#count; i++) {
      const slot = (this.#newest + i) % this.#names.length;
      entries.push([this.#names[slot], this.#values[slot]]);
    }
    return { entries, bytes: this.#bytes };
  }

  /**
   * Decodes one complete header block (all HEADERS+CONTINUATION fragments joined) into a flat list
   * [name0, value0, name1, value1, ...] in order. Always decodes the whole block (the dynamic table must
   * stay in sync even if the caller then refuses the headers). Throws HpackError.
   */
  decode(block: Uint8Array): string[] {
    const fields: string[] = [];
    const end = block.byteLength;
    let updatesAllowed = true;
    this.#at = 0;
    while (this.#at < end) {
      const first = block[this.#at];
      if (first & 0x80) {
        // §6.1 indexed field; the one-octet index is the hot path.
        let index = first & 0x7f;
        if (index !== 0x7f) this.#at++;
        else index = this.#integer(block, 7);
        if (index === 0) throw new HpackError(`HPACK: index 0 at octet ${this.#at - 1}`);
        if (index <= STATIC_COUNT) fields.push(STATIC_NAMES[index], STATIC_VALUES[index]);
        else {
          const slot = this.#slot(index);
          fields.push(this.#names[slot], this.#values[slot]);
        }
      } else if (first & 0x40) {
        // §6.2.1 literal with incremental indexing
        const name = this.#literalName(block, 6);
        const value = this.#string(block);
        this.#add(name, value);
        fields.push(name, value);
      } else if (first & 0x20) {
        // §6.3 dynamic table size update: only before the block's first field (§4.2)
        const start = this.#at;
        if (!updatesAllowed) {
          throw new HpackError(`HPACK: dynamic table size update after a field, at octet ${start}`);
        }
        const size = this.#integer(block, 5);
        if (size > this.#maxTableBytes) {
          throw new HpackError(
            `HPACK: dynamic table size update to ${size} above our limit ${this.#maxTableBytes}, at octet ${start}`,
          );
        }
        this.#limit = size;
        this.#evictTo(size);
        continue;
      } else {
        // §6.2.2 without indexing (0000) and §6.2.3 never indexed (0001): both only decoded here
        const name = this.#literalName(block, 4);
        fields.push(name, this.#string(block));
      }
      updatesAllowed = false;
    }
    return fields;
  }

  /** The slot of dynamic index (> STATIC_COUNT); #at is past the index. */
  #slot(index: number): number {
    const position = index - STATIC_COUNT - 1;
    if (position >= this.#count) {
      throw new HpackError(
        `HPACK: index ${index} beyond the ${STATIC_COUNT} static and ${this.#count} dynamic entries, before octet ${this.#at}`,
      );
    }
    return (this.#newest + position) % this.#names.length;
  }

  /** A literal field's name: indexed by the prefix's integer, or (0) a string literal that follows. */
  #literalName(block: Uint8Array, prefixBits: number): string {
    const index = this.#integer(block, prefixBits);
    if (index === 0) return this.#string(block);
    return index <= STATIC_COUNT ? STATIC_NAMES[index] : this.#names[this.#slot(index)];
  }

  /** §5.2 string literal at #at. */
  #string(block: Uint8Array): string {
    const start = this.#at;
    if (start >= block.byteLength) {
      throw new HpackError(`HPACK: block ends before a string, at octet ${start}`);
    }
    const huffman = block[start] & 0x80;
    const length = this.#integer(block, 7);
    const from = this.#at;
    const to = from + length;
    if (to > block.byteLength) {
      throw new HpackError(
        `HPACK: string of ${length} octets at octet ${start} runs past the block's ${block.byteLength}`,
      );
    }
    this.#at = to;
    return huffman ? decodeHuffmanRange(block, from, to) : latin1String(block, from, to);
  }

  /** §5.1 integer with an N-bit prefix at #at (the prefix's other bits ignored); moves #at past it. */
  #integer(block: Uint8Array, prefixBits: number): number {
    const start = this.#at;
    const mask = (1 << prefixBits) - 1;
    let value = block[start] & mask;
    let at = start + 1;
    if (value === mask) {
      let shift = 0;
      for (;;) {
        if (at >= block.byteLength) {
          throw new HpackError(`HPACK: block ends inside the integer at octet ${start}`);
        }
        if (at - start > MAX_CONTINUATIONS) {
          throw new HpackError(
            `HPACK: integer at octet ${start} is longer than ${MAX_CONTINUATIONS + 1} octets`,
          );
        }
        const octet = block[at++];
        value += (octet & 0x7f) * 2 ** shift;
        shift += 7;
        if ((octet & 0x80) === 0) break;
      }
      if (value > MAX_INTEGER) {
        throw new HpackError(`HPACK: integer ${value} at octet ${start} is above 2^31 - 1`);
      }
    }
    this.#at = at;
    return value;
  }

  /** §4.4: evict until the entry fits, then add it; an entry larger than the limit empties the table. */
  #add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.#limit) {
      this.#evictTo(0);
      return;
    }
    this.#evictTo(this.#limit - size);
    if (this.#count === this.#names.length) this.#grow();
    const capacity = this.#names.length;
    this.#newest = (this.#newest + capacity - 1) % capacity;
    this.#names[this.#newest] = name;
    this.#values[this.#newest] = value;
    this.#count++;
    this.#bytes += size;
  }

  /** Doubles the ring, its entries moved to slots 0… newest first. */
  #grow(): void {
    const capacity = Math.max(8, 2 * this.#names.length);
    const names = new Array<string>(capacity).fill("");
    const values = new Array<string>(capacity).fill("");
    for (let i = 0; i < this.#count; i++) {
      const slot = (this.#newest + i) % this.#names.length;
      names[i] = this.#names[slot];
      values[i] = this.#values[slot];
    }
    this.#names = names;
    this.#values = values;
    this.#newest = 0;
  }

  /** Evicts the oldest entries until the table holds at most `bytes`. */
  #evictTo(bytes: number): void {
    const capacity = this.#names.length;
    while (this.#bytes > bytes) {
      const oldest = (this.#newest + this.#count - 1) % capacity;
      this.#bytes -= this.#names[oldest].length + this.#values[oldest].length + ENTRY_OVERHEAD;
      this.#names[oldest] = "";
      this.#values[oldest] = "";
      this.#count--;
    }
  }
}

// The encoder's static matches: name → value → index, and name → its first index.
const staticIndex = new Map<string, Map<string, number>>();
const staticNameIndex = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!staticNameIndex.has(name)) staticNameIndex.set(name, i + 1);
  const values = staticIndex.get(name) ?? new Map<string, number>();
  if (!values.has(value)) values.set(value, i + 1);
  staticIndex.set(name, values);
});

// Blocks are cut from a shared pool, as Node's Buffer pool does: a new Uint8Array costs ~10× more than the
// encoding itself (~250 ns against ~25 ns for a view, Deno 2.9.3). Nothing writes over a block once it is
// returned; a block keeps its pool alive while referenced.
const POOL_BYTES = 16 * 1024;
let pool = new Uint8Array(POOL_BYTES);
let poolUsed = 0;
let written = 0;

/**
 * Encodes a header block without touching the dynamic table (so the peer's SETTINGS_HEADER_TABLE_SIZE never
 * matters) and without Huffman: a full static-table match is indexed, a static name match is a literal
 * without indexing with indexed name, anything else a literal without indexing with a literal name.
 * Names and values are Latin-1 strings (one char per octet); a char above 0xFF, or an uppercase letter in a
 * literal name (RFC 9113 §8.2.1: the peer would treat the message as malformed), throws a TypeError.
 */
export function encodeHeaders(headers: readonly (readonly [string, string])[]): Uint8Array {
  // Each field: at most 1 + 5 octets of index, 2 × 6 octets of string length, then the strings.
  let most = 0;
  for (const [name, value] of headers) most += 17 + name.length + value.length;
  if (poolUsed + most > pool.byteLength) {
    pool = new Uint8Array(Math.max(POOL_BYTES, most));
    poolUsed = 0;
  }
  written = poolUsed;
  for (const [name, value] of headers) {
    const index = staticIndex.get(name)?.get(value);
    if (index !== undefined) {
      writeInteger(0x80, 7, index);
      continue;
    }
    const nameIndex = staticNameIndex.get(name);
    if (nameIndex !== undefined) writeInteger(0x00, 4, nameIndex);
    else {
      pool[written++] = 0x00;
      writeString(name, name, true);
    }
    writeString(value, name, false);
  }
  const block = pool.subarray(poolUsed, written);
  poolUsed = written;
  return block;
}

/** §5.1: `value` with an N-bit prefix, the prefix octet's high bits from `flags`. */
function writeInteger(flags: number, prefixBits: number, value: number): void {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    pool[written++] = flags | value;
    return;
  }
  pool[written++] = flags | mask;
  value -= mask;
  while (value >= 0x80) {
    pool[written++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  pool[written++] = value;
}

/** §5.2 string literal, not Huffman-coded. */
function writeString(text: string, name: string, isName: boolean): void {
  writeInteger(0x00, 7, text.length);
  for (let i = 0; i < text.length; i++) {
    const octet = text.charCodeAt(i);
    if (octet > 0xff || (isName && octet >= 0x41 && octet <= 0x5a)) {
      throw new TypeError(
        `header ${JSON.stringify(name)}: ${isName ? "name" : "value"} has ${
          octet > 0xff ? "a char above 0xFF" : "an uppercase letter"
        } at ${i}`,
      );
    }
    pool[written++] = octet;
  }
}

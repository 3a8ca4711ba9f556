/**
 * Decompresses a streamed response body chunk by chunk, so response chunk policies read
 * plain bytes. The rule (docs/policies.md): what such a chain forwards is sent
 * uncompressed, with `content-encoding` removed.
 *
 * node:zlib (built into Deno) rather than `DecompressionStream`: its `flush()` reports when
 * every byte decodable from the input so far has come out, which one-answer-per-chunk
 * needs; a web stream gives no such point. It handles gzip, deflate and br alike.
 */
import zlib from "node:zlib";

type Decoder = ReturnType<typeof zlib.createGunzip>;

const FACTORIES: Readonly<Record<string, () => Decoder>> = {
  gzip: () => zlib.createGunzip(),
  "x-gzip": () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress() as unknown as Decoder,
};

/** A content-encoding this module decodes (lower-case, one coding), else undefined. */
export function decodable(contentEncoding: string | undefined): string | undefined {
  const coding = contentEncoding?.trim().toLowerCase();
  return coding && coding in FACTORIES ? coding : undefined;
}

export class ChunkDecompressor {
  readonly #decoder: Decoder;
  #out: Uint8Array[] = [];

  constructor(coding: string) {
    this.#decoder = FACTORIES[coding]();
    this.#decoder.on("data", (bytes: Uint8Array) => this.#out.push(bytes));
    // Errors reach the pending push (below); one after the end must not go unheard.
    this.#decoder.on("error", () => {});
  }

  /** The plain bytes of `chunk` (and of what earlier chunks left incomplete). */
  push(chunk: Uint8Array, endOfStream: boolean): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => reject(new Error(`cannot decompress the response: ${error.message}`));
      this.#decoder.once("error", failed);
      const done = () => {
        this.#decoder.off("error", failed);
        const parts = this.#out;
        this.#out = [];
        resolve(parts.length === 1 ? parts[0] : concat(parts));
        if (endOfStream) this.close();
      };
      if (chunk.length > 0) this.#decoder.write(chunk);
      this.#decoder.flush(done);
    });
  }

  /** Releases the decoder (the exchange ended or was cancelled). */
  close(): void {
    this.#decoder.close();
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * An append-only file rotated by size: when the next line would take it past `maxBytes`,
 * `<path>.N-1` becomes `<path>.N` ... `<path>` becomes `<path>.1` (the oldest is
 * overwritten), and a new `<path>` is started. Writes are sequential (the engine runs one
 * record at a time per auditing policy instance).
 */
export class RotatingFile {
  #file: Deno.FsFile | undefined;
  #size = 0;

  constructor(readonly path: string, readonly maxBytes: number, readonly keep: number) {}

  async write(bytes: Uint8Array): Promise<void> {
    if (!this.#file) await this.#open();
    if (this.#size > 0 && this.#size + bytes.byteLength > this.maxBytes) await this.#rotate();
    let written = 0;
    while (written < bytes.byteLength) written += await this.#file!.write(bytes.subarray(written));
    this.#size += bytes.byteLength;
  }

  async #open(): Promise<void> {
    this.#file = await Deno.open(this.path, { append: true, create: true });
    this.#size = (await this.#file.stat()).size;
  }

  async #rotate(): Promise<void> {
    this.#file?.close();
    this.#file = undefined;
    for (let n = this.keep - 1; n >= 1; n--) {
      await Deno.rename(`${this.path}.${n}`, `${this.path}.${n + 1}`).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    }
    await Deno.rename(this.path, `${this.path}.1`);
    await this.#open();
  }

  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

/** A header block that cannot be decoded: a COMPRESSION_ERROR, the connection must end. */
export class HpackError extends Error {
  override name = "HpackError";
}

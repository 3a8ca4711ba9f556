// Header names and values are octets (RFC 9113 §8.2): we hold them as Latin-1 strings, one char per octet.

// TextDecoder is the fastest way to a string past a few octets: UTF-8 equals Latin-1 for ASCII, and WHATWG's
// "latin1" decoder is windows-1252, which equals Latin-1 except for 0x80–0x9F. Measured on Deno 2.9.3, the
// char loop wins below ~16 octets.
const ascii = new TextDecoder("utf-8");
const windows1252 = new TextDecoder("latin1");
const SHORT = 16;
const CHUNK = 4096;

/** The octets bytes[start, end) as a Latin-1 string. */
export function latin1String(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= SHORT) {
    let text = "";
    for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]);
    return text;
  }
  let high = 0;
  let c1 = false;
  for (let i = start; i < end; i++) {
    const octet = bytes[i];
    high |= octet;
    if (octet >= 0x80 && octet <= 0x9f) {
      c1 = true;
      break;
    }
  }
  if (high < 0x80) return ascii.decode(bytes.subarray(start, end));
  if (!c1) return windows1252.decode(bytes.subarray(start, end));
  let text = "";
  for (let at = start; at < end; at += CHUNK) {
    const part = bytes.subarray(at, Math.min(end, at + CHUNK));
    text += String.fromCharCode.apply(null, part as unknown as number[]);
  }
  return text;
}

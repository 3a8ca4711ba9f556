/**
 * Strings from bytes that are ASCII, the common case for header names, header values and
 * attribute keys: there, UTF-8 and a char per byte agree, and for short strings building
 * the string here costs less than a call into the platform's decoder.
 */

const utf8 = new TextDecoder();

/** Up to this many bytes, the string is built here; longer ones go to the platform's decoder. */
const SHORT = 64;

/** `bytes` as a string if every byte is ASCII; undefined otherwise (the caller decides how to decode). */
export function asciiText(bytes: Uint8Array): string | undefined {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] >= 0x80) return undefined;
  return bytes.length <= SHORT
    ? String.fromCharCode.apply(null, bytes as unknown as number[])
    : utf8.decode(bytes);
}

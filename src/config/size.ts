/** Sizes as users write them: `512MiB`, `1GiB`, `300MB`, or a number of bytes. */
const SIZE = /^(\d+(?:\.\d+)?)(B|KiB|MiB|GiB|KB|MB|GB)$/;
const UNIT_BYTES: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

/** The regular expression source, for JSON schemas. */
export const SIZE_PATTERN: string = SIZE.source;

/** Bytes for a size (a string as above, or already a number of bytes); throws on anything else. */
export function parseSize(value: string | number): number {
  if (typeof value === "number") return value;
  const match = SIZE.exec(value);
  if (!match) throw new Error(`invalid size "${value}" (expected e.g. 512MiB, 1GiB)`);
  return Math.round(Number(match[1]) * UNIT_BYTES[match[2]]);
}

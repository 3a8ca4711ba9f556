/** Lists the auth policies read from files (keys, users): YAML or JSON, read when the chain is built. */
import { parse } from "yaml";

/** The entries of a file holding a YAML or JSON list of mappings; throws naming the file. */
export async function readListFile(path: string): Promise<Record<string, unknown>[]> {
  const value = parse(await Deno.readTextFile(path));
  if (
    !Array.isArray(value) || !value.every((e) => e !== null && typeof e === "object" && !Array.isArray(e))
  ) {
    throw new Error(`${path} must hold a list of mappings`);
  }
  return value;
}

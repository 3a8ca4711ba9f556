/**
 * The `keyExtraction` parameter: which request property each client is counted by. The
 * parts are joined with ":" after percent-encoding each (so "a:b" + "c" never equals
 * "a" + "b:c"); a part longer than 128 characters is replaced by its SHA-256, so a hostile
 * header cannot make keys (and the memory store) large.
 */
import { createHash } from "node:crypto";
import type { RequestContext } from "@tollgate/sdk";

export interface KeyPart {
  readonly type: "ip" | "header" | "metadata" | "routename" | "apiname" | "apiversion" | "constant";
  readonly key?: string;
}

/** Stands for a header or metadata value the request does not have: those requests share one counter. */
const ABSENT = "-";
const MAX_PART_LENGTH = 128;

type PartReader = (ctx: RequestContext) => string;

function metadataReader(path: string): PartReader {
  const segments = path.split(".");
  return (ctx) => {
    let node: unknown = ctx.shared.metadata;
    for (const segment of segments) {
      if (node === null || typeof node !== "object" || !Object.hasOwn(node, segment)) return ABSENT;
      node = (node as Record<string, unknown>)[segment];
    }
    if (typeof node === "string") return node;
    if (typeof node === "number" || typeof node === "boolean") return String(node);
    return ABSENT;
  };
}

function reader(part: KeyPart, index: number): PartReader {
  const needKey = () => {
    if (!part.key) throw new Error(`keyExtraction[${index}]: type "${part.type}" needs a "key"`);
    return part.key;
  };
  switch (part.type) {
    case "ip":
      return (ctx) => {
        if (ctx.clientAddress === undefined) {
          // Counting every client under one key would be a silent misconfiguration.
          throw new Error(
            "rate-limit: the client address is unknown; Envoy must send the source.address " +
              "request attribute (ext_proc request_attributes, docs/envoy.md)",
          );
        }
        return ctx.clientAddress;
      };
    case "header": {
      const name = needKey().toLowerCase();
      return (ctx) => ctx.headers.get(name) ?? ABSENT;
    }
    case "metadata":
      return metadataReader(needKey());
    case "routename":
      return (ctx) => ctx.shared.route.name;
    case "apiname":
      return (ctx) => ctx.shared.route.api?.name ?? ABSENT;
    case "apiversion":
      return (ctx) => ctx.shared.route.api?.version ?? ABSENT;
    case "constant": {
      const value = needKey();
      return () => value;
    }
  }
}

function encodePart(value: string): string {
  return value.length > MAX_PART_LENGTH
    ? `sha256=${createHash("sha256").update(value).digest("hex")}`
    : encodeURIComponent(value);
}

/** Compiles the parts into a function giving a request's key (the route name when `parts` is empty). */
export function compileKey(parts: readonly KeyPart[]): (ctx: RequestContext) => string {
  const readers = (parts.length > 0 ? parts : [{ type: "routename" as const }]).map(reader);
  return (ctx) => readers.map((read) => encodePart(read(ctx))).join(":");
}

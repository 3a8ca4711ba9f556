/** Running chunk policies through the engine's real chunk pipeline, for unit tests. */
import { ChunkPipeline, type ChunkStep } from "../../src/chain/chunks.ts";
import type { ChainEntry } from "../../src/chain/chain.ts";
import type { ExchangeState } from "../../src/chain/state.ts";
import { DEFAULT_STREAMING } from "../../src/sdk/chunk.ts";
import { instantiate, registry, requestState } from "./policies.ts";
import { entry } from "./chains.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** A built-in policy as a chain entry, with its definition's mode and streaming options. */
export async function builtInEntry(name: string, parameters: Record<string, unknown>): Promise<ChainEntry> {
  const { policy, params, mode } = await instantiate(name, parameters);
  const found = registry.find(name, "v1");
  if (!found.ok) throw new Error(found.message);
  const definition = found.policy.definition;
  return {
    ...entry(`${name}:v1`, policy, { mode }),
    params,
    streaming: definition.streaming ?? DEFAULT_STREAMING,
  };
}

/** Feeds `chunks` (the last one ends the body) through a pipeline; what each chunk forwarded. */
export async function feed(
  entries: readonly ChainEntry[],
  phase: "request" | "response",
  chunks: readonly string[],
  state: ExchangeState = requestState(),
): Promise<{ out: (string | { end: number })[]; state: ExchangeState }> {
  const pipeline = new ChunkPipeline(entries, phase, state, { maxAccumulatedBytes: 1 << 20 });
  const out: (string | { end: number })[] = [];
  for (const [i, chunk] of chunks.entries()) {
    const step: ChunkStep = await pipeline.push(utf8.encode(chunk), i === chunks.length - 1);
    if ("end" in step) {
      out.push({ end: step.end.statusCode });
      break;
    }
    out.push(text.decode(step.data));
  }
  return { out, state };
}

/**
 * body-regex-redact: redacts regex matches in streamed bodies, across chunk boundaries. What a
 * match could still extend into is carried to the next chunk, per exchange and direction.
 */
import { Chunk, type ChunkContext, type PolicyFactory, type SharedContext } from "@tollgate/sdk";
import { Redactor } from "./redact.ts";

type Params = {
  patterns: string[];
  replacement: string;
  maxMatchBytes: number;
  request: boolean;
  response: boolean;
};

/** One direction of one exchange: its UTF-8 decoder (characters may span chunks) and carry. */
interface Flow {
  readonly decoder: TextDecoder;
  carry: string;
}

export const getPolicy: PolicyFactory<Params> = (_metadata, params) => {
  const redactor = new Redactor(params.patterns, params.replacement, params.maxMatchBytes);
  // Keyed by the exchange's shared context: released with the exchange, cancelled or not.
  const flows = { request: new WeakMap<SharedContext, Flow>(), response: new WeakMap<SharedContext, Flow>() };

  const redact = (direction: "request" | "response") => (ctx: ChunkContext, chunk: Uint8Array) => {
    const map = flows[direction];
    let flow = map.get(ctx.shared);
    if (!flow) {
      flow = { decoder: new TextDecoder(), carry: "" };
      map.set(ctx.shared, flow);
    }
    const text = flow.carry + flow.decoder.decode(chunk, { stream: !ctx.endOfStream });
    const { out, carry } = redactor.step(text, ctx.endOfStream);
    flow.carry = carry;
    if (ctx.endOfStream) map.delete(ctx.shared);
    return Chunk.replace(out);
  };

  return {
    ...(params.request ? { onRequestChunk: redact("request") } : {}),
    ...(params.response ? { onResponseChunk: redact("response") } : {}),
  };
};

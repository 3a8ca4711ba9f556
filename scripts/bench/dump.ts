// prints each answer of one exchange of a scenario (JSON and encoded size)
import { fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import { ProcessingRequestSchema, ProcessingResponseSchema } from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { ExchangeStream } from "../../src/extproc/stream.ts";
const mod = await import("./exchange_loop_lib.ts");
const p = await mod.prepare(Deno.args[0]);
const s = new ExchangeStream(p.kernel, p.observer);
for (const m of p.messages) {
  const r = await s.handle(fromBinary(ProcessingRequestSchema, m));
  if (!r) break;
  console.log(toBinary(ProcessingResponseSchema, r).length, JSON.stringify(toJson(ProcessingResponseSchema, r)));
}
Deno.exit(0);

/**
 * Tollgate's own per-request path without any transport: the kernel built from the bench's
 * config of a scenario (scripts/bench/scenarios.ts), the data plane's production observer
 * (metrics cells, the failure quarantine, the watchdog's guard) and one `ExchangeStream` per
 * exchange, driven with the protobuf-encoded ProcessingRequest bytes Envoy sends for one
 * request: decode → handle → encode each answer. Prints CPU µs per exchange
 * (`process.cpuUsage()`) as one JSON line per scenario: the median of the rounds after the
 * first (a warm-up), and every round.
 *
 *   deno run -A scripts/bench/exchange_loop.ts [--scenario headers-5ts,empty-chain,jwt-rs256]
 *     [--exchanges 20000] [--rounds 7] [--encoder protobuf-es|tollgate]
 *
 * `deno run -A --cpu-prof --cpu-prof-dir=DIR scripts/bench/exchange_loop.ts …` profiles it.
 * Not part of the tests or the bench: numbers depend on the machine and its load; compare
 * two trees in interleaved runs.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { create, fromBinary, type JsonObject, toBinary } from "@bufbuild/protobuf";
import { stringify } from "yaml";
import { configDefaults } from "../../src/cli_build.ts";
import { compileCondition } from "../../src/chain/condition.ts";
import { parseConfig } from "../../src/config/load.ts";
import { FailureQuarantine } from "../../src/dataplane/failure_quarantine.ts";
import { livenessBuffer, LivenessWriter } from "../../src/dataplane/liveness.ts";
import { DataPlaneObserver } from "../../src/dataplane/observer.ts";
import { quarantineReason } from "../../src/dataplane/quarantine.ts";
import { encodeProcessingResponse } from "../../src/extproc/response_codec.ts";
import { ExchangeStream } from "../../src/extproc/stream.ts";
import { ProcessingMode_HeaderSendMode as HeaderMode } from "../../src/gen/proto/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.ts";
import {
  type ProcessingRequest,
  ProcessingRequestSchema,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { Kernel } from "../../src/kernel/routes.ts";
import { Metrics } from "../../src/observe/metrics.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { requestHeaders, ROUTE, type Scenario, SCENARIOS } from "./scenarios.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    scenario: { type: "string", default: "headers-5ts,empty-chain,jwt-rs256" },
    exchanges: { type: "string", default: "20000" },
    rounds: { type: "string", default: "7" },
    // How answers are encoded: protobuf-es's toBinary, or src/extproc/response_codec.ts.
    encoder: { type: "string", default: "protobuf-es" },
  },
});
if (values.encoder !== "protobuf-es" && values.encoder !== "tollgate") {
  throw new Error("--encoder must be protobuf-es or tollgate");
}
const encode = values.encoder === "tollgate"
  ? encodeProcessingResponse
  : (response: ProcessingResponse) => toBinary(ProcessingResponseSchema, response);

const encoder = new TextEncoder();
const headerMap = (headers: readonly [string, string][]) => ({
  headers: headers.map(([key, value]) => ({ key, rawValue: encoder.encode(value) })),
});
const split = (line: string): [string, string] => {
  const at = line.indexOf(":");
  return [line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim()];
};

/** The messages Envoy sends for one of the scenario's requests (its body-less ones). */
function messages(scenario: Scenario): Uint8Array[] {
  const attributes: Record<string, JsonObject> = {
    "envoy.filters.http.ext_proc": { "xds.route_name": ROUTE, "source.address": "127.0.0.1:40312" },
  };
  const request = create(ProcessingRequestSchema, {
    request: {
      case: "requestHeaders",
      value: {
        headers: headerMap([
          [":authority", "127.0.0.1:10000"],
          [":path", "/bench"],
          [":method", "GET"],
          [":scheme", "http"],
          ["user-agent", "bench"],
          ["x-forwarded-proto", "http"],
          ["x-request-id", "3f1e7c2a-9b4d-4e8f-a6c1-2d5b8e9f0a17"],
          ...requestHeaders(scenario).map(split),
        ]),
        endOfStream: true,
      },
    },
    attributes,
  });
  const response = create(ProcessingRequestSchema, {
    request: {
      case: "responseHeaders",
      value: {
        headers: headerMap([
          [":status", "200"],
          ["content-type", "application/json"],
          ["content-length", "11"],
          ["x-upstream", "bench"],
        ]),
        endOfStream: false,
      },
    },
  });
  return [toBinary(ProcessingRequestSchema, request), toBinary(ProcessingRequestSchema, response)];
}

/** The scenario's kernel, observer and messages, as the engine and Envoy would have them. */
async function prepare(name: string) {
  const found = SCENARIOS.find((s) => s.name === name);
  if (!found || found.server !== "tollgate") throw new Error(`${name} is not a Tollgate scenario`);
  const scenario = found.prepare ? (await found.prepare()).scenario : found;
  const yaml = stringify({ routes: [{ name: ROUTE, policies: scenario.policies ?? [] }] });
  const config = parseConfig(yaml, "exchange_loop", {}, configDefaults());
  const registry = new PolicyRegistry(generatedPolicies);
  const kernel = new Kernel(
    await buildRouteTable(config, { registry, factoryFor: (p) => p.factory, compileCondition }),
  );
  const metrics = new Metrics();
  metrics.track(kernel.table);
  const quarantine = new FailureQuarantine(() => config.quarantine);
  const liveness = new LivenessWriter(livenessBuffer(), (label) => quarantineReason(new Map(), label));
  const observer = new DataPlaneObserver(metrics, liveness, quarantine, () => config.log.requests);
  const prepared = { kernel, observer, messages: messages(scenario) };
  await passes(prepared, name);
  return prepared;
}

/** Fails unless the scenario's exchange passes with a change (a refused request measures the wrong path). */
async function passes(prepared: Prepared, name: string): Promise<void> {
  const stream = new ExchangeStream(prepared.kernel, prepared.observer);
  const first = await stream.handle(fromBinary(ProcessingRequestSchema, prepared.messages[0]));
  stream.release();
  const answer = first?.response;
  const changed = answer?.case === "requestHeaders" && answer.value.response?.headerMutation !== undefined;
  if (changed !== (name !== "empty-chain")) {
    throw new Error(`${name}: unexpected answer to the request headers: ${JSON.stringify(answer?.case)}`);
  }
}

interface Prepared {
  readonly kernel: Kernel;
  readonly observer: DataPlaneObserver;
  readonly messages: readonly Uint8Array[];
}

/**
 * One exchange: its messages in turn, stopping where Envoy would (an immediate response, or
 * a mode override that skips the response headers). Synchronous unless an answer waits.
 */
function exchange({ kernel, observer, messages }: Prepared): Promise<void> | void {
  const stream = new ExchangeStream(kernel, observer);
  const step = (index: number): Promise<void> | void => {
    for (let i = index; i < messages.length; i++) {
      const request: ProcessingRequest = fromBinary(ProcessingRequestSchema, messages[i]);
      const answered = stream.handle(request);
      if (answered instanceof Promise) {
        return answered.then((response) => goesOn(response) ? step(i + 1) : ended(stream));
      }
      if (!goesOn(answered)) break;
    }
    ended(stream);
  };
  return step(0);
}

/** The stream closed: what the transport does then (it cancels every stream it closes). */
function ended(stream: ExchangeStream): void {
  stream.cancel();
  stream.release();
}

/** Encodes the answer (as the transport would); whether Envoy sends the exchange's next message after it. */
function goesOn(response: ProcessingResponse | undefined): boolean {
  if (!response) return false;
  encode(response);
  if (response.response.case === "immediateResponse") return false;
  // The request answer's override decides whether the response headers come.
  return response.modeOverride === undefined || response.modeOverride.responseHeaderMode !== HeaderMode.SKIP;
}

async function round(prepared: Prepared, count: number): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const pending = exchange(prepared);
    if (pending) await pending;
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const name of values.scenario.split(",")) {
  const prepared = await prepare(name);
  const rounds: number[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    rounds.push(await round(prepared, Number(values.exchanges)));
  }
  const kept = rounds.slice(1);
  console.log(JSON.stringify({
    scenario: name,
    encoder: values.encoder,
    cpuUsPerExchange: Number(median(kept).toFixed(2)),
    rounds: kept.map((us) => Number(us.toFixed(2))),
  }));
}
// Policies' timers (the JWKS cache, metrics) must not keep the loop's process alive.
Deno.exit(0);

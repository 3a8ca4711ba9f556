/**
 * A gRPC client that speaks Envoy's side of ext_proc, for protocol tests against the real
 * server over its Unix socket.
 */
import * as grpc from "@grpc/grpc-js";
import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type ProcessingRequest,
  ProcessingRequestSchema,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { bidiMethod } from "../../src/transport/grpc.ts";

const method = bidiMethod(
  "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
  ProcessingRequestSchema,
  ProcessingResponseSchema,
);
const encoder = new TextEncoder();

type Init = MessageInitShape<typeof ProcessingRequestSchema>;
const headerMap = (pairs: [string, string][]) => ({
  headers: pairs.map(([key, value]) => ({ key, rawValue: encoder.encode(value) })),
});
const routeAttributes = (route?: string): Record<string, JsonObject> =>
  route === undefined ? {} : { "envoy.filters.http.ext_proc": { "xds.route_name": route } };

/** Envoy's first message: request headers with the route attribute. */
export function requestHeaders(
  route: string | undefined,
  path: string,
  extra: [string, string][] = [],
  endOfStream = false,
): Init {
  return {
    request: {
      case: "requestHeaders",
      value: {
        headers: headerMap([
          [":method", "POST"],
          [":path", path],
          [":authority", "api"],
          [":scheme", "http"],
          ...extra,
        ]),
        endOfStream,
      },
    },
    attributes: routeAttributes(route),
  };
}

export const requestBody = (body: string, endOfStream = true): Init => ({
  request: { case: "requestBody", value: { body: encoder.encode(body), endOfStream } },
});

export function responseHeaders(
  status: number,
  extra: [string, string][] = [],
  endOfStream = false,
  route?: string,
): Init {
  return {
    request: {
      case: "responseHeaders",
      value: { headers: headerMap([[":status", String(status)], ...extra]), endOfStream },
    },
    attributes: routeAttributes(route),
  };
}

export const responseBody = (body: string | Uint8Array, endOfStream = true): Init => ({
  request: {
    case: "responseBody",
    value: { body: typeof body === "string" ? encoder.encode(body) : body, endOfStream },
  },
});

export class ExtProcStream {
  readonly #responses: ProcessingResponse[] = [];
  readonly #waiters: ((r: ProcessingResponse) => void)[] = [];
  readonly status: Promise<grpc.StatusObject>;

  constructor(readonly call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>) {
    call.on("data", (response: ProcessingResponse) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(response);
      else this.#responses.push(response);
    });
    this.status = new Promise((resolve) => call.on("status", resolve));
    call.on("error", () => {}); // the status promise carries errors
  }

  send(init: Init): void {
    this.call.write(create(ProcessingRequestSchema, init));
  }

  /** The next response, or a rejection after `timeoutMs`. */
  next(timeoutMs = 5000): Promise<ProcessingResponse> {
    const queued = this.#responses.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no response from the ext_proc server")), timeoutMs);
      this.#waiters.push((response) => {
        clearTimeout(timer);
        resolve(response);
      });
    });
  }

  /** Sends `init` and waits for the answer. */
  async exchange(init: Init): Promise<ProcessingResponse> {
    this.send(init);
    return await this.next();
  }

  /** Half-closes like Envoy at the end of a request and waits for the status. */
  async finish(): Promise<grpc.StatusObject> {
    this.call.end();
    return await this.status;
  }
}

export class ExtProcClient {
  readonly #client: grpc.Client;

  /** @param options channel options, e.g. `{ "grpc.use_local_subchannel_pool": 1 }` for a connection of its own */
  constructor(target: string, options: grpc.ChannelOptions = {}) {
    this.#client = new grpc.Client(target, grpc.credentials.createInsecure(), options);
  }

  open(): ExtProcStream {
    return new ExtProcStream(
      this.#client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize),
    );
  }

  close(): void {
    this.#client.close();
  }
}

/** Header mutations of a phase response as `name=value` (+ for appends) lines. */
export function mutationLines(response: ProcessingResponse): string[] {
  const value = response.response.value;
  const common = value && "response" in value ? value.response : undefined;
  const decoder = new TextDecoder();
  return [
    ...(common?.headerMutation?.setHeaders ?? []).map((o) =>
      `${o.append ? "+" : ""}${o.header?.key}=${decoder.decode(o.header?.rawValue)}`
    ),
    ...(common?.headerMutation?.removeHeaders ?? []).map((name) => `-${name}`),
  ];
}

/**
 * A hand-written decoder for the ProcessingRequest messages Envoy sends: headers, bodies,
 * trailers, the request attributes and the protocol configuration, read straight from the
 * wire into the same objects protobuf-es's `fromBinary` builds (tests/unit/request_codec_test.ts
 * compares the two on every shape). Anything else — metadata_context, a field given twice,
 * a malformed message — goes to protobuf-es, so its rules and error messages stay the
 * authority. Decoding was a sixth of the data plane's own CPU per exchange before this.
 */
import { fromBinary, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { asciiText } from "./ascii.ts";
import type { HeaderMap, HeaderValue } from "../gen/proto/envoy/config/core/v3/base_pb.ts";
import {
  type HttpBody,
  type HttpHeaders,
  type HttpTrailers,
  type ProcessingRequest,
  ProcessingRequestSchema,
  type ProtocolConfiguration,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";

/** This decoder does not take the message: protobuf-es does. */
/** The default of an unset bytes field: empty, so sharing one cannot leak anything. */
const EMPTY = new Uint8Array(0);

class Unhandled extends Error {}
const UNHANDLED = new Unhandled();

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;

/** Decodes one ProcessingRequest; throws protobuf-es's error for a malformed message. */
export function decodeProcessingRequest(bytes: Uint8Array): ProcessingRequest {
  try {
    return new Reader(bytes, 0, bytes.byteLength).processingRequest();
  } catch (error) {
    if (!(error instanceof Unhandled)) throw error;
    return fromBinary(ProcessingRequestSchema, bytes);
  }
}

type RequestCase = ProcessingRequest["request"];

class Reader {
  constructor(private readonly buf: Uint8Array, private pos: number, private end: number) {}

  processingRequest(): ProcessingRequest {
    let request: RequestCase = { case: undefined };
    let attributes: { [key: string]: JsonObject } | undefined;
    let observabilityMode = false;
    let protocolConfig: ProtocolConfiguration | undefined;
    while (this.pos < this.end) {
      const tag = this.varint();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field >= 2 && field <= 7) {
        if (wire !== LENGTH_DELIMITED || request.case !== undefined) throw UNHANDLED;
        request = this.#oneof(field, this.#sub());
      } else if (field === 9 && wire === LENGTH_DELIMITED) {
        attributes ??= {};
        this.#sub().attributeEntry(attributes);
      } else if (field === 10 && wire === VARINT) {
        observabilityMode = this.varint() !== 0;
      } else if (field === 11 && wire === LENGTH_DELIMITED && protocolConfig === undefined) {
        protocolConfig = this.#sub().protocolConfiguration();
      } else {
        throw UNHANDLED;
      }
    }
    const message: ProcessingRequest = {
      $typeName: "envoy.service.ext_proc.v3.ProcessingRequest",
      request,
      attributes: attributes ?? {},
      observabilityMode,
    };
    if (protocolConfig) message.protocolConfig = protocolConfig;
    return message;
  }

  #oneof(field: number, reader: Reader): RequestCase {
    switch (field) {
      case 2:
        return { case: "requestHeaders", value: reader.httpHeaders() };
      case 3:
        return { case: "responseHeaders", value: reader.httpHeaders() };
      case 4:
        return { case: "requestBody", value: reader.httpBody() };
      case 5:
        return { case: "responseBody", value: reader.httpBody() };
      case 6:
        return { case: "requestTrailers", value: reader.httpTrailers() };
      default:
        return { case: "responseTrailers", value: reader.httpTrailers() };
    }
  }

  httpHeaders(): HttpHeaders {
    const message: HttpHeaders = { $typeName: "envoy.service.ext_proc.v3.HttpHeaders", endOfStream: false };
    while (this.pos < this.end) {
      const tag = this.varint();
      if (tag === (1 << 3 | LENGTH_DELIMITED) && message.headers === undefined) {
        message.headers = this.#sub().headerMap();
      } else if (tag === (3 << 3 | VARINT)) {
        message.endOfStream = this.varint() !== 0;
      } else {
        throw UNHANDLED;
      }
    }
    return message;
  }

  httpBody(): HttpBody {
    const message: HttpBody = {
      $typeName: "envoy.service.ext_proc.v3.HttpBody",
      body: EMPTY,
      endOfStream: false,
    };
    while (this.pos < this.end) {
      const tag = this.varint();
      if (tag === (1 << 3 | LENGTH_DELIMITED)) message.body = this.bytes();
      else if (tag === (2 << 3 | VARINT)) message.endOfStream = this.varint() !== 0;
      else throw UNHANDLED;
    }
    return message;
  }

  httpTrailers(): HttpTrailers {
    const message: HttpTrailers = { $typeName: "envoy.service.ext_proc.v3.HttpTrailers" };
    while (this.pos < this.end) {
      const tag = this.varint();
      if (tag !== (1 << 3 | LENGTH_DELIMITED) || message.trailers !== undefined) throw UNHANDLED;
      message.trailers = this.#sub().headerMap();
    }
    return message;
  }

  headerMap(): HeaderMap {
    const headers: HeaderValue[] = [];
    while (this.pos < this.end) {
      if (this.varint() !== (1 << 3 | LENGTH_DELIMITED)) throw UNHANDLED;
      // In place, not a reader per header: this is the loop every request runs.
      const outer = this.#enter();
      headers.push(this.headerValue());
      this.end = outer;
    }
    return { $typeName: "envoy.config.core.v3.HeaderMap", headers };
  }

  headerValue(): HeaderValue {
    const message: HeaderValue = {
      $typeName: "envoy.config.core.v3.HeaderValue",
      key: "",
      value: "",
      rawValue: EMPTY,
    };
    while (this.pos < this.end) {
      const tag = this.varint();
      if (tag === (1 << 3 | LENGTH_DELIMITED)) message.key = this.string();
      else if (tag === (2 << 3 | LENGTH_DELIMITED)) message.value = this.string();
      else if (tag === (3 << 3 | LENGTH_DELIMITED)) message.rawValue = this.bytes();
      else throw UNHANDLED;
    }
    return message;
  }

  protocolConfiguration(): ProtocolConfiguration {
    const message: ProtocolConfiguration = {
      $typeName: "envoy.service.ext_proc.v3.ProtocolConfiguration",
      requestBodyMode: 0,
      responseBodyMode: 0,
      sendBodyWithoutWaitingForHeaderResponse: false,
    };
    while (this.pos < this.end) {
      const tag = this.varint();
      if (tag === (1 << 3 | VARINT)) message.requestBodyMode = this.varint();
      else if (tag === (2 << 3 | VARINT)) message.responseBodyMode = this.varint();
      else if (tag === (3 << 3 | VARINT)) {
        message.sendBodyWithoutWaitingForHeaderResponse = this.varint() !== 0;
      } else throw UNHANDLED;
    }
    return message;
  }

  /** One entry of the `attributes` map (key 1, google.protobuf.Struct value 2); a later key wins. */
  attributeEntry(into: { [key: string]: JsonObject }): void {
    let key = "";
    let value: JsonObject | undefined;
    while (this.pos < this.end) {
      const tag = this.varint();
      if (tag === (1 << 3 | LENGTH_DELIMITED)) key = this.string();
      else if (tag === (2 << 3 | LENGTH_DELIMITED) && value === undefined) value = this.#sub().struct();
      else throw UNHANDLED;
    }
    into[key] = value ?? {};
  }

  /** google.protobuf.Struct as protobuf-es gives it: a JSON object. */
  struct(): JsonObject {
    const fields: JsonObject = {};
    while (this.pos < this.end) {
      if (this.varint() !== (1 << 3 | LENGTH_DELIMITED)) throw UNHANDLED;
      const entry = this.#sub();
      let key = "";
      let value: JsonValue | undefined;
      while (entry.pos < entry.end) {
        const tag = entry.varint();
        if (tag === (1 << 3 | LENGTH_DELIMITED)) key = entry.string();
        else if (tag === (2 << 3 | LENGTH_DELIMITED) && value === undefined) value = entry.#sub().value();
        else throw UNHANDLED;
      }
      // An entry without a value is left to protobuf-es, whichever way it reads it.
      if (value === undefined) throw UNHANDLED;
      fields[key] = value;
    }
    return fields;
  }

  /** google.protobuf.Value as a JSON value. A Value with no kind set is left to protobuf-es. */
  value(): JsonValue {
    let value: JsonValue | undefined;
    while (this.pos < this.end) {
      if (value !== undefined) throw UNHANDLED;
      const tag = this.varint();
      switch (tag) {
        case 1 << 3 | VARINT:
          this.varint();
          value = null;
          break;
        case 2 << 3 | FIXED64:
          value = this.double();
          break;
        case 3 << 3 | LENGTH_DELIMITED:
          value = this.string();
          break;
        case 4 << 3 | VARINT:
          value = this.varint() !== 0;
          break;
        case 5 << 3 | LENGTH_DELIMITED:
          value = this.#sub().struct();
          break;
        case 6 << 3 | LENGTH_DELIMITED:
          value = this.#sub().list();
          break;
        default:
          throw UNHANDLED;
      }
    }
    if (value === undefined) throw UNHANDLED;
    return value;
  }

  /** google.protobuf.ListValue as a JSON array. */
  list(): JsonValue[] {
    const values: JsonValue[] = [];
    while (this.pos < this.end) {
      if (this.varint() !== (1 << 3 | LENGTH_DELIMITED)) throw UNHANDLED;
      values.push(this.#sub().value());
    }
    return values;
  }

  /** A varint of up to 32 bits (tags, lengths, enums, bools); anything longer is left to protobuf-es. */
  varint(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw UNHANDLED;
      const byte = this.buf[this.pos++];
      result |= (byte & 0x7f) << shift;
      if (byte < 0x80) return result >>> 0;
    }
    throw UNHANDLED;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw UNHANDLED;
    const value = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return value;
  }

  /** A length-delimited field's bytes, as a view of the message (as protobuf-es gives them). */
  bytes(): Uint8Array {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) throw UNHANDLED;
    this.pos = start + length;
    return this.buf.subarray(start, this.pos);
  }

  /**
   * An ASCII string (header names and values, attribute keys); any other is left to
   * protobuf-es, whose UTF-8 rules (strict, a leading U+FEFF kept) stay the authority.
   */
  string(): string {
    const text = asciiText(this.bytes());
    if (text === undefined) throw UNHANDLED;
    return text;
  }

  /** Narrows this reader to the next length-delimited field; returns the end to restore after it. */
  #enter(): number {
    const length = this.varint();
    if (length > this.end - this.pos) throw UNHANDLED;
    const outer = this.end;
    this.end = this.pos + length;
    return outer;
  }

  /** A reader over the next length-delimited field. */
  #sub(): Reader {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) throw UNHANDLED;
    this.pos = start + length;
    return new Reader(this.buf, start, this.pos);
  }
}

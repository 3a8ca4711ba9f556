/**
 * A hand-written binary encoder for the ProcessingResponse shapes Tollgate sends (header,
 * body and trailer answers with their CommonResponse, immediate responses, dynamic metadata,
 * mode overrides). protobuf-es's `toBinary` grows a chunked writer and forks one per
 * sub-message; this one measures the message first and writes it into one buffer of the
 * exact size, which is most of the answer's encoding cost on every request. The bytes are
 * the same as `toBinary`'s (tests/unit/response_codec_test.ts compares every shape); a
 * field this encoder does not know (`override_message_timeout`, unknown fields) hands the
 * whole message to `toBinary`.
 */
import { type JsonObject, type JsonValue, toBinary } from "@bufbuild/protobuf";
import type { HeaderValueOption } from "../gen/proto/envoy/config/core/v3/base_pb.ts";
import type { ProcessingMode } from "../gen/proto/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.ts";
import {
  type BodyMutation,
  type CommonResponse,
  type HeaderMutation,
  type ImmediateResponse,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;

/** The field number of each answer in ProcessingResponse's `response` oneof. */
const RESPONSE_FIELDS: Readonly<Record<string, number>> = {
  requestHeaders: 1,
  responseHeaders: 2,
  requestBody: 3,
  responseBody: 4,
  requestTrailers: 5,
  responseTrailers: 6,
  immediateResponse: 7,
};

const utf8 = new TextEncoder();

function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** An enum or int32's varint size: negative values take ten bytes, as in protobuf. */
function int32Size(value: number): number {
  return value < 0 ? 10 : varintSize(value);
}

function utf8Size(text: string): number {
  for (let i = 0; i < text.length; i++) {
    // Not ASCII: let the platform count (surrogates, unpaired ones as U+FFFD).
    if (text.charCodeAt(i) >= 0x80) return utf8.encode(text).byteLength;
  }
  return text.length;
}

/**
 * Sizes first (`measure`), then bytes (`write`), walking the message in the same order:
 * each length-delimited field's size is recorded in `sizes` as it is measured and read back
 * in that order when written, so nothing is measured twice.
 */
class Encoder {
  readonly sizes: number[] = [];
  #next = 0;
  bytes = new Uint8Array(0);
  view = new DataView(this.bytes.buffer);
  at = 0;

  // ---- measuring: each returns the bytes the field takes, tag included ----

  /** Reserves a size slot for a length-delimited field measured next. */
  open(): number {
    this.sizes.push(0);
    return this.sizes.length - 1;
  }

  /** Closes slot `slot` with the content's `size`; returns the field's size with tag and length. */
  close(slot: number, size: number): number {
    this.sizes[slot] = size;
    return 1 + varintSize(size) + size;
  }

  string(text: string): number {
    const size = utf8Size(text);
    this.sizes.push(size);
    return 1 + varintSize(size) + size;
  }

  // ---- writing ----

  start(size: number): void {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
    this.at = 0;
    this.#next = 0;
  }

  /** The next recorded size. */
  size(): number {
    return this.sizes[this.#next++];
  }

  varint(value: number): void {
    while (value > 0x7f) {
      this.bytes[this.at++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    this.bytes[this.at++] = value;
  }

  int32(value: number): void {
    if (value >= 0) return this.varint(value);
    // Sign-extended to 64 bits: ten bytes.
    let low = value >>> 0;
    for (let i = 0; i < 4; i++) {
      this.bytes[this.at++] = (low & 0x7f) | 0x80;
      low >>>= 7;
    }
    this.bytes[this.at++] = (low & 0x0f) | 0x70 | 0x80;
    for (let i = 0; i < 4; i++) this.bytes[this.at++] = 0xff;
    this.bytes[this.at++] = 0x01;
  }

  tag(field: number, wire: number): void {
    this.bytes[this.at++] = (field << 3) | wire;
  }

  /** The tag and recorded length of a length-delimited field. */
  header(field: number): void {
    this.tag(field, LEN);
    this.varint(this.size());
  }

  writeString(field: number, text: string): void {
    const size = this.size();
    this.tag(field, LEN);
    this.varint(size);
    if (size === text.length) {
      for (let i = 0; i < size; i++) this.bytes[this.at++] = text.charCodeAt(i);
    } else {
      utf8.encodeInto(text, this.bytes.subarray(this.at, this.at + size));
      this.at += size;
    }
  }

  writeBytes(field: number, data: Uint8Array): void {
    this.tag(field, LEN);
    this.varint(data.byteLength);
    this.bytes.set(data, this.at);
    this.at += data.byteLength;
  }

  writeDouble(field: number, value: number): void {
    this.tag(field, FIXED64);
    this.view.setFloat64(this.at, value, true);
    this.at += 8;
  }
}

const bytesSize = (data: Uint8Array) => 1 + varintSize(data.byteLength) + data.byteLength;

// ---- google.protobuf.Struct, from the JsonObject protobuf-es keeps ----

function measureStruct(e: Encoder, object: JsonObject): number {
  let size = 0;
  for (const key in object) {
    const entry = e.open();
    const content = e.string(key) + measureValueField(e, object[key] as JsonValue);
    size += e.close(entry, content);
  }
  return size;
}

/** A Value as field 2 of a map entry or a repeated field 1 of a ListValue (tag included). */
function measureValueField(e: Encoder, value: JsonValue): number {
  const slot = e.open();
  return e.close(slot, measureValue(e, value));
}

function measureValue(e: Encoder, value: JsonValue): number {
  if (value === null) return 2;
  switch (typeof value) {
    case "number":
      return 9;
    case "string":
      return e.string(value);
    case "boolean":
      return 2;
  }
  // Not JSON (undefined, a bigint): protobuf-es decides what that is.
  if (typeof value !== "object") throw NOT_JSON;
  const slot = e.open();
  if (Array.isArray(value)) {
    let size = 0;
    for (const item of value) size += measureValueField(e, item);
    return e.close(slot, size);
  }
  return e.close(slot, measureStruct(e, value as JsonObject));
}

function writeStruct(e: Encoder, object: JsonObject): void {
  for (const key in object) {
    e.header(1);
    e.writeString(1, key);
    writeValueField(e, 2, object[key] as JsonValue);
  }
}

function writeValueField(e: Encoder, field: number, value: JsonValue): void {
  e.header(field);
  if (value === null) {
    e.tag(1, VARINT);
    return e.varint(0);
  }
  switch (typeof value) {
    case "number":
      return e.writeDouble(2, value);
    case "string":
      return e.writeString(3, value);
    case "boolean":
      e.tag(4, VARINT);
      return e.varint(value ? 1 : 0);
  }
  if (Array.isArray(value)) {
    e.header(6);
    for (const item of value) writeValueField(e, 1, item);
    return;
  }
  e.header(5);
  writeStruct(e, value as JsonObject);
}

// ---- the ext_proc messages ----

function measureOption(e: Encoder, option: HeaderValueOption): number {
  let size = 0;
  const header = option.header;
  if (header) {
    const slot = e.open();
    let content = 0;
    if (header.key !== "") content += e.string(header.key);
    if (header.value !== "") content += e.string(header.value);
    if (header.rawValue.byteLength > 0) content += bytesSize(header.rawValue);
    size += e.close(slot, content);
  }
  // google.protobuf.BoolValue: an empty message for false.
  if (option.append !== undefined) size += option.append ? 4 : 2;
  if (option.appendAction !== 0) size += 1 + int32Size(option.appendAction);
  if (option.keepEmptyValue) size += 2;
  return size;
}

function writeOption(e: Encoder, option: HeaderValueOption): void {
  const header = option.header;
  if (header) {
    e.header(1);
    if (header.key !== "") e.writeString(1, header.key);
    if (header.value !== "") e.writeString(2, header.value);
    if (header.rawValue.byteLength > 0) e.writeBytes(3, header.rawValue);
  }
  if (option.append !== undefined) {
    e.tag(2, LEN);
    if (option.append) {
      e.varint(2);
      e.tag(1, VARINT);
      e.varint(1);
    } else e.varint(0);
  }
  if (option.appendAction !== 0) {
    e.tag(3, VARINT);
    e.int32(option.appendAction);
  }
  if (option.keepEmptyValue) {
    e.tag(4, VARINT);
    e.varint(1);
  }
}

function measureMutation(e: Encoder, mutation: HeaderMutation): number {
  let size = 0;
  for (const option of mutation.setHeaders) {
    const slot = e.open();
    size += e.close(slot, measureOption(e, option));
  }
  for (const name of mutation.removeHeaders) size += e.string(name);
  return size;
}

function writeMutation(e: Encoder, mutation: HeaderMutation): void {
  for (const option of mutation.setHeaders) {
    e.header(1);
    writeOption(e, option);
  }
  for (const name of mutation.removeHeaders) e.writeString(2, name);
}

function measureBodyMutation(body: BodyMutation): number {
  const { mutation } = body;
  if (mutation.case === "body") return bytesSize(mutation.value);
  return mutation.case === "clearBody" ? 2 : 0;
}

function writeBodyMutation(e: Encoder, body: BodyMutation): void {
  const { mutation } = body;
  if (mutation.case === "body") e.writeBytes(1, mutation.value);
  else if (mutation.case === "clearBody") {
    e.tag(2, VARINT);
    e.varint(mutation.value ? 1 : 0);
  }
}

/** A sub-message field's size, its content measured by `content`. */
function field(e: Encoder, content: () => number): number {
  const slot = e.open();
  return e.close(slot, content());
}

function measureCommon(e: Encoder, common: CommonResponse): number {
  let size = 0;
  if (common.status !== 0) size += 1 + int32Size(common.status);
  const { headerMutation, bodyMutation } = common;
  if (headerMutation) size += field(e, () => measureMutation(e, headerMutation));
  if (bodyMutation) size += field(e, () => measureBodyMutation(bodyMutation));
  if (common.clearRouteCache) size += 2;
  return size;
}

function writeCommon(e: Encoder, common: CommonResponse): void {
  if (common.status !== 0) {
    e.tag(1, VARINT);
    e.int32(common.status);
  }
  if (common.headerMutation) {
    e.header(2);
    writeMutation(e, common.headerMutation);
  }
  if (common.bodyMutation) {
    e.header(3);
    writeBodyMutation(e, common.bodyMutation);
  }
  if (common.clearRouteCache) {
    e.tag(5, VARINT);
    e.varint(1);
  }
}

function measureImmediate(e: Encoder, immediate: ImmediateResponse): number {
  let size = 0;
  const { status, headers, grpcStatus } = immediate;
  if (status) size += field(e, () => status.code !== 0 ? 1 + int32Size(status.code) : 0);
  if (headers) size += field(e, () => measureMutation(e, headers));
  if (immediate.body.byteLength > 0) size += bytesSize(immediate.body);
  if (grpcStatus) size += field(e, () => grpcStatus.status !== 0 ? 1 + varintSize(grpcStatus.status) : 0);
  if (immediate.details !== "") size += e.string(immediate.details);
  return size;
}

function writeImmediate(e: Encoder, immediate: ImmediateResponse): void {
  const { status, headers, grpcStatus } = immediate;
  if (status) {
    e.header(1);
    if (status.code !== 0) {
      e.tag(1, VARINT);
      e.int32(status.code);
    }
  }
  if (headers) {
    e.header(2);
    writeMutation(e, headers);
  }
  if (immediate.body.byteLength > 0) e.writeBytes(3, immediate.body);
  if (grpcStatus) {
    e.header(4);
    if (grpcStatus.status !== 0) {
      e.tag(1, VARINT);
      e.varint(grpcStatus.status);
    }
  }
  if (immediate.details !== "") e.writeString(5, immediate.details);
}

const MODE_FIELDS = [
  "requestHeaderMode",
  "responseHeaderMode",
  "requestBodyMode",
  "responseBodyMode",
  "requestTrailerMode",
  "responseTrailerMode",
] as const;

function measureMode(mode: ProcessingMode): number {
  let size = 0;
  for (const name of MODE_FIELDS) if (mode[name] !== 0) size += 1 + int32Size(mode[name]);
  return size;
}

function writeMode(e: Encoder, mode: ProcessingMode): void {
  for (let i = 0; i < MODE_FIELDS.length; i++) {
    const value = mode[MODE_FIELDS[i]];
    if (value === 0) continue;
    e.tag(i + 1, VARINT);
    e.int32(value);
  }
}

/** Whether a message carries fields this encoder leaves to protobuf-es. */
function unusual(response: ProcessingResponse): boolean {
  return response.overrideMessageTimeout !== undefined || response.$unknown !== undefined;
}

function measureAnswer(e: Encoder, response: ProcessingResponse["response"]): number {
  switch (response.case) {
    case "immediateResponse":
      return measureImmediate(e, response.value);
    case "requestTrailers":
    case "responseTrailers": {
      const mutation = response.value.headerMutation;
      return mutation ? field(e, () => measureMutation(e, mutation)) : 0;
    }
    case undefined:
      return 0;
    default: {
      const common = response.value.response;
      return common ? field(e, () => measureCommon(e, common)) : 0;
    }
  }
}

function writeAnswer(e: Encoder, response: ProcessingResponse["response"]): void {
  switch (response.case) {
    case "immediateResponse":
      return writeImmediate(e, response.value);
    case "requestTrailers":
    case "responseTrailers":
      if (!response.value.headerMutation) return;
      e.header(1);
      return writeMutation(e, response.value.headerMutation);
    case undefined:
      return;
    default:
      if (!response.value.response) return;
      e.header(1);
      writeCommon(e, response.value.response);
  }
}

/** Thrown while measuring a value that is not JSON: the message goes to protobuf-es. */
const NOT_JSON = new Error("not a JSON value");

/** The ProcessingResponse's bytes, as `toBinary(ProcessingResponseSchema, response)` writes them. */
export function encodeProcessingResponse(response: ProcessingResponse): Uint8Array {
  if (unusual(response)) return toBinary(ProcessingResponseSchema, response);
  const e = new Encoder();
  const answer = response.response;
  const { dynamicMetadata, modeOverride } = response;
  let size = 0;
  try {
    if (answer.case !== undefined) size += field(e, () => measureAnswer(e, answer));
    if (dynamicMetadata) size += field(e, () => measureStruct(e, dynamicMetadata));
  } catch (error) {
    if (error !== NOT_JSON) throw error;
    return toBinary(ProcessingResponseSchema, response);
  }
  if (modeOverride) size += field(e, () => measureMode(modeOverride));
  e.start(size);
  if (answer.case !== undefined) {
    e.header(RESPONSE_FIELDS[answer.case]);
    writeAnswer(e, answer);
  }
  if (dynamicMetadata) {
    e.header(8);
    writeStruct(e, dynamicMetadata);
  }
  if (modeOverride) {
    e.header(9);
    writeMode(e, modeOverride);
  }
  return e.bytes;
}

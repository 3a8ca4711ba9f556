/**
 * log-message: one log record per request (and per response, when response parts are
 * chosen) with the parts the parameters select. Changes nothing.
 */
import { getLogger } from "@logtape/logtape";
import type { PolicyFactory } from "@tollgate/sdk";
import { headerView, nameSet, payloadView } from "./record.ts";
import type { LogMessageParams } from "../../src/gen/params.ts";

const log = getLogger(["tollgate", "policy", "log-message"]);

export const getPolicy: PolicyFactory<LogMessageParams> = (metadata, params) => {
  const redacted = nameSet(params.redactedHeaders);
  const excludedRequest = nameSet(params.excludedRequestHeaders);
  const excludedResponse = nameSet(params.excludedResponseHeaders);
  const level = params.level;
  const route = metadata.routeName;
  return {
    onRequest(ctx) {
      if (!log.isEnabledFor(level)) return;
      const record: Record<string, unknown> = {
        route,
        requestId: ctx.shared.requestId,
        method: ctx.method,
        path: ctx.path,
      };
      if (params.logRequestHeaders) record.headers = headerView(ctx.headers, excludedRequest, redacted);
      if (params.logRequestPayload) record.payload = payloadView(ctx.body, params.maxPayloadBytes);
      if (params.logMetadata) record.metadata = ctx.shared.metadata;
      log[level === "warning" ? "warn" : level]("request {method} {path}", record);
    },
    onResponse(ctx) {
      if (!log.isEnabledFor(level)) return;
      const record: Record<string, unknown> = {
        route,
        requestId: ctx.shared.requestId,
        method: ctx.requestMethod,
        path: ctx.requestPath,
        status: ctx.responseStatus,
      };
      if (params.logResponseHeaders) {
        record.headers = headerView(ctx.responseHeaders, excludedResponse, redacted);
      }
      if (params.logResponsePayload) record.payload = payloadView(ctx.responseBody, params.maxPayloadBytes);
      if (params.logMetadata) record.metadata = ctx.shared.metadata;
      log[level === "warning" ? "warn" : level]("response {status} to {method} {path}", record);
    },
  };
};

/**
 * respond: short-circuits the request with a configured immediate response. The response
 * is built once per route.
 */
import { ImmediateResponse, type PolicyFactory } from "@tollgate/sdk";
import { groupHeaders } from "../shared/headers.ts";
import type { RespondParams } from "../../src/gen/params.ts";

export const getPolicy: PolicyFactory<RespondParams> = (_metadata, params) => {
  const response = new ImmediateResponse({
    statusCode: params.statusCode,
    headers: groupHeaders(params.headers),
    body: params.body,
  });
  return {
    onRequest: () => response,
  };
};

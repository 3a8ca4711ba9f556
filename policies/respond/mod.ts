/**
 * respond: short-circuits the request with a configured immediate response. The response
 * is built once per route.
 */
import { ImmediateResponse, type PolicyFactory } from "@tollgate/sdk";
import { groupHeaders, type NamedValue } from "../shared/headers.ts";

interface RespondParams {
  readonly statusCode: number;
  readonly headers?: readonly NamedValue[];
  readonly body: string;
  readonly [key: string]: unknown;
}

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

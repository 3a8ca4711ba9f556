/**
 * set-headers: replaces request and/or response headers with configured values. The
 * actions are built once per route, so a request costs no allocation here, and the
 * instance declares only the phases it has headers for.
 */
import {
  type HeaderRecord,
  type PolicyFactory,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "@tollgate/sdk";
import { groupHeaders, type NamedValue } from "../shared/headers.ts";

interface SetHeadersParams {
  readonly requestHeaders?: readonly NamedValue[];
  readonly responseHeaders?: readonly NamedValue[];
  readonly [key: string]: unknown;
}

export const getPolicy: PolicyFactory<SetHeadersParams> = (_metadata, params) => {
  const request: HeaderRecord | undefined = groupHeaders(params.requestHeaders);
  const response: HeaderRecord | undefined = groupHeaders(params.responseHeaders);
  const onRequest = request ? new UpstreamRequestModifications({ setHeaders: request }) : undefined;
  const onResponse = response ? new UpstreamResponseModifications({ setHeaders: response }) : undefined;
  return {
    mode: () => ({
      requestHeaderMode: onRequest ? "PROCESS" : "SKIP",
      responseHeaderMode: onResponse ? "PROCESS" : "SKIP",
    }),
    onRequest: () => onRequest,
    onResponse: () => onResponse,
  };
};

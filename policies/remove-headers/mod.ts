/**
 * remove-headers: removes every value of the listed request and/or response headers.
 * Built once per route; declares only the phases it has headers for.
 */
import {
  type PolicyFactory,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "@tollgate/sdk";

interface HeaderName {
  readonly name: string;
}

interface RemoveHeadersParams {
  readonly requestHeaders?: readonly HeaderName[];
  readonly responseHeaders?: readonly HeaderName[];
  readonly [key: string]: unknown;
}

const names = (list: readonly HeaderName[] | undefined) =>
  list && list.length > 0 ? list.map((h) => h.name.toLowerCase()) : undefined;

export const getPolicy: PolicyFactory<RemoveHeadersParams> = (_metadata, params) => {
  const request = names(params.requestHeaders);
  const response = names(params.responseHeaders);
  const onRequest = request ? new UpstreamRequestModifications({ removeHeaders: request }) : undefined;
  const onResponse = response ? new UpstreamResponseModifications({ removeHeaders: response }) : undefined;
  return {
    mode: () => ({
      requestHeaderMode: onRequest ? "PROCESS" : "SKIP",
      responseHeaderMode: onResponse ? "PROCESS" : "SKIP",
    }),
    onRequest: () => onRequest,
    onResponse: () => onResponse,
  };
};

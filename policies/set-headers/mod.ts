/** set-headers: replaces request and/or response headers with configured values. */
import {
  type PolicyFactory,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "@tollgate/sdk";
import { fixedActions, groupHeaders, type NamedValue } from "../shared/headers.ts";

interface SetHeadersParams {
  readonly requestHeaders?: readonly NamedValue[];
  readonly responseHeaders?: readonly NamedValue[];
  readonly [key: string]: unknown;
}

export const getPolicy: PolicyFactory<SetHeadersParams> = (_metadata, params) => {
  const request = groupHeaders(params.requestHeaders);
  const response = groupHeaders(params.responseHeaders);
  return fixedActions(
    request && new UpstreamRequestModifications({ setHeaders: request }),
    response && new UpstreamResponseModifications({ setHeaders: response }),
  );
};

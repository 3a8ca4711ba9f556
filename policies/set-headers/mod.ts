/** set-headers: replaces request and/or response headers with configured values. */
import {
  type PolicyFactory,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "@tollgate/sdk";
import { fixedActions, groupHeaders } from "../shared/headers.ts";
import type { SetHeadersParams } from "../../src/gen/params.ts";

export const getPolicy: PolicyFactory<SetHeadersParams> = (_metadata, params) => {
  const request = groupHeaders(params.requestHeaders);
  const response = groupHeaders(params.responseHeaders);
  return fixedActions(
    request && new UpstreamRequestModifications({ setHeaders: request }),
    response && new UpstreamResponseModifications({ setHeaders: response }),
  );
};

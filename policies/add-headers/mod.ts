/** add-headers: appends request and/or response headers, keeping the values already present. */
import {
  type PolicyFactory,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "@tollgate/sdk";
import { fixedActions, groupHeaders } from "../shared/headers.ts";
import type { AddHeadersParams } from "../../src/gen/params.ts";

export const getPolicy: PolicyFactory<AddHeadersParams> = (_metadata, params) => {
  const request = groupHeaders(params.requestHeaders);
  const response = groupHeaders(params.responseHeaders);
  return fixedActions(
    request && new UpstreamRequestModifications({ appendHeaders: request }),
    response && new UpstreamResponseModifications({ appendHeaders: response }),
  );
};

/** remove-headers: removes every value of the listed request and/or response headers. */
import {
  type PolicyFactory,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "@tollgate/sdk";
import { fixedActions } from "../shared/headers.ts";
import type { RemoveHeadersParams } from "../../src/gen/params.ts";

interface HeaderName {
  readonly name: string;
}

const names = (list: readonly HeaderName[] | undefined) =>
  list && list.length > 0 ? list.map((h) => h.name.toLowerCase()) : undefined;

export const getPolicy: PolicyFactory<RemoveHeadersParams> = (_metadata, params) => {
  const request = names(params.requestHeaders);
  const response = names(params.responseHeaders);
  return fixedActions(
    request && new UpstreamRequestModifications({ removeHeaders: request }),
    response && new UpstreamResponseModifications({ removeHeaders: response }),
  );
};

/** redirect: answers every request with a redirect to a templated location. */
import { ImmediateResponse, type PolicyFactory } from "@tollgate/sdk";
import { parseTemplate, splitPath } from "./template.ts";
import type { RedirectParams } from "../../src/gen/params.ts";

const SAMPLE = { scheme: "https", host: "example.com:8443", path: "/a/b", query: "?c=d" };

export const getPolicy: PolicyFactory<RedirectParams> = (_metadata, params) => {
  let location;
  try {
    location = parseTemplate(params.location);
  } catch (error) {
    throw new Error(`location ${JSON.stringify(params.location)}: ${(error as Error).message}`);
  }
  // Whatever the request, the result is then a URL or an absolute path.
  const sample = location(SAMPLE);
  if (!sample.startsWith("/") && !URL.canParse(sample)) {
    throw new Error(
      `location ${JSON.stringify(params.location)}: must give an absolute URL or start with "/" (gives ${
        JSON.stringify(sample)
      } for ${SAMPLE.scheme}://${SAMPLE.host}${SAMPLE.path}${SAMPLE.query})`,
    );
  }
  return {
    onRequest: (ctx) =>
      new ImmediateResponse({
        statusCode: params.statusCode,
        headers: { location: location({ scheme: ctx.scheme, host: ctx.authority, ...splitPath(ctx.path) }) },
      }),
  };
};

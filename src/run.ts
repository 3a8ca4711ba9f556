/**
 * `tollgate run`: runs one configured route's chain against a request read from a file,
 * through the test harness (the engine's chain builder and runner; Python policies in a
 * real executor), and prints what the upstream and the client would receive.
 */
import { createAjv } from "./config/ajv.ts";
import { readConfigEnv } from "./config/load.ts";
import { type Problem, ProblemsError } from "./config/problem.ts";
import { schemaViolations } from "./config/schema_errors.ts";
import { parseYamlSource } from "./config/yaml_source.ts";
import { loadEngineConfig } from "./engine.ts";
import { type CliBuild, configDefaults, EXIT, loadPolicies } from "./cli_build.ts";
import type { ReadonlyHeaders } from "./sdk/headers.ts";
import type { ExchangeResult, MessageView, TestRequest, TestResponse } from "./testing/exchange.ts";
import { PolicyHarness } from "./testing/harness.ts";

export interface RunOptions {
  readonly config: string | undefined;
  readonly route: string;
  readonly request: string;
  readonly response: string | undefined;
  readonly json: boolean;
}

const headers = {
  type: "object",
  additionalProperties: {
    oneOf: [{ type: "string" }, { type: "array", items: { type: "string" } }],
  },
};
const requestSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    method: { type: "string", minLength: 1 },
    path: { type: "string", pattern: "^/" },
    authority: { type: "string" },
    scheme: { type: "string" },
    headers,
    body: {},
    clientAddress: { type: "string" },
    attributes: { type: "object" },
    requestId: { type: "string" },
  },
};
const responseSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    status: { type: "integer", minimum: 200, maximum: 599 },
    headers,
    body: {},
  },
};
const ajv = createAjv();
const checkRequest = ajv.compile(requestSchema);
const checkResponse = ajv.compile(responseSchema);

/** Reads a request or response file (JSON or YAML); every problem is reported with its line. */
async function readMessage<T>(file: string, check: typeof checkRequest, what: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new ProblemsError(`cannot read the ${what} file`, [{
      file,
      path: "",
      message: (error as Error).message,
    }]);
  }
  const yaml = parseYamlSource(text, file);
  if (Array.isArray(yaml)) throw new ProblemsError(`invalid YAML in ${file}`, yaml);
  const value = yaml.value ?? {};
  if (!check(value)) {
    const problems: Problem[] = schemaViolations(check.errors).map((v) =>
      yaml.problemAt(v.segments, v.message)
    );
    throw new ProblemsError(`invalid ${what} file ${file}`, problems);
  }
  return value as T;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A body as text, or base64 when it is not UTF-8. */
function bodyJson(body: Uint8Array): { body?: string; bodyBase64?: string } {
  if (body.byteLength === 0) return {};
  try {
    return { body: utf8.decode(body) };
  } catch {
    let binary = "";
    for (const byte of body) binary += String.fromCharCode(byte);
    return { bodyBase64: btoa(binary) };
  }
}

function messageJson(message: MessageView) {
  return { headers: message.headers.toJSON(), ...bodyJson(message.body) };
}

/** The machine-readable result (`--json`). */
export function resultJson(route: string, result: ExchangeResult): Record<string, unknown> {
  const { upstream, response, immediate } = result;
  return {
    route,
    upstream: upstream === undefined ? null : {
      method: upstream.method,
      path: upstream.path,
      authority: upstream.authority,
      scheme: upstream.scheme,
      ...messageJson(upstream),
    },
    response: { status: response.status, ...messageJson(response) },
    immediate: immediate === undefined
      ? null
      : { policy: immediate.policy, phase: immediate.phase, status: immediate.status },
    metadata: result.metadata,
    analytics: result.analytics,
    trace: result.trace,
  };
}

function headerLines(headers: ReadonlyHeaders): string[] {
  return [...headers].map(([name, value]) => `  ${name}: ${value}`);
}

function bodyLines(body: Uint8Array): string[] {
  if (body.byteLength === 0) return [];
  const shown = bodyJson(body);
  return ["", ...(shown.body ?? `<${body.byteLength} bytes, not UTF-8>`).split("\n").map((l) => `  ${l}`)];
}

/** The readable result: the upstream's request, the client's response, then each policy's decision. */
export function resultText(route: string, result: ExchangeResult): string {
  const { upstream, response, immediate } = result;
  const lines = [`route ${route}`, ""];
  if (upstream) {
    lines.push("upstream receives:");
    lines.push(`  ${upstream.method} ${upstream.scheme}://${upstream.authority}${upstream.path}`);
    lines.push(...headerLines(upstream.headers), ...bodyLines(upstream.body), "");
  } else {
    lines.push(`upstream receives: nothing (answered by ${immediate?.policy} in the request phase)`, "");
  }
  const from = immediate ? `, answered by ${immediate.policy} in the ${immediate.phase} phase` : "";
  lines.push(`client receives${from}:`, `  ${response.status}`);
  lines.push(...headerLines(response.headers), ...bodyLines(response.body), "");
  lines.push("decisions:");
  for (const d of result.trace) {
    const reason = d.reason ? ` (${d.reason})` : "";
    lines.push(`  ${d.phase.padEnd(8)} ${`${d.policy} ${d.version}`.padEnd(32)} ${d.outcome}${reason}`);
  }
  if (result.trace.length === 0) lines.push("  (no policy ran)");
  if (Object.keys(result.metadata).length > 0) lines.push("", `metadata: ${JSON.stringify(result.metadata)}`);
  if (Object.keys(result.analytics).length > 0) lines.push(`analytics: ${JSON.stringify(result.analytics)}`);
  return lines.join("\n");
}

export async function runRoute(options: RunOptions, build: CliBuild): Promise<number> {
  const config = await loadEngineConfig({
    configPath: options.config,
    env: readConfigEnv(),
    defaults: configDefaults(),
  });
  const request = await readMessage<TestRequest>(options.request, checkRequest, "request");
  const response = options.response === undefined
    ? {}
    : await readMessage<TestResponse>(options.response, checkResponse, "response");
  await using harness = await PolicyHarness.build({
    config,
    route: options.route,
    build: { policies: await loadPolicies(build), pythonRegistry: build.pythonRegistry },
  });
  const result = await harness.request(request, response);
  console.log(
    options.json
      ? JSON.stringify(resultJson(options.route, result), null, 2)
      : resultText(options.route, result),
  );
  return EXIT.ok;
}

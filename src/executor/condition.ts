/**
 * Execution conditions: a CEL expression per policy deciding, per request, whether the
 * policy runs. Compiled once when the chain is built.
 *
 * Variables: `request` (method, path, authority, scheme, headers), `response` (status,
 * headers; empty in the request phase), `metadata` (the request's shared metadata) and
 * `route` (name). Header values are joined with ", " as in `headers.get()`.
 */
import { celEnv, isCelError, parse, plan } from "@bufbuild/cel";
import { getLogger } from "@logtape/logtape";
import type { ReadonlyHeaders } from "../sdk/headers.ts";
import type { Condition } from "./chain.ts";
import type { ExchangeState } from "./state.ts";

const log = getLogger(["tollgate", "executor", "condition"]);
const env = celEnv();

function headerMap(headers: ReadonlyHeaders): Map<string, string> {
  const map = new Map<string, string>();
  for (const name of headers.names()) map.set(name, headers.get(name)!);
  return map;
}

/** Plain JSON-like values → CEL inputs (objects become maps, integers stay numbers). */
function toCel(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toCel);
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    return new Map(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  }
  return value ?? null;
}

function bindings(state: ExchangeState, phase: "request" | "response") {
  return {
    request: new Map<string, unknown>([
      ["method", state.method],
      ["path", state.path],
      ["authority", state.authority],
      ["scheme", state.scheme],
      ["headers", headerMap(state.requestHeaders)],
    ]),
    response: new Map<string, unknown>(
      phase === "response" ? [["status", state.status], ["headers", headerMap(state.responseHeaders)]] : [],
    ),
    metadata: toCel(state.shared.metadata),
    route: new Map([["name", state.shared.route.name]]),
  };
}

/**
 * Compiles a condition; throws with the parser's message if the expression is invalid. At
 * run time an evaluation error or a non-boolean result counts as false (the policy is
 * skipped) and is logged.
 */
export function compileCondition(expression: string): Condition {
  let evaluate: ReturnType<typeof plan>;
  try {
    evaluate = plan(env, parse(expression));
  } catch (error) {
    throw new Error(`invalid CEL expression: ${(error as Error).message.split("\n")[0]}`);
  }
  return (state, phase) => {
    const result = evaluate(bindings(state, phase) as never);
    if (result === true || result === false) return result;
    log.warn("executionCondition {expression} gave {result}; skipping the policy", {
      expression,
      result: isCelError(result) ? result.message : String(result),
      requestId: state.shared.requestId,
    });
    return false;
  };
}

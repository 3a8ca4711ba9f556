/**
 * Execution conditions: a CEL expression per policy deciding, per request, whether the
 * policy runs. Parsed and type-checked once when the chain is built, against the variables
 * the engine provides, so a typo (`request.methd`) or a type error (`request.method == 1`)
 * is a configuration error, never a policy silently skipped.
 *
 * Variables: `request` (method, path, authority, scheme: string; headers: map<string,
 * string>), `response` (status: int; headers; zero values in the request phase), `metadata`
 * (map<string, dyn>: the request's shared metadata) and `route` (name). Header values are
 * joined with ", " as in `headers.get()`.
 */
import { Environment } from "@marcbachmann/cel-js";
import type { ReadonlyHeaders } from "../sdk/headers.ts";
import type { Condition } from "./chain.ts";
import { PolicyFailure } from "./failure.ts";
import type { ExchangeState } from "./state.ts";

const HEADERS = "map<string, string>";

/** The declared variables; an expression may use nothing else. */
const env = new Environment({ unlistedVariablesAreDyn: false, enableOptionalTypes: true })
  .registerType("tollgate.Request", {
    fields: { method: "string", path: "string", authority: "string", scheme: "string", headers: HEADERS },
  })
  .registerType("tollgate.Response", { fields: { status: "int", headers: HEADERS } })
  .registerType("tollgate.Route", { fields: { name: "string" } })
  .registerVariable("request", "tollgate.Request")
  .registerVariable("response", "tollgate.Response")
  .registerVariable("metadata", "map<string, dyn>")
  .registerVariable("route", "tollgate.Route");

const NO_HEADERS: ReadonlyMap<string, string> = new Map();

function headerMap(headers: ReadonlyHeaders): Map<string, string> {
  const map = new Map<string, string>();
  for (const name of headers.names()) map.set(name, headers.get(name)!);
  return map;
}

function bindings(state: ExchangeState, phase: "request" | "response") {
  return {
    request: {
      method: state.method,
      path: state.path,
      authority: state.authority,
      scheme: state.scheme,
      headers: headerMap(state.requestHeaders),
    },
    // CEL ints are bigints; the request phase sees zero values, so `response.status >= 400` is false there.
    response: phase === "response"
      ? { status: BigInt(state.status), headers: headerMap(state.responseHeaders) }
      : { status: 0n, headers: NO_HEADERS },
    metadata: state.shared.metadata,
    route: { name: state.shared.route.name },
  };
}

/** The first line of a CEL error (the rest is a source excerpt with a caret). */
function summary(error: unknown): string {
  const { summary, message } = error as { summary?: string; message?: string };
  return summary ?? message?.split("\n")[0] ?? String(error);
}

/**
 * Compiles a condition; throws with a readable message if the expression does not parse,
 * uses an undeclared variable or field, has a type error, or is not of type bool. At run
 * time an evaluation error (e.g. a missing map key) or a non-boolean result throws a
 * {@link PolicyFailure}, which the chain handles under the policy's `onFailure` rule.
 */
export function compileCondition(expression: string): Condition {
  let evaluate: ReturnType<typeof env.parse>;
  try {
    evaluate = env.parse(expression);
  } catch (error) {
    throw new Error(`invalid CEL expression ${JSON.stringify(expression)}: ${summary(error)}`);
  }
  const checked = evaluate.check();
  if (!checked.valid) {
    throw new Error(
      `CEL expression ${JSON.stringify(expression)} does not type-check: ${summary(checked.error)}`,
    );
  }
  if (checked.type !== "bool") {
    throw new Error(
      `CEL expression ${JSON.stringify(expression)} is of type ${checked.type}, not bool` +
        (checked.type === "dyn" ? " (compare the value, e.g. metadata.flag == true)" : ""),
    );
  }
  return (state, phase) => {
    let result: unknown;
    try {
      result = evaluate(bindings(state, phase));
    } catch (error) {
      throw new PolicyFailure("error", `executionCondition ${JSON.stringify(expression)}: ${summary(error)}`);
    }
    if (typeof result !== "boolean") {
      throw new PolicyFailure(
        "error",
        `executionCondition ${JSON.stringify(expression)} gave ${String(result)}, not a boolean`,
      );
    }
    return result;
  };
}

/** Building chains from plain policy objects, for unit tests of the executor and ext_proc layer. */
import type { FailureRule } from "../../src/config/types.ts";
import { Chain, type ChainEntry, type Condition } from "../../src/chain/chain.ts";
import { DEFAULT_STREAMING, type StreamingOptions } from "../../src/sdk/chunk.ts";
import { type ProcessingMode, processingMode } from "../../src/sdk/mode.ts";
import type { Policy } from "../../src/sdk/mod.ts";

export interface EntryOptions {
  readonly mode?: Partial<ProcessingMode>;
  readonly onFailure?: FailureRule;
  readonly timeoutMs?: number;
  readonly condition?: Condition;
  readonly streaming?: Partial<StreamingOptions>;
}

/** An entry labelled `label` (`name:vN`; the trace shows it as `name` at version `vN.0.0`). */
export function entry(label: string, policy: Policy, options: EntryOptions = {}): ChainEntry {
  const [name, major = "v1"] = label.split(":");
  return {
    label,
    name,
    version: `${major}.0.0`,
    policy,
    params: {},
    shownParams: {},
    secrets: [],
    mode: processingMode(options.mode),
    onFailure: options.onFailure ?? "deny",
    timeoutMs: options.timeoutMs,
    condition: options.condition,
    streaming: { ...DEFAULT_STREAMING, ...options.streaming },
  };
}

export function chain(...entries: ChainEntry[]): Chain {
  return new Chain({ name: "test-route" }, entries);
}

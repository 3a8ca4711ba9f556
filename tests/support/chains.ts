/** Building chains from plain policy objects, for unit tests of the executor and ext_proc layer. */
import type { FailureRule } from "../../src/config/types.ts";
import { Chain, type ChainEntry, type Condition } from "../../src/chain/chain.ts";
import { type ProcessingMode, processingMode } from "../../src/sdk/mode.ts";
import type { Policy } from "../../src/sdk/mod.ts";

export interface EntryOptions {
  readonly mode?: Partial<ProcessingMode>;
  readonly onFailure?: FailureRule;
  readonly timeoutMs?: number;
  readonly condition?: Condition;
}

export function entry(label: string, policy: Policy, options: EntryOptions = {}): ChainEntry {
  return {
    label,
    policy,
    params: {},
    shownParams: {},
    secrets: [],
    mode: processingMode(options.mode),
    onFailure: options.onFailure ?? "deny",
    timeoutMs: options.timeoutMs,
    condition: options.condition,
  };
}

export function chain(...entries: ChainEntry[]): Chain {
  return new Chain({ name: "test-route" }, entries);
}

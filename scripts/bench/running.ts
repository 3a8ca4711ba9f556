/**
 * What the bench has running right now (stacks, load generator runs), so that an
 * interrupt (Ctrl-C, SIGTERM) or a failure stops all of it before the bench exits:
 * child processes outlive their parent otherwise.
 */
export class Running {
  readonly #stops = new Set<() => Promise<void>>();

  /** Registers `stop`; the returned function unregisters it. */
  add(stop: () => Promise<void>): () => void {
    this.#stops.add(stop);
    return () => this.#stops.delete(stop);
  }

  /** Stops everything registered, newest first. */
  async stopAll(): Promise<void> {
    const stops = [...this.#stops].reverse();
    this.#stops.clear();
    for (const stop of stops) {
      await stop().catch((error) => console.error(`bench: cleanup: ${error}`));
    }
  }
}

/** Kills a child process if it still runs. */
export function killChild(child: Deno.ChildProcess, signal: Deno.Signal = "SIGTERM"): void {
  try {
    child.kill(signal);
  } catch {
    // already exited
  }
}

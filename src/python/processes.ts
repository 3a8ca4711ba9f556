/**
 * `python.processes` executor processes, each with its own socket and its own supervisor
 * (started, health-checked, restarted and recycled independently). A call goes to the
 * healthy process with the fewest calls in flight, so Python CPU work spreads across cores;
 * one process restarting leaves the others serving. The supervisors run on the control
 * plane; the data-plane workers pick among clients of their own (src/dataplane/python.ts).
 */
import type { ClientObserver, ExecutorClient } from "./client.ts";
import type { ExecutorState, PythonSupervisor, SupervisorObserver } from "./supervisor.ts";

/**
 * The client of the healthy process with the fewest calls in flight (the first if none is
 * healthy: the call fails fast as unavailable there).
 */
export function leastBusy(clients: readonly ExecutorClient[], healthy: readonly boolean[]): ExecutorClient {
  let best: ExecutorClient | undefined;
  for (const [i, client] of clients.entries()) {
    if (healthy[i] && (!best || client.inFlight < best.inFlight)) best = client;
  }
  return best ?? clients[0];
}

export class ExecutorProcesses {
  constructor(readonly supervisors: readonly PythonSupervisor[]) {}

  /** Python policies some process could not load (registry key → reason). */
  get failedPolicies(): ReadonlyMap<string, string> {
    if (this.supervisors.length === 1) return this.supervisors[0].failedPolicies;
    const failed = new Map<string, string>();
    for (const supervisor of this.supervisors) {
      for (const [key, reason] of supervisor.failedPolicies) failed.set(key, reason);
    }
    return failed;
  }

  /** `python executor [N] <state>` for each process that is not healthy. */
  unhealthy(): string[] {
    const many = this.supervisors.length > 1;
    return this.supervisors.flatMap((supervisor, i) =>
      supervisor.state === "healthy" ? [] : [`python executor${many ? ` ${i}` : ""} ${supervisor.state}`]
    );
  }

  /** Starts every process; if one cannot start, stops those that did and throws. */
  async start(): Promise<void> {
    const started: PythonSupervisor[] = [];
    try {
      // One after the other: interpreters importing every policy at once only slow each other.
      for (const supervisor of this.supervisors) {
        await supervisor.start();
        started.push(supervisor);
      }
    } catch (error) {
      await Promise.all(started.map((supervisor) => supervisor.stop(0)));
      for (const supervisor of this.supervisors) supervisor.client.close();
      throw error;
    }
  }

  async stop(graceMs: number): Promise<void> {
    await Promise.all(this.supervisors.map((supervisor) => supervisor.stop(graceMs)));
  }
}

/**
 * The metrics of several processes as one: calls in flight and overdue workers add up, and
 * the executor counts as up only while every process is healthy.
 */
export function combinedObserver(
  observer: (ClientObserver & SupervisorObserver) | undefined,
  processes: number,
): (index: number) => (ClientObserver & SupervisorObserver) | undefined {
  if (!observer || processes === 1) return () => observer;
  const inFlight = new Array<number>(processes).fill(0);
  const overdue = new Array<number>(processes).fill(0);
  const states = new Array<ExecutorState>(processes).fill("stopped");
  const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
  return (index) => ({
    pythonCall: (outcome, seconds) => observer.pythonCall(outcome, seconds),
    pythonStreamBroken: () => observer.pythonStreamBroken(),
    executorRestarted: () => observer.executorRestarted(),
    pythonInFlight(count) {
      inFlight[index] = count;
      observer.pythonInFlight(sum(inFlight));
    },
    executorOverdueWorkers(count) {
      overdue[index] = count;
      observer.executorOverdueWorkers(sum(overdue));
    },
    executorState(state) {
      states[index] = state;
      observer.executorState(states.every((s) => s === "healthy") ? "healthy" : state);
    },
  });
}

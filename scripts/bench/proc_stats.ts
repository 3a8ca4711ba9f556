/**
 * CPU time and memory of processes, read from /proc (Linux only): the bench's only source
 * for "CPU per request" and "peak resident memory", so nothing in the measured processes
 * has to cooperate.
 */

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on every Linux ABI). */
const USER_HZ = 100;

/** CPU seconds in user and in system mode a process has used so far, its threads included. */
export async function cpuTimes(pid: number): Promise<{ user: number; system: number }> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // The command name (field 2) may contain spaces: fields are counted after its ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and fields[12].
  return { user: Number(fields[11]) / USER_HZ, system: Number(fields[12]) / USER_HZ };
}

/** CPU seconds (user + system) a process has used so far, its threads included. */
export async function cpuSeconds(pid: number): Promise<number> {
  const { user, system } = await cpuTimes(pid);
  return user + system;
}

/**
 * Resident memory now and at its peak (VmRSS, VmHWM), and now split into anonymous memory
 * (heaps, malloc) and file-backed pages (the executable's code), in bytes.
 */
export async function memory(
  pid: number,
): Promise<{ rss: number; peak: number; anon: number; file: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return {
    rss: kib("VmRSS") * 1024,
    peak: kib("VmHWM") * 1024,
    anon: kib("RssAnon") * 1024,
    file: kib("RssFile") * 1024,
  };
}

/** Processes whose parent is `ppid` and whose command line contains `marker` (if given). */
export async function childrenOf(ppid: number, marker?: string): Promise<number[]> {
  const out: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent !== ppid) continue;
      if (marker !== undefined) {
        const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
        if (!cmdline.includes(marker)) continue;
      }
      out.push(Number(entry.name));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** The named processes' CPU seconds, read together. */
export async function cpuOf(pids: Record<string, number>): Promise<Record<string, number>> {
  const entries = await Promise.all(
    Object.entries(pids).map(async ([name, pid]) => [name, await cpuSeconds(pid)] as const),
  );
  return Object.fromEntries(entries);
}

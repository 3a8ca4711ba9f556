/** The machine and the versions a benchmark ran on, for the report. */
import denoConfig from "../../deno.json" with { type: "json" };
import { venvBin, venvPython } from "../lib/venv.ts";

async function output(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  const decoder = new TextDecoder();
  return (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim();
}

export async function machine(): Promise<Record<string, string | number>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const osRelease = await Deno.readTextFile("/etc/os-release").catch(() => "");
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 1024 ** 3),
    kernel: Deno.osRelease(),
    os: /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(osRelease)?.[1] ?? "unknown",
  };
}

export async function versions(oha: string): Promise<Record<string, string>> {
  const envoy = await output(venvBin("envoy"), ["--version"]);
  const python = await output(venvPython, ["--version"]);
  return {
    tollgate: denoConfig.version,
    deno: Deno.version.deno,
    envoy: /\/(\d+\.\d+\.\d+)\//.exec(envoy)?.[1] ?? envoy,
    python: python.replace(/^Python /, ""),
    oha,
  };
}

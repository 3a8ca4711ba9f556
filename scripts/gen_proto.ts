/**
 * Regenerates src/gen/proto (TypeScript, protobuf-es) and src/gen/python (Python protobuf
 * modules, no gRPC stubs: the executor hop is framed protobuf) from proto/. One protoc (the
 * one bundled with grpcio-tools in .venv) drives both, with protoc-gen-es run by Deno at the
 * version pinned in deno.json. Deterministic: same
 * inputs, same bytes.
 */
import { join, relative } from "node:path";
import { setup } from "./setup.ts";
import { repoRoot, run, venvPython } from "./lib/venv.ts";

const protoDir = join(repoRoot, "proto");
const tsOut = join(repoRoot, "src/gen/proto");
const pyOut = join(repoRoot, "src/gen/python");
/** Only the executor contract is needed on the Python side. */
const pythonProtos = ["tollgate/executor/v1/executor.proto"];

async function listProtos(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await listProtos(path));
    else if (entry.name.endsWith(".proto")) found.push(relative(protoDir, path));
  }
  return found.sort();
}

async function wellKnownTypesDir(): Promise<string> {
  const out = await new Deno.Command(venvPython, {
    args: [
      "-c",
      "import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))",
    ],
  }).output();
  if (!out.success) throw new Error("gen:proto: grpcio-tools is missing from .venv");
  return new TextDecoder().decode(out.stdout).trim();
}

async function protocGenEsPlugin(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(join(repoRoot, "deno.json")));
  const specifier: string = config.imports["@bufbuild/protoc-gen-es"];
  const script = await Deno.makeTempFile({ prefix: "protoc-gen-es-" });
  await Deno.writeTextFile(script, `#!/bin/sh\nexec "${Deno.execPath()}" run -A --quiet ${specifier} "$@"\n`);
  await Deno.chmod(script, 0o755);
  return script;
}

async function main(): Promise<void> {
  await setup();
  const protos = await listProtos(protoDir);
  const plugin = await protocGenEsPlugin();
  const include = ["-I", protoDir, "-I", await wellKnownTypesDir()];
  try {
    // src/gen/python also holds the builder's outputs (policy_registry.py, requirements.txt):
    // clear only the packages protoc writes there.
    const pyPackages = [...new Set(pythonProtos.map((proto) => join(pyOut, proto.split("/")[0])))];
    for (const dir of [tsOut, ...pyPackages]) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    await Deno.mkdir(tsOut, { recursive: true });
    await run(venvPython, [
      "-m",
      "grpc_tools.protoc",
      ...include,
      `--plugin=protoc-gen-es=${plugin}`,
      `--es_out=${tsOut}`,
      "--es_opt=target=ts,import_extension=ts",
      ...protos,
    ], { cwd: protoDir });
    await run(venvPython, [
      "-m",
      "grpc_tools.protoc",
      ...include,
      `--python_out=${pyOut}`,
      `--pyi_out=${pyOut}`,
      ...pythonProtos,
    ], { cwd: protoDir });
  } finally {
    await Deno.remove(plugin);
  }
  console.error(
    `gen:proto: ${protos.length} files -> src/gen/proto, ${pythonProtos.length} -> src/gen/python`,
  );
}

if (import.meta.main) await main();

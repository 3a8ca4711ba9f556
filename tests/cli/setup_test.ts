/**
 * A policy's new requirement reaches the environment: the build merges it into the
 * generated requirements file, and setup (which `deno task dev` and `test` run after the
 * build) installs it because that file changed. Uses a throwaway virtual environment and a
 * wheel made on the spot, so nothing is downloaded and the repository's .venv is untouched.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildManifest } from "../../scripts/build.ts";
import { venvPython } from "../../scripts/lib/venv.ts";
import { setup } from "../../scripts/setup.ts";

/** A minimal pure-Python wheel of `module` (no build backend needed to install it). */
async function makeWheel(dir: string, module: string): Promise<string> {
  const wheel = join(dir, `${module}-0.1-py3-none-any.whl`);
  const script = `
import sys, zipfile
path, mod = sys.argv[1], sys.argv[2]
info = f"{mod}-0.1.dist-info"
files = {
    f"{mod}/__init__.py": "VALUE = 42\\n",
    f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {mod}\\nVersion: 0.1\\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: tollgate-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
files[f"{info}/RECORD"] = "".join(f"{name},,\\n" for name in files) + f"{info}/RECORD,,\\n"
with zipfile.ZipFile(path, "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
`;
  const out = await new Deno.Command(venvPython, { args: ["-c", script, wheel, module] }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return wheel;
}

Deno.test("a policy's new requirement is installed by the setup that runs after the build", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-setup-" });
  try {
    const policyDir = join(dir, "policies", "probe");
    await Deno.mkdir(policyDir, { recursive: true });
    await Deno.writeTextFile(
      join(policyDir, "policy-definition.yaml"),
      "name: probe\nversion: v1.0.0\nruntime: python\n",
    );
    await Deno.writeTextFile(
      join(policyDir, "policy.py"),
      "def get_policy(metadata, params):\n    return None\n",
    );
    await Deno.writeTextFile(join(policyDir, "requirements.txt"), "# none yet\n");
    const manifest = join(dir, "build.yaml");
    await Deno.writeTextFile(
      manifest,
      "version: v1\npolicies:\n  - name: probe\n    filePath: policies/probe\n",
    );
    const target = {
      venvDir: join(dir, "venv"),
      requirementFiles: [join(dir, "gen", "python", "requirements.txt")],
    };
    const importProbe = () =>
      new Deno.Command(join(target.venvDir, "bin", "python3"), { args: ["-c", "import tollgate_probe"] })
        .output();

    assert.deepEqual(await buildManifest(manifest, join(dir, "gen")), []);
    assert.equal(await setup(target), true, "a new environment is prepared");
    assert.equal((await importProbe()).success, false);

    // The policy gains a requirement: the next build writes it, and setup installs it.
    await Deno.writeTextFile(
      join(policyDir, "requirements.txt"),
      `${await makeWheel(dir, "tollgate_probe")}\n`,
    );
    assert.deepEqual(await buildManifest(manifest, join(dir, "gen")), []);
    assert.equal(await setup(target), true, "the changed requirements are installed");
    assert.equal((await importProbe()).success, true, "the new requirement is importable");
    assert.equal(await setup(target), false, "nothing changed: setup does nothing");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

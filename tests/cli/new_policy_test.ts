/**
 * `deno task new-policy`: in a scratch checkout (build.yaml and policies/), a TypeScript and
 * a Python policy are created whose definitions validate and whose generated tests pass;
 * a bad or taken name is refused with the reason.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot, venvPython } from "../../scripts/lib/venv.ts";
import { runDeno } from "../support/run.ts";

async function scratch(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "tollgate-new-policy-" });
  await Deno.writeTextFile(join(root, "build.yaml"), "# The build.\nversion: v1\npolicies: []\n");
  await Deno.mkdir(join(root, "python"));
  // The generated ruff.toml extends the project's settings, as in the repository.
  await Deno.copyFile(join(repoRoot, "python", "pyproject.toml"), join(root, "python", "pyproject.toml"));
  return root;
}

const newPolicy = (root: string, ...args: string[]) =>
  runDeno(["run", "-A", "scripts/new_policy.ts", ...args, "--root", root]);

Deno.test("new-policy creates a TypeScript and a Python policy that validate and whose tests pass", async () => {
  const root = await scratch();
  try {
    const ts = await newPolicy(root, "add-tenant");
    assert.equal(ts.code, 0, ts.stderr);
    assert.match(ts.stdout, /policies\/add-tenant\/mod_test\.ts/);
    const py = await newPolicy(root, "py-tenant", "--python");
    assert.equal(py.code, 0, py.stderr);
    assert.equal(
      await Deno.readTextFile(join(root, "build.yaml")),
      "# The build.\nversion: v1\npolicies:\n  - name: add-tenant\n    filePath: policies/add-tenant\n" +
        "  - name: py-tenant\n    filePath: policies/py-tenant\n",
    );

    const validated = await runDeno([
      "run",
      "-A",
      "scripts/validate.ts",
      "--manifest",
      join(root, "build.yaml"),
    ]);
    assert.equal(validated.code, 0, validated.stderr);

    const tested = await runDeno([
      "test",
      "-A",
      "--config",
      join(repoRoot, "deno.json"),
      join(root, "policies"),
    ]);
    assert.equal(tested.code, 0, tested.stdout + tested.stderr);
    assert.match(tested.stdout, /3 passed/);
    const formatted = await runDeno([
      "fmt",
      "--check",
      "--config",
      join(repoRoot, "deno.json"),
      join(root, "policies"),
    ]);
    assert.equal(formatted.code, 0, formatted.stderr);

    const pytest = await new Deno.Command(venvPython, {
      args: [
        "-m",
        "pytest",
        "-q",
        "-c",
        "pyproject.toml",
        "--rootdir",
        ".",
        "--import-mode=importlib",
        join(root, "policies"),
      ],
      cwd: join(repoRoot, "python"),
    }).output();
    const pytestOut = new TextDecoder().decode(pytest.stdout);
    assert.equal(pytest.code, 0, pytestOut);
    assert.match(pytestOut, /1 passed/);
    const ruff = await new Deno.Command(join(repoRoot, ".venv", "bin", "ruff"), {
      args: ["check", join(root, "policies")],
    }).output();
    assert.equal(ruff.code, 0, new TextDecoder().decode(ruff.stdout));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("new-policy refuses a bad name, an existing directory and a name build.yaml has", async () => {
  const root = await scratch();
  try {
    const bad = await newPolicy(root, "Add_Tenant");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"Add_Tenant" is not a valid policy name: use kebab-case/);
    assert.equal(await Deno.stat(join(root, "policies")).then(() => true, () => false), false);

    assert.equal((await newPolicy(root, "tenant")).code, 0);
    const again = await newPolicy(root, "tenant", "--python");
    assert.equal(again.code, 2);
    assert.match(again.stderr, /policies\/tenant already exists/);

    await Deno.remove(join(root, "policies", "tenant"), { recursive: true });
    const listed = await newPolicy(root, "tenant");
    assert.equal(listed.code, 2);
    assert.match(listed.stderr, /build\.yaml already has a policy named tenant/);

    const none = await runDeno(["run", "-A", "scripts/new_policy.ts"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /new-policy takes one NAME/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

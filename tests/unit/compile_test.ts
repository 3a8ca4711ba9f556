import assert from "node:assert/strict";
import { join } from "node:path";
import {
  compileArgs,
  compileLayout,
  CompileUsageError,
  ENTRY,
  imageOptions,
  parseCompileOptions,
  pythonPolicyPaths,
  renderConfig,
  stagePythonHome,
} from "../../scripts/compile.ts";
import { ENGINE_ENV_VARS, permissionFlags } from "../../scripts/lib/permissions.ts";
import { parseConfig } from "../../src/config/load.ts";

/** The executor sockets granted: the configured one and the python.processes ones beside it. */
const py = (dir: string, stem: string) =>
  [`unix:${dir}/${stem}.sock`, ...Array.from({ length: 8 }, (_, i) => `unix:${dir}/${stem}-${i}.sock`)].join(
    ",",
  );

const IMAGE_FLAGS = [
  "--allow-read=/var/run/tollgate,/etc/tollgate",
  "--allow-write=/var/run/tollgate",
  `--allow-net=unix:/var/run/tollgate/extproc.sock,${py("/var/run/tollgate", "python")},0.0.0.0:9002`,
  "--allow-run=/usr/bin/python3",
  `--allow-env=${ENGINE_ENV_VARS.join(",")}`,
  "--unstable-worker-options",
  "--v8-flags=--max-semi-space-size=4",
];

const options = (args: string[]) => parseCompileOptions(args)!.options;

/** The permission flags in a compile command line: every --allow-*, --deny-* and -A. */
const permissionArgs = (args: string[]) =>
  args.filter((a) => a.startsWith("--allow-") || a.startsWith("--deny-") || /^-[A-Za-z]*A/.test(a));

Deno.test("compile: the image layout's deno compile command", () => {
  assert.deepEqual(compileArgs(imageOptions()), [
    "compile",
    "--no-prompt",
    ...IMAGE_FLAGS,
    "--frozen",
    "--exclude-unused-npm",
    "--include",
    "src/validate.ts",
    "--include",
    "src/dataplane/worker.ts",
    "--include",
    "src/gen/registry.ts",
    "--output",
    "dist/tollgate",
    ENTRY,
  ]);
});

Deno.test("compile: the permissions are exactly permissionFlags() for the layout, never all", () => {
  const image = compileArgs(imageOptions());
  assert.deepEqual(
    permissionArgs(image),
    permissionFlags({
      runtimeDirs: ["/var/run/tollgate"],
      extprocSocket: "/var/run/tollgate/extproc.sock",
      pythonSocket: "/var/run/tollgate/python.sock",
      adminAddress: "0.0.0.0:9002",
      configDir: "/etc/tollgate",
      python: "/usr/bin/python3",
    }),
  );
  for (const args of [image, compileArgs(options(["--listen-address", "127.0.0.1:9001"]))]) {
    assert.ok(!args.includes("-A") && !args.includes("--allow-all"), args.join(" "));
    assert.ok(!args.some((a) => /^--allow-[a-z]+$/.test(a)), `an unscoped permission in ${args.join(" ")}`);
    assert.ok(!args.some((a) => a.startsWith("--allow-sys") || a.startsWith("--allow-ffi")));
    // The script comes last: flags after it would be the binary's arguments, not permissions.
    assert.equal(args.at(-1), ENTRY);
  }
});

Deno.test("compile: overridden paths", () => {
  const args = compileArgs(options([
    "--runtime-dir",
    "/run/tollgate/",
    "--config-dir",
    "/srv/tollgate/config",
    "--admin",
    "10.0.0.5:9100",
    "--python",
    "/opt/venv/bin/python3",
    "--target",
    "aarch64-unknown-linux-gnu",
    "--output",
    "/tmp/out/tollgate",
  ]));
  assert.deepEqual(permissionArgs(args), [
    "--allow-read=/run/tollgate,/srv/tollgate/config",
    "--allow-write=/run/tollgate",
    `--allow-net=unix:/run/tollgate/extproc.sock,${py("/run/tollgate", "python")},10.0.0.5:9100`,
    "--allow-run=/opt/venv/bin/python3",
    `--allow-env=${ENGINE_ENV_VARS.join(",")}`,
  ]);
  assert.deepEqual(args.slice(-5), [
    "--target",
    "aarch64-unknown-linux-gnu",
    "--output",
    "/tmp/out/tollgate",
    ENTRY,
  ]);
});

Deno.test("compile: hosts and files granted to policies (JWKS URL, Redis server, key files)", () => {
  const args = compileArgs(options([
    "--policy-host",
    "idp.example.com:443",
    "--policy-host",
    "redis.internal:6379",
    "--policy-file",
    "/run/secrets/api-keys.yaml",
  ]));
  const granted = permissionArgs(args);
  assert.equal(granted[0], "--allow-read=/var/run/tollgate,/etc/tollgate,/run/secrets/api-keys.yaml");
  assert.equal(
    granted[2],
    `--allow-net=unix:/var/run/tollgate/extproc.sock,${py("/var/run/tollgate", "python")},0.0.0.0:9002,` +
      "idp.example.com:443,redis.internal:6379",
  );
  assert.throws(() => options(["--policy-host", "idp.example.com"]), /--policy-host must be host:port/);
  assert.throws(() => options(["--policy-file", "keys.yaml"]), /--policy-file must be an absolute path/);
});

Deno.test("compile: --otlp-host grants the OTLP collector spans are exported to", () => {
  const granted = permissionArgs(compileArgs(options(["--otlp-host", "otel-collector:4318"])));
  assert.equal(
    granted[2],
    `--allow-net=unix:/var/run/tollgate/extproc.sock,${py("/var/run/tollgate", "python")},0.0.0.0:9002,` +
      "otel-collector:4318",
  );
  assert.throws(
    () => options(["--otlp-host", "http://otel-collector:4318"]),
    /--otlp-host must be host:port/,
  );
});

Deno.test("compile: sockets in two directories, and ext_proc on TCP", () => {
  const split = permissionArgs(compileArgs(options([
    "--socket",
    "/run/envoy-shared/tollgate.sock",
    "--python-socket",
    "/run/tollgate/py.sock",
  ])));
  assert.equal(split[0], "--allow-read=/run/envoy-shared,/run/tollgate,/etc/tollgate");
  assert.equal(split[1], "--allow-write=/run/envoy-shared,/run/tollgate");
  assert.equal(
    split[2],
    `--allow-net=unix:/run/envoy-shared/tollgate.sock,${py("/run/tollgate", "py")},0.0.0.0:9002`,
  );

  const tcp = permissionArgs(compileArgs(options(["--listen-address", "0.0.0.0:9001"])));
  assert.equal(tcp[1], "--allow-write=/var/run/tollgate");
  assert.equal(tcp[2], `--allow-net=0.0.0.0:9001,${py("/var/run/tollgate", "python")},0.0.0.0:9002`);
});

Deno.test("compile: bad options are usage errors", () => {
  for (
    const args of [
      ["--runtime-dir", "run/tollgate"],
      ["--config-dir", "/etc/a,b"],
      ["--admin", "9002"],
      ["--admin", "0.0.0.0:99999"],
      ["--policy-host", "a:6379,b:6379"],
      ["--redis-host", "redis.internal:6379"], // gone: Redis servers are --policy-host like any other
      ["--python", "python3"],
      ["--socket", "/run/a.sock", "--listen-address", "127.0.0.1:9001"],
      ["--socket", "/run/x/../y.sock"],
      ["--socket", `/run/${"s".repeat(120)}.sock`],
      ["--socket", "/run/t/s.sock", "--python-socket", "/run/t/s.sock"],
      ["--unknown"],
      ["stray"],
    ]
  ) {
    assert.throws(() => parseCompileOptions(args), CompileUsageError, args.join(" "));
  }
  assert.equal(parseCompileOptions(["--help"]), undefined);
});

Deno.test("compile: the generated config names exactly the compiled layout", () => {
  for (
    const args of [[], ["--runtime-dir", "/run/tg", "--admin", "127.0.0.1:9100", "--python-home", "/srv/tg"]]
  ) {
    const opts = options(args);
    const text = renderConfig(opts);
    const config = parseConfig(text, "tollgate.yaml", {}, {
      pythonInterpreter: "unused",
      pythonHome: "unused",
    });
    assert.deepEqual(config.listen, {
      kind: "unix",
      socket: opts.socket,
      socketMode: 0o660,
      transport: "lean",
    });
    assert.equal(config.admin.address, opts.admin);
    assert.equal(config.python.socket, opts.pythonSocket);
    assert.equal(config.python.interpreter, opts.python);
    assert.equal(config.python.home, opts.pythonHome);
    assert.equal(config.log.format, "json");
    assert.deepEqual(config.routes.map((r) => r.name), ["users-v1", "orders", "legacy"]);
    assert.match(text, /^# Tollgate config for the layout/);
  }
  const tcp = parseConfig(
    renderConfig(options(["--listen-address", "0.0.0.0:9001"])),
    "tollgate.yaml",
    {},
    { pythonInterpreter: "unused", pythonHome: "unused" },
  );
  assert.deepEqual(tcp.listen, { kind: "tcp", address: "0.0.0.0:9001", transport: "lean" });
});

Deno.test("compile: Python policy paths must stay inside the python home", () => {
  const registry = (path: string) =>
    `PYTHON_POLICIES = {\n    "a:v1": {\n        "path": ${JSON.stringify(path)},\n    },\n}\n`;
  assert.deepEqual(pythonPolicyPaths(registry("policies/a")), ["policies/a"]);
  assert.deepEqual(pythonPolicyPaths(registry(".tollgate/python-modules/o__r__v1/geo")), [
    ".tollgate/python-modules/o__r__v1/geo",
  ]);
  for (const bad of ["/abs/policy", "../outside", "policies/../../x"]) {
    assert.throws(() => pythonPolicyPaths(registry(bad)), /not inside the repository/);
  }
});

Deno.test("compile: the staged python home holds the executor, generated code and Python policies", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-python-home-" });
  try {
    const policies = await stagePythonHome(join(dir, "home"));
    const home = join(dir, "home");
    for (
      const file of [
        "python/executor/__main__.py",
        "python/sdk/policy.py",
        "python/requirements.txt",
        "src/gen/python/policy_registry.py",
        "src/gen/python/requirements.txt",
        "src/gen/python/tollgate/executor/v1/executor_pb2.py",
        ...policies.map((p) => `${p}/policy.py`),
      ]
    ) {
      assert.ok((await Deno.stat(join(home, file))).isFile, file);
    }
    const names: string[] = [];
    const walk = async (path: string) => {
      for await (const entry of Deno.readDir(path)) {
        names.push(entry.name);
        if (entry.isDirectory) await walk(join(path, entry.name));
      }
    };
    await walk(home);
    assert.ok(!names.includes("__pycache__"), names.join(" "));
    await assert.rejects(Deno.stat(join(home, "python", "tests")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile: --workers grants each data-plane worker its own socket and writes dataPlane.workers", () => {
  const layout = compileLayout(options(["--workers", "2"]));
  const python = ["python", ...Array.from({ length: 8 }, (_, i) => `python-${i}`)]
    .map((name) => `unix:/var/run/tollgate/${name}.sock`);
  assert.ok(
    permissionFlags(layout).includes(
      "--allow-net=unix:/var/run/tollgate/extproc-0.sock,unix:/var/run/tollgate/extproc-1.sock," +
        `${python.join(",")},0.0.0.0:9002`,
    ),
  );
  const tcp = compileLayout(options(["--listen-address", "127.0.0.1:9000", "--workers", "3"]));
  assert.ok(
    permissionFlags(tcp).some((flag) =>
      flag.startsWith("--allow-net=127.0.0.1:9000,127.0.0.1:9001,127.0.0.1:9002,")
    ),
  );
  assert.match(renderConfig(options(["--workers", "2"])), /dataPlane:\n {2}workers: 2\n/);
  assert.throws(() => options(["--workers", "0"]), /--workers must be an integer from 1 to 64/);
});

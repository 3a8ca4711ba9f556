import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.ts";
import { formatProblem, ProblemsError } from "../../src/config/problem.ts";

const defaults = { pythonInterpreter: "python3", pythonHome: "/opt/tollgate" };

function problems(text: string): string[] {
  try {
    parseConfig(text, "cfg.yaml", {}, defaults);
  } catch (error) {
    assert.ok(error instanceof ProblemsError);
    return error.problems.map(formatProblem);
  }
  assert.fail("expected problems");
}

Deno.test("an empty config gets every default", () => {
  const config = parseConfig("", "cfg.yaml", {}, defaults);
  assert.deepEqual(config.listen, {
    kind: "unix",
    socket: "/tmp/tollgate/extproc.sock",
    socketMode: 0o660,
    transport: "lean",
  });
  assert.equal(config.python.workers, 4);
  assert.equal(config.python.timeoutMs, 30_000);
  assert.equal(config.python.interpreter, "python3");
  assert.equal(config.python.home, "/opt/tollgate");
  assert.equal(config.python.maxInFlight, 1024);
  assert.equal(config.limits.maxBodyBytes, 1048576);
  assert.equal(config.shutdown.gracePeriodMs, 15_000);
  assert.deepEqual(config.routes, []);
});

Deno.test("policy entries get their defaults and parsed durations", () => {
  const config = parseConfig(
    "routes:\n  - name: r\n    policies:\n      - { name: set-headers, version: v1, timeout: 250ms }\n",
    "cfg.yaml",
    {},
    defaults,
  );
  assert.deepEqual(config.routes[0].policies[0], {
    name: "set-headers",
    version: "v1",
    parameters: {},
    onFailure: "deny",
    timeoutMs: 250,
    executionCondition: undefined,
    enabled: true,
  });
});

Deno.test("every problem is reported with file, line, column, YAML path and reason", () => {
  const text = [
    "listen:",
    "  socket: /tmp/x.sock",
    "  address: 127.0.0.1:9001",
    "routes:",
    "  - name: a",
    "    policies:",
    "      - name: Set_Headers",
    "        version: 1",
    "        timeout: 5 sec",
    "        onFailure: explode",
    "  - name: a",
    "  - nme: b",
  ].join("\n");
  assert.deepEqual(problems(text), [
    "cfg.yaml:3:12: listen.address: set either listen.socket or listen.address, not both",
    "cfg.yaml:7:15: routes[0].policies[0].name: must match ^[a-z0-9]+(-[a-z0-9]+)*$",
    "cfg.yaml:8:18: routes[0].policies[0].version: must be of type string",
    "cfg.yaml:9:18: routes[0].policies[0].timeout: must be a duration such as 250ms, 30s or 2m",
    'cfg.yaml:10:20: routes[0].policies[0].onFailure: must be one of "deny", "continue", "skipRemaining"',
    "cfg.yaml:11:11: routes[1].name: duplicate route name (also routes[0])",
    "cfg.yaml:12:5: routes[2].name: is required",
    "cfg.yaml:12:10: routes[2].nme: is not a known field",
  ]);
});

Deno.test("YAML syntax errors are reported with their position", () => {
  const [problem] = problems("routes:\n  - name: [unclosed\n");
  assert.match(problem, /^cfg\.yaml:\d+:\d+: /);
});

Deno.test("environment variables override sockets, log level and the interpreter", () => {
  const config = parseConfig("listen: { address: 127.0.0.1:9001 }\n", "cfg.yaml", {
    TOLLGATE_SOCKET: "/run/t/x.sock",
    TOLLGATE_PYTHON_SOCKET: "/run/t/p.sock",
    TOLLGATE_LOG_LEVEL: "debug",
    TOLLGATE_PYTHON: "/usr/bin/python3",
  }, defaults);
  assert.deepEqual(config.listen, {
    kind: "unix",
    socket: "/run/t/x.sock",
    socketMode: 0o660,
    transport: "lean",
  });
  assert.equal(config.python.socket, "/run/t/p.sock");
  assert.equal(config.log.level, "debug");
  assert.equal(config.python.interpreter, "/usr/bin/python3");
  assert.throws(
    () => parseConfig("", "cfg.yaml", { TOLLGATE_LOG_LEVEL: "loud" }, defaults),
    /TOLLGATE_LOG_LEVEL/,
  );
  assert.equal(
    parseConfig("", "c", { TOLLGATE_ADMIN_ADDRESS: "0.0.0.0:9002" }, defaults).admin.address,
    "0.0.0.0:9002",
  );
  assert.throws(
    () => parseConfig("", "c", { TOLLGATE_ADMIN_ADDRESS: "9002" }, defaults),
    /TOLLGATE_ADMIN_ADDRESS: must be host:port/,
  );
});

Deno.test("TCP listening and a custom socket mode", () => {
  assert.deepEqual(parseConfig("listen: { address: 0.0.0.0:9001 }", "c", {}, defaults).listen, {
    kind: "tcp",
    address: "0.0.0.0:9001",
    transport: "lean",
  });
  assert.equal(
    (parseConfig("listen: { socketMode: '0600' }", "c", {}, defaults).listen as { socketMode: number })
      .socketMode,
    0o600,
  );
});

Deno.test("listen.transport selects the ext_proc server: lean by default, or grpc-js", () => {
  assert.equal(parseConfig("listen: { transport: grpc-js }", "c", {}, defaults).listen.transport, "grpc-js");
  assert.equal(
    parseConfig("listen: { address: 127.0.0.1:9001, transport: lean }", "c", {}, defaults).listen.transport,
    "lean",
  );
  const [problem] = problems("listen:\n  transport: grpc\n");
  assert.match(problem, /^cfg\.yaml:2:\d+: listen\.transport: /);
  assert.match(problem, /lean/);
});

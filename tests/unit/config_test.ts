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

Deno.test("a config with only `routes: []` gets every default", () => {
  const config = parseConfig("routes: []\n", "cfg.yaml", {}, defaults);
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
  assert.equal(config.unmatchedRoutes, "pass");
  assert.deepEqual(config.defaultPolicies, []);
});

Deno.test("connection limits and the default policy timeout have defaults and parse durations", () => {
  assert.deepEqual(parseConfig("routes: []\n", "cfg.yaml", {}, defaults).connections, {
    maxConcurrentStreams: 1024,
    idleTimeoutMs: 3_600_000,
    keepaliveIntervalMs: 10_000,
    keepaliveTimeoutMs: 5_000,
  });
  assert.equal(parseConfig("routes: []\n", "cfg.yaml", {}, defaults).limits.policyTimeoutMs, 1000);
  const text =
    "listen: { maxConcurrentStreams: 8, idleTimeout: 2s }\nlimits: { policyTimeout: 250ms }\nroutes: []\n";
  const config = parseConfig(text, "cfg.yaml", {}, defaults);
  assert.equal(config.connections.maxConcurrentStreams, 8);
  assert.equal(config.connections.idleTimeoutMs, 2000);
  assert.equal(config.limits.policyTimeoutMs, 250);
  assert.deepEqual(problems("listen: { maxConcurrentStreams: 0 }\nroutes: []\n"), [
    "cfg.yaml:1:33: listen.maxConcurrentStreams: must be >= 1",
  ]);
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
    "cfg.yaml:8:18: routes[0].policies[0].version: is the number 1, not a version: versions are written vMAJOR or vMAJOR.MINOR.PATCH, e.g. v1 or v1.0.0",
    "cfg.yaml:9:18: routes[0].policies[0].timeout: must be a duration such as 250ms, 30s or 2m",
    'cfg.yaml:10:20: routes[0].policies[0].onFailure: must be one of "deny", "continue", "skipRemaining"',
    "cfg.yaml:11:11: routes[1].name: duplicate route name (also routes[0])",
    "cfg.yaml:12:5: routes[2].name: is required",
    "cfg.yaml:12:10: routes[2].nme: is not a known field (did you mean name?)",
  ]);
});

Deno.test("YAML syntax errors are reported with their position", () => {
  const [problem] = problems("routes:\n  - name: [unclosed\n");
  assert.match(problem, /^cfg\.yaml:\d+:\d+: /);
});

Deno.test("environment variables override sockets, log level and the interpreter", () => {
  const config = parseConfig("listen: { address: 127.0.0.1:9001 }\nroutes: []\n", "cfg.yaml", {
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
    () => parseConfig("routes: []", "cfg.yaml", { TOLLGATE_LOG_LEVEL: "loud" }, defaults),
    /TOLLGATE_LOG_LEVEL/,
  );
  assert.equal(
    parseConfig("routes: []", "c", { TOLLGATE_ADMIN_ADDRESS: "0.0.0.0:9002" }, defaults).admin.address,
    "0.0.0.0:9002",
  );
  assert.throws(
    () => parseConfig("routes: []", "c", { TOLLGATE_ADMIN_ADDRESS: "9002" }, defaults),
    /TOLLGATE_ADMIN_ADDRESS: must be host:port/,
  );
});

Deno.test("TCP listening and a custom socket mode", () => {
  assert.deepEqual(parseConfig("listen: { address: 0.0.0.0:9001 }\nroutes: []", "c", {}, defaults).listen, {
    kind: "tcp",
    address: "0.0.0.0:9001",
    transport: "lean",
  });
  assert.equal(
    (parseConfig("listen: { socketMode: '0600' }\nroutes: []", "c", {}, defaults).listen as {
      socketMode: number;
    })
      .socketMode,
    0o600,
  );
});

Deno.test("a file caught mid-write is an error: empty, only comments, or no routes key", () => {
  for (const text of ["", "\n\n", "# Tollgate config\n# routes follow\n", "---\n"]) {
    assert.deepEqual(problems(text), [
      "cfg.yaml: the config is empty (a file caught mid-write?); it needs at least `routes:`",
    ], JSON.stringify(text));
  }
  assert.deepEqual(problems("listen:\n  socket: /tmp/x.sock\n"), ["cfg.yaml:1:1: routes: is required"]);
  assert.deepEqual(problems("routes:\n"), ["cfg.yaml:1:8: routes: must be of type array"]);
  assert.deepEqual(parseConfig("routes: []\n", "cfg.yaml", {}, defaults).routes, []);
});

Deno.test("unmatchedRoutes and defaultPolicies: defaults, values, and deny with a default chain refused", () => {
  const config = parseConfig(
    "unmatchedRoutes: pass\ndefaultPolicies:\n  - { name: set-headers, version: v1, onFailure: continue }\nroutes: []\n",
    "cfg.yaml",
    {},
    defaults,
  );
  assert.equal(config.unmatchedRoutes, "pass");
  assert.equal(config.defaultPolicies[0].name, "set-headers");
  assert.equal(config.defaultPolicies[0].onFailure, "continue");
  assert.equal(parseConfig("unmatchedRoutes: deny\nroutes: []\n", "c", {}, defaults).unmatchedRoutes, "deny");
  assert.deepEqual(problems("unmatchedRoutes: block\nroutes: []\n"), [
    'cfg.yaml:1:18: unmatchedRoutes: must be one of "pass", "deny"',
  ]);
  assert.deepEqual(
    problems("unmatchedRoutes: deny\ndefaultPolicies:\n  - { name: set-headers, version: v1 }\nroutes: []\n"),
    [
      "cfg.yaml:3:3: defaultPolicies: would never run: unmatchedRoutes is deny (set unmatchedRoutes: pass to apply a default chain)",
    ],
  );
});

Deno.test("listen.transport selects the ext_proc server: lean (the default) or grpc-js", () => {
  assert.equal(parseConfig("routes: []", "c", {}, defaults).listen.transport, "lean");
  assert.equal(
    parseConfig("listen: { transport: grpc-js }\nroutes: []", "c", {}, defaults).listen.transport,
    "grpc-js",
  );
  assert.equal(
    parseConfig("listen: { address: 127.0.0.1:9001, transport: lean }\nroutes: []", "c", {}, defaults).listen
      .transport,
    "lean",
  );
  const [problem] = problems("listen:\n  transport: grpc\nroutes: []\n");
  assert.match(problem, /^cfg\.yaml:2:\d+: listen\.transport: /);
  assert.match(problem, /lean/);
});

Deno.test("quarantine and the access log: defaults, parsed durations, and errors at their path", () => {
  const plain = parseConfig("routes: []\n", "cfg.yaml", {}, defaults);
  assert.deepEqual(plain.quarantine, { failures: 20, windowMs: 60_000, affectsReadiness: false });
  assert.equal(plain.log.requests, false);
  const set = parseConfig(
    "routes: []\nlog: { requests: true }\nquarantine: { failures: 5, window: 2m, affectsReadiness: true }\n",
    "cfg.yaml",
    {},
    defaults,
  );
  assert.deepEqual(set.quarantine, { failures: 5, windowMs: 120_000, affectsReadiness: true });
  assert.equal(set.log.requests, true);
  const found = problems("routes: []\nquarantine: { failures: 0, window: soon, after: 1 }\n");
  assert.equal(found.length, 3, found.join("\n"));
  assert.match(found.join("\n"), /quarantine\.failures: .*>= 1/);
  assert.match(found.join("\n"), /quarantine\.window: /);
  assert.match(found.join("\n"), /quarantine.*after/);
});

Deno.test("tracing is off by default; `tracing.otlp.endpoint` turns it on with defaults", () => {
  assert.equal(parseConfig("routes: []\n", "cfg.yaml", {}, defaults).tracing, undefined);
  const config = parseConfig(
    "routes: []\ntracing:\n  otlp:\n    endpoint: http://otel-collector:4318\n",
    "cfg.yaml",
    {},
    defaults,
  );
  assert.deepEqual(config.tracing, {
    endpoint: "http://otel-collector:4318/v1/traces",
    protocol: "http/protobuf",
    headers: {},
    timeoutMs: 10_000,
    sampleRatio: 1,
    serviceName: "tollgate",
  });
  const full = parseConfig(
    [
      "routes: []",
      "tracing:",
      "  otlp:",
      "    endpoint: https://traces.example.com/otlp/v1/traces",
      "    headers: { x-api-key: k }",
      "    timeout: 2s",
      "  sampleRatio: 0.25",
      "  serviceName: edge-gateway",
    ].join("\n"),
    "cfg.yaml",
    {},
    defaults,
  );
  assert.equal(
    full.tracing?.endpoint,
    "https://traces.example.com/otlp/v1/traces",
    "a path is kept as it is",
  );
  assert.deepEqual(full.tracing?.headers, { "x-api-key": "k" });
  assert.equal(full.tracing?.timeoutMs, 2000);
  assert.equal(full.tracing?.sampleRatio, 0.25);
  assert.equal(full.tracing?.serviceName, "edge-gateway");
});

Deno.test("a tracing section that cannot be understood is rejected, naming the setting", () => {
  assert.match(problems("routes: []\ntracing: {}\n").join("\n"), /tracing\.otlp: is required/);
  assert.match(
    problems("routes: []\ntracing:\n  otlp: { endpoint: collector:4318 }\n").join("\n"),
    /tracing\.otlp\.endpoint: must match \^https\?:\/\//,
  );
  assert.match(
    problems("routes: []\ntracing:\n  otlp: { endpoint: 'http://collector:99999' }\n").join("\n"),
    /tracing\.otlp\.endpoint: is not a valid http or https URL/,
  );
  assert.match(
    problems("routes: []\ntracing:\n  otlp: { endpoint: http://c:4318, protocol: grpc }\n").join("\n"),
    /tracing\.otlp\.protocol: must be one of "http\/protobuf"/,
  );
  assert.match(
    problems("routes: []\ntracing:\n  otlp: { endpoint: http://c:4318 }\n  sampleRatio: 2\n").join("\n"),
    /tracing\.sampleRatio: must be <= 1/,
  );
});

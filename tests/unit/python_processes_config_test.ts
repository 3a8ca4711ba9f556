/** python.processes: how many executors, and the sockets they serve on. */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.ts";
import { formatProblem, ProblemsError } from "../../src/config/problem.ts";
import { allPythonSockets, pythonSockets } from "../../src/config/python_sockets.ts";

const defaults = { pythonInterpreter: "python3", pythonHome: "/opt/tollgate" };
const parse = (python: string) =>
  parseConfig(`python: ${python}\nroutes: []\n`, "cfg.yaml", {}, defaults).python;

Deno.test("python.processes defaults to one executor on python.socket itself", () => {
  const python = parse("{ socket: /run/t/python.sock }");
  assert.equal(python.processes, 1);
  assert.deepEqual(pythonSockets(python.socket, python.processes), ["/run/t/python.sock"]);
});

Deno.test("several executors serve on sockets derived from python.socket, beside it", () => {
  assert.deepEqual(pythonSockets("/run/t/python.sock", 3), [
    "/run/t/python-0.sock",
    "/run/t/python-1.sock",
    "/run/t/python-2.sock",
  ]);
  assert.deepEqual(pythonSockets("/run/t/executor", 2), ["/run/t/executor-0", "/run/t/executor-1"]);
  // The permission scope grants all of them, whatever the config says.
  const granted = allPythonSockets("/run/t/python.sock");
  for (let n = 1; n <= 8; n++) {
    for (const socket of pythonSockets("/run/t/python.sock", n)) assert.ok(granted.includes(socket), socket);
  }
});

Deno.test("python.processes outside 1..8 is a config error at its path", () => {
  for (const bad of ["0", "9", "1.5"]) {
    try {
      parse(`{ processes: ${bad} }`);
      assert.fail(`accepted processes: ${bad}`);
    } catch (error) {
      assert.ok(error instanceof ProblemsError, String(error));
      assert.ok(error.problems.some((p) => formatProblem(p).includes("python.processes")), error.message);
    }
  }
});

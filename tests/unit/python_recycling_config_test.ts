/** The executor's recycling settings: python.maxMemory (a size) and python.maxCallsPerProcess. */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.ts";
import { formatProblem, ProblemsError } from "../../src/config/problem.ts";
import { parseSize } from "../../src/config/size.ts";

const defaults = { pythonInterpreter: "python3", pythonHome: "/opt/tollgate" };
const parse = (python: string) =>
  parseConfig(`python: ${python}\nroutes: []\n`, "cfg.yaml", {}, defaults).python;

Deno.test("recycling is off unless set", () => {
  const python = parse("{}");
  assert.equal(python.maxMemoryBytes, undefined);
  assert.equal(python.maxCallsPerProcess, undefined);
});

Deno.test("python.maxMemory takes binary and decimal units or a number of bytes", () => {
  assert.equal(parse("{ maxMemory: 512MiB }").maxMemoryBytes, 512 * 1024 * 1024);
  assert.equal(parse("{ maxMemory: 1.5GiB }").maxMemoryBytes, 1.5 * 1024 ** 3);
  assert.equal(parse("{ maxMemory: 300MB }").maxMemoryBytes, 300_000_000);
  assert.equal(parse("{ maxMemory: 1048576 }").maxMemoryBytes, 1048576);
  assert.equal(parse("{ maxCallsPerProcess: 100000 }").maxCallsPerProcess, 100000);
  assert.throws(() => parseSize("12 parsecs"), /invalid size "12 parsecs"/);
});

Deno.test("a bad recycling setting is a config error at its path", () => {
  for (
    const [python, path] of [["{ maxMemory: 512M }", "maxMemory"], [
      "{ maxCallsPerProcess: 0 }",
      "maxCallsPerProcess",
    ]]
  ) {
    try {
      parse(python);
      assert.fail(`accepted ${python}`);
    } catch (error) {
      assert.ok(error instanceof ProblemsError, String(error));
      assert.ok(error.problems.some((p) => formatProblem(p).includes(`python.${path}`)), error.message);
    }
  }
});

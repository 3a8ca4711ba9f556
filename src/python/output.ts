/**
 * Re-logs the Python executor's output under the "tollgate.python.executor" category.
 *
 * Only stderr is the executor's log channel: its JSON records keep their level and fields.
 * Policy code cannot write there (python/executor/output.py): what it prints arrives as a
 * "policy output" record naming the policy, and is logged as that policy's text, at info,
 * whatever the text says. Stdout carries what escaped the executor's writers (fd-level
 * writes of C extensions or child processes) and is logged verbatim as text, never parsed.
 */
import { getLogger, type LogLevel } from "@logtape/logtape";

const childLog = getLogger(["tollgate", "python", "executor"]);

/** The message of the executor's records of printed text. */
const POLICY_OUTPUT = "policy output";

const LEVELS: Record<string, LogLevel> = {
  debug: "debug",
  info: "info",
  warning: "warning",
  error: "error",
  critical: "fatal",
};

/** Text as a LogTape message: braces escaped, so the executor's text is never read as placeholders. */
const literal = (text: string) => text.replaceAll("{", "{{").replaceAll("}", "}}");

function logText(text: string, stream: "stdout" | "stderr"): void {
  childLog.info("executor {stream}: {text}", { stream, text });
}

function parseRecord(line: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(line);
    return value && typeof value === "object" && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** One line of the executor's stderr: its own log record (or text it wrote before logging began). */
function relogStderr(line: string): void {
  const record = parseRecord(line);
  if (!record) return logText(line, "stderr");
  const { level, msg, time: _time, logger, ...fields } = record;
  if (msg === POLICY_OUTPUT && typeof fields.text === "string") {
    const { policy, text, stream } = fields;
    if (policy) childLog.info("policy {policy} printed: {text}", { policy: String(policy), text, stream });
    else childLog.info("the executor printed: {text}", { text, stream }); // e.g. a warning outside any call
    return;
  }
  childLog[LEVELS[String(level)] ?? "info"](template(String(msg), fields), {
    ...renamed(fields),
    pythonLogger: logger,
  });
}

/** The record's message naming its policy and error (when it has them), so a text line is complete. */
function template(msg: string, fields: Record<string, unknown>): string {
  let text = literal(msg);
  if (typeof fields.policy === "string" && !msg.includes(fields.policy)) text = `policy {policy}: ${text}`;
  if (fields.error !== undefined && fields.error !== null) text += ": {error}";
  return text;
}

/** The executor's snake_case request id under the engine's name for it. */
function renamed(fields: Record<string, unknown>): Record<string, unknown> {
  if (!("request_id" in fields)) return fields;
  const { request_id: requestId, ...rest } = fields;
  return { ...rest, requestId };
}

/** Reads `stream` line by line until it ends, re-logging each line by the rules above. */
export async function relogExecutorOutput(
  stream: ReadableStream<Uint8Array>,
  name: "stdout" | "stderr",
): Promise<void> {
  const emit = (line: string) => {
    if (!line.trim()) return;
    if (name === "stderr") relogStderr(line);
    else logText(line, "stdout");
  };
  let rest = "";
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      lines.forEach(emit);
    }
  } catch {
    // the child went away mid-line
  }
  emit(rest);
}

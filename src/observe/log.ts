/**
 * Logging: LogTape, one line per record on stderr, JSON lines in production (`log.format:
 * json`, the default) or readable text. Categories start with "tollgate"; the Python
 * executor's lines appear under "tollgate.python".
 */
import {
  configure,
  getJsonLinesFormatter,
  getTextFormatter,
  type LogLevel as LogTapeLevel,
  type LogRecord,
  reset,
} from "@logtape/logtape";
import type { LogLevel } from "../config/types.ts";

const encoder = new TextEncoder();

function writeLine(text: string): void {
  const bytes = encoder.encode(text.endsWith("\n") ? text : `${text}\n`);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/** Configures logging for the whole process; safe to call again (e.g. after a config reload). */
export async function configureLogging(level: LogLevel, format: "json" | "text"): Promise<void> {
  const formatter = format === "json" ? getJsonLinesFormatter({ properties: "flatten" }) : getTextFormatter();
  await reset();
  await configure({
    sinks: { stderr: (record: LogRecord) => writeLine(formatter(record)) },
    loggers: [
      { category: ["tollgate"], lowestLevel: level as LogTapeLevel, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

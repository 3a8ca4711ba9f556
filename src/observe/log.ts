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
  type TextFormatter,
} from "@logtape/logtape";
import type { LogLevel } from "../config/types.ts";

const encoder = new TextEncoder();

function writeLine(text: string): void {
  const bytes = encoder.encode(text.endsWith("\n") ? text : `${text}\n`);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/** Control characters (line breaks included) as escapes: a value can never start a line of its own. */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const escapeControls = (text: string) =>
  text.replace(
    CONTROL,
    (c) => c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );

/** A property value on a text line: bare when it is a plain word, else JSON-quoted. */
function shown(value: unknown): string {
  if (typeof value === "string") {
    return /^[^\s"=]+$/.test(value) ? escapeControls(value) : JSON.stringify(value);
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  return escapeControls(JSON.stringify(value) ?? String(value));
}

/** The names of the properties a message template interpolates (`{name}`). */
function placeholders(template: LogRecord["rawMessage"]): Set<string> {
  const names = new Set<string>();
  const text = typeof template === "string" ? template : template.join("");
  for (const match of text.matchAll(/\{([^{}]+)\}/g)) names.add(match[1]);
  return names;
}

/**
 * The readable format: the message, then each property the message does not already show
 * as `key=value` (so the request id, route, policy and reason are on the line). A string
 * array property (a rejected config's problems) follows as indented lines, one per item.
 */
export function textFormatter(): TextFormatter {
  return getTextFormatter({
    timestamp: "date-time-tz",
    value: (value, inspect) => typeof value === "string" ? escapeControls(value) : inspect(value),
    format: ({ timestamp, level, category, message, record }) => {
      const inMessage = placeholders(record.rawMessage);
      const fields: string[] = [];
      const listed: string[] = [];
      for (const [key, value] of Object.entries(record.properties)) {
        if (Array.isArray(value) && value.every((item) => typeof item === "string")) {
          listed.push(...value.map((item) => `  ${escapeControls(item)}`));
        } else if (!inMessage.has(key) && value !== undefined) {
          fields.push(`${key}=${shown(value)}`);
        }
      }
      const head = `${timestamp} [${level}] ${category}: ${message}${
        fields.length ? ` ${fields.join(" ")}` : ""
      }`;
      return [head, ...listed].join("\n");
    },
  });
}

/** Configures logging for the whole process; safe to call again (e.g. after a config reload). */
export async function configureLogging(level: LogLevel, format: "json" | "text"): Promise<void> {
  const formatter = format === "json" ? getJsonLinesFormatter({ properties: "flatten" }) : textFormatter();
  await reset();
  await configure({
    sinks: { stderr: (record: LogRecord) => writeLine(formatter(record)) },
    loggers: [
      { category: ["tollgate"], lowestLevel: level as LogTapeLevel, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

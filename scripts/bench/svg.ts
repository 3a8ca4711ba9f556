/**
 * The latency chart of docs/benchmarks.md: p50, p90 and p99 at the fixed rate, one group
 * of bars per scenario. Plain SVG text, no dependencies.
 */
import type { Summary } from "./report.ts";

const SERIES = [
  { key: "p50", color: "#4e79a7" },
  { key: "p90", color: "#f28e2b" },
  { key: "p99", color: "#e15759" },
] as const;

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A "nice" axis maximum and step above `max` (1, 2 or 5 times a power of ten). */
function axis(max: number): { top: number; step: number } {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

export function latencyChart(summaries: readonly Summary[], title: string): string {
  const width = 860;
  const height = 420;
  const left = 60;
  const right = 20;
  const top = 50;
  const bottom = 70;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const { top: yMax, step } = axis(Math.max(...summaries.map((s) => s.p99)));
  const y = (v: number) => top + plotH - (v / yMax) * plotH;
  const group = plotW / summaries.length;
  const bar = Math.min(28, (group * 0.8) / SERIES.length);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escape(title)}</text>`,
  ];
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const label = Number(v.toPrecision(6));
    out.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${label}</text>`,
    );
  }
  out.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">latency (ms)</text>`,
  );
  summaries.forEach((s, i) => {
    const x0 = left + i * group + (group - bar * SERIES.length) / 2;
    SERIES.forEach((series, j) => {
      const value = s[series.key];
      const x = x0 + j * bar;
      out.push(
        `<rect x="${x}" y="${y(value)}" width="${bar - 2}" height="${top + plotH - y(value)}" ` +
          `fill="${series.color}"><title>${escape(s.name)} ${series.key}: ${
            value.toFixed(3)
          } ms</title></rect>`,
      );
    });
    out.push(
      `<text x="${left + i * group + group / 2}" y="${top + plotH + 18}" text-anchor="middle">` +
        `${escape(s.name)}</text>`,
    );
  });
  SERIES.forEach((series, j) => {
    const x = left + j * 70;
    out.push(
      `<rect x="${x}" y="${height - 28}" width="12" height="12" fill="${series.color}"/>`,
      `<text x="${x + 16}" y="${height - 18}">${series.key}</text>`,
    );
  });
  out.push(`<line x1="${left}" x2="${width - right}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>`, "</svg>");
  return out.join("\n") + "\n";
}

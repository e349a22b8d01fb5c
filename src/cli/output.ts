// How a command prints what it found: a plain-text table for people, `--json` (one JSON document) and
// `--csv` (RFC 4180: comma-separated, CRLF line ends, a field quoted when it holds a comma, a quote or a
// line break, quotes doubled) for programs. Amounts are printed twice, in token units and in base
// units, and times as ISO-8601 UTC; the command decides the columns, this file only writes them.
import { formatUnits } from "ethers";

export type Cell = string | number | bigint | boolean | null;
export interface Column {
  /** The CSV header and JSON key. */
  key: string;
  /** The table header (defaults to key). */
  title?: string;
  /** Right-aligned in the table (numbers, amounts). */
  right?: boolean;
}

/** `1700000000` → "2023-11-14T22:13:20Z"; null / 0 → null. */
export function isoTime(seconds: number | bigint | null | undefined): string | null {
  if (seconds === null || seconds === undefined || seconds === 0 || seconds === 0n) return null;
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

/** Base units → decimal token units, without trailing zeros ("9.99", "10"). */
export function tokenUnits(amount: bigint, decimals: number): string {
  const text = formatUnits(amount, decimals);
  return text.endsWith(".0") ? text.slice(0, -2) : text;
}

function text(cell: Cell): string {
  if (cell === null) return "";
  return typeof cell === "bigint" ? cell.toString() : String(cell);
}

/** RFC 4180: one header line, then one line per row, each ended by CRLF. */
export function toCsv(columns: readonly Column[], rows: readonly Record<string, Cell>[]): string {
  const field = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value);
  const line = (cells: string[]) => cells.map(field).join(",") + "\r\n";
  return line(columns.map((c) => c.key)) + rows.map((r) => line(columns.map((c) => text(r[c.key] ?? null)))).join("");
}

/** A table for a terminal: a header, a rule, aligned columns; "(none)" when there are no rows. */
export function toTable(columns: readonly Column[], rows: readonly Record<string, Cell>[]): string {
  if (rows.length === 0) return "(none)\n";
  const titles = columns.map((c) => c.title ?? c.key);
  const cells = rows.map((r) => columns.map((c) => text(r[c.key] ?? null) || "-"));
  const widths = titles.map((t, i) => Math.max(t.length, ...cells.map((row) => row[i]!.length)));
  const format = (row: string[]) => row.map((cell, i) => (columns[i]!.right ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  return [format(titles), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(format)].join("\n") + "\n";
}

/** JSON with bigints as decimal strings (amounts in base units never lose precision). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) + "\n";
}

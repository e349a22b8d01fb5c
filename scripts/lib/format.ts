// Pure presentation helpers for scripts: amounts, dates, durations and plain-text tables.
// No chain access and no billing rules here: callers pass in what the contracts reported.

const SECONDS_PER_DAY = 86_400n;

/** `units` token base units as a decimal with at least two decimals: 9990000n, 6, "tUSDC" → "9.99 tUSDC". */
export function formatAmount(units: bigint, decimals: number, symbol: string): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const scale = 10n ** BigInt(decimals);
  const whole = abs / scale;
  let fraction = decimals > 0 ? (abs % scale).toString().padStart(decimals, "0") : "";
  while (fraction.length > 2 && fraction.endsWith("0")) fraction = fraction.slice(0, -1);
  fraction = fraction.padEnd(2, "0");
  return `${negative ? "-" : ""}${whole.toString()}.${fraction} ${symbol}`;
}

/** Unix seconds as a UTC calendar date, YYYY-MM-DD. */
export function formatDate(unixSeconds: bigint | number): string {
  return new Date(Number(unixSeconds) * 1000).toISOString().slice(0, 10);
}

/** A span of seconds in days (and hours, when it is not a whole number of days): "21 days", "1 day 6 h". */
export function formatDuration(seconds: bigint | number): string {
  const total = BigInt(seconds);
  const days = total / SECONDS_PER_DAY;
  const hours = (total % SECONDS_PER_DAY) / 3_600n;
  const dayText = `${days.toString()} day${days === 1n ? "" : "s"}`;
  return hours === 0n ? dayText : `${dayText} ${hours.toString()} h`;
}

/** A short form of an address for humans: 0x5FbDB2…0aa3. */
export function shortAddress(address: string): string {
  return `${address.slice(0, 8)}…${address.slice(-4)}`;
}

export type Align = "left" | "right";

/** Pads cells into columns separated by two spaces; `align` per column, left by default. */
export function formatRow(cells: readonly string[], widths: readonly number[], align: readonly Align[] = []): string {
  return cells
    .map((cell, i) => {
      const width = widths[i] ?? cell.length;
      return align[i] === "right" ? cell.padStart(width) : cell.padEnd(width);
    })
    .join("  ")
    .trimEnd();
}

/** A plain-text table: a header row, a rule, then the rows, each column as wide as its widest cell. */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[] = [],
): string[] {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? "").length)));
  return [
    formatRow(headers, widths, align),
    formatRow(
      widths.map((w) => "─".repeat(w)),
      widths,
    ),
    ...rows.map((row) => formatRow(row, widths, align)),
  ];
}

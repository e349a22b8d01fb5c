// What every benchmark shares around its figures: the scale it runs at (`--scale X`, else
// RECUR_BENCH_SCALE, else 1) and its results file, which keeps one run per scale.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

/** The scale from `--scale X` (or `--scale=X`), else RECUR_BENCH_SCALE, else 1, within [min, max]
 * (whole numbers only when `integer`); anything else stops the benchmark with one line. */
export function benchScale(argv: string[], env: string | undefined, bounds: { min: number; max: number; integer: boolean }): number {
  const i = argv.findIndex((a) => a === "--scale" || a.startsWith("--scale="));
  const raw = i < 0 ? env : argv[i]!.startsWith("--scale=") ? argv[i]!.slice("--scale=".length) : argv[i + 1];
  if (raw === undefined || raw === "") return 1;
  const n = Number(raw);
  if (!(bounds.integer ? /^\d+$/ : /^\d+(\.\d+)?$/).test(raw) || n < bounds.min || n > bounds.max) {
    const kind = bounds.integer ? "an integer" : "a number";
    console.error(`bench: --scale (RECUR_BENCH_SCALE): expected ${kind} in [${bounds.min}, ${bounds.max}], got ${JSON.stringify(raw)}`);
    process.exit(1);
  }
  return n;
}

/** Writes `results` under `byScale[scale]` of bench/results/`name`.json, keeping the other scales' runs.
 * `legacy` turns a file from before --scale (one run at its top level) into the runs it held. */
export function writeResults(name: string, scale: number, results: Record<string, unknown>, legacy?: (previous: Record<string, unknown>) => Record<string, unknown> | undefined): string {
  const dir = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
  const byScale = ((previous.byScale as Record<string, unknown> | undefined) ?? legacy?.(previous) ?? {}) as Record<string, unknown>;
  byScale[String(scale)] = { scale, ...results };
  writeFileSync(file, JSON.stringify({ byScale }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
  return path.relative(process.cwd(), file);
}

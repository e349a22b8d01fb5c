// How the reports read their options and write their values: dates, refs, periods, USD amounts.
import { configError } from "../errors.ts";
import { tokenUnits } from "../cli/output.ts";

/** USD prices carry 8 decimals ($9.99 is 999_000_000: contracts/libraries/PriceMath.sol). */
export const USD_DECIMALS = 8;
export const usdUnits = (amount: bigint): string => tokenUnits(amount, USD_DECIMALS);

const DAY = 86_400;

/** "2027-01-01" (UTC midnight) or a full ISO-8601 time ("2027-01-01T12:00:00Z", "…+02:00") → unix
 * seconds; anything else throws the one line naming the option. */
export function parseTime(option: string, raw: string): number {
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw);
  const full = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(raw);
  const ms = date !== null ? Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3])) : full ? Date.parse(raw) : Number.NaN;
  const valid = Number.isFinite(ms) && (date === null || new Date(ms).toISOString().startsWith(raw));
  if (!valid) throw configError(option, 'a date "YYYY-MM-DD" (UTC) or an ISO-8601 time "2027-01-01T00:00:00Z"', raw);
  return Math.floor(ms / 1000);
}

/** A bytes32 ref as text when it is a right-padded printable-ASCII string, else as hex; null for zero. */
export function refText(ref: string | null): string | null {
  if (ref === null || /^0x0*$/.test(ref)) return null;
  const hex = ref.slice(2).replace(/(00)+$/, "");
  const bytes = hex.match(/../g) ?? [];
  const codes = bytes.map((b) => Number.parseInt(b, 16));
  if (hex.length % 2 === 0 && codes.length > 0 && codes.every((c) => c >= 0x20 && c <= 0x7e)) return String.fromCharCode(...codes);
  return ref.toLowerCase();
}

/** Whether the merchant's `--ref` names this ref: its text or its hex (any case). */
export function refMatches(ref: string | null, wanted: string): boolean {
  if (ref === null) return false;
  return ref.toLowerCase() === wanted.toLowerCase() || refText(ref) === wanted;
}

/** 2592000 → "30 days", 3600 → "1 hour", 90 → "90 s". */
export function duration(seconds: number): string {
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (seconds === 0) return "none";
  if (seconds % DAY === 0) return unit(seconds / DAY, "day");
  if (seconds % 3600 === 0) return unit(seconds / 3600, "hour");
  if (seconds % 60 === 0) return unit(seconds / 60, "minute");
  return `${seconds} s`;
}

/** An address option (`--plan`, `--owner`, `--subscriber`), lowercase; throws the one line otherwise. */
export function parseAddress(option: string, raw: string, what: string): string {
  if (!/^0x[0-9a-fA-F]{40}$/.test(raw)) throw configError(option, `${what}, a 0x-prefixed 20-byte address`, raw);
  return raw.toLowerCase();
}

/** A whole number option in [min, max]. */
export function parseInteger(option: string, raw: string, min: number, max: number): number {
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw configError(option, `a whole number in [${min}, ${max}]`, raw);
  return value;
}

// A plan's terms as a merchant writes them (token units, durations, percentages) → the `PlanTerms`
// struct of contracts/interfaces/PlanTypes.sol, checked against the same bounds as
// contracts/libraries/PlanTermsLib.sol before anything is sent. Pure: the caller reads the chain (the
// token's and the feed's decimals) and passes what it read.
import { getAddress, isAddress, ZeroAddress } from "ethers";

import { BILLING_FIXED, BILLING_METERED } from "../chain/abi.ts";
import { parseDuration } from "../cli/config.ts";
import { configError } from "../errors.ts";
import { tokenUnits } from "../cli/output.ts";
import { USD_DECIMALS } from "../reports/format.ts";

// --- the bounds of PlanTermsLib.sol and PriceMath.sol -------------------------------------------
export const MAX_PRICE = 2n ** 96n - 1n;
export const MIN_PERIOD = 3_600;
export const MAX_PERIOD = 3_660 * 86_400;
export const MAX_TRIAL = 366 * 86_400;
export const MIN_GRACE_PERIOD = 15 * 60;
export const MAX_KEEPER_FEE_BPS = 1_000;
export const MIN_PRICE_AGE = 60;
export const MAX_PRICE_AGE = 7 * 86_400;
export const MAX_ALLOWANCE_BUFFER_BPS = 5_000;
/** The token's and the feed's decimals may add up to at most this. */
export const MAX_DECIMALS_SUM = 36;


/** The `PlanTerms` struct, ready for `createPlan(terms)`; addresses lowercase. */
export interface PlanTerms {
  token: string;
  payee: string;
  price: bigint;
  period: number;
  trialPeriod: number;
  gracePeriod: number;
  billingMode: number;
  keeperRestricted: boolean;
  keeperFeeBps: number;
  perCycleCap: bigint;
  priceFeed: string;
  maxPriceAge: number;
  allowanceBufferBps: number;
  freeCredits: bigint;
}

/** Every term's option, by its flag name (also the key in a --file terms.json). */
export const TERM_OPTIONS = {
  token: { type: "string" },
  payee: { type: "string" },
  price: { type: "string" },
  period: { type: "string" },
  trial: { type: "string" },
  grace: { type: "string" },
  "price-usd": { type: "string" },
  feed: { type: "string" },
  "max-price-age": { type: "string" },
  "allowance-buffer": { type: "string" },
  metered: { type: "boolean" },
  cap: { type: "string" },
  "free-credits": { type: "string" },
  "keeper-fee": { type: "string" },
  "keeper-restricted": { type: "boolean" },
} as const;
export type TermName = keyof typeof TERM_OPTIONS;

/** The terms as given: strings for values, booleans for switches; undefined when not given. */
export type TermsInput = Partial<Record<TermName, string | boolean>>;

/** The terms of a --file (a JSON object keyed by the flag names), then the flags over them. */
export function mergeTermsInput(fileName: string | null, fileText: string | null, flags: TermsInput): TermsInput {
  const merged: TermsInput = {};
  if (fileText !== null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fileText);
    } catch {
      throw configError("--file", "a JSON object of terms keyed by the flags' names", fileName ?? "");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw configError("--file", "a JSON object of terms keyed by the flags' names", fileName ?? "");
    }
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (!(key in TERM_OPTIONS)) throw configError("--file", `keys among ${Object.keys(TERM_OPTIONS).join(", ")}`, key);
      const name = key as TermName;
      if (TERM_OPTIONS[name].type === "boolean") {
        if (typeof value !== "boolean") throw configError(`--${name}`, "true or false (in --file)", JSON.stringify(value));
        merged[name] = value;
      } else {
        if (typeof value !== "string" && typeof value !== "number") throw configError(`--${name}`, "a string or a number (in --file)", JSON.stringify(value));
        merged[name] = String(value);
      }
    }
  }
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) merged[key as TermName] = value;
  return merged;
}

/** "1h", "3660d", "2591999s": the largest unit that divides `seconds` exactly. */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return "0s";
  for (const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60]] as const) if (seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}

/** A decimal in units of 10^-decimals → an integer; null when it is not one or has more decimals. */
export function parseUnits(raw: string, decimals: number): bigint | null {
  const match = /^(\d{1,78})(?:\.(\d+))?$/.exec(raw.trim());
  if (match === null) return null;
  const fraction = match[2] ?? "";
  if (fraction.length > decimals && /[1-9]/.test(fraction.slice(decimals))) return null;
  return BigInt(match[1]!) * 10n ** BigInt(decimals) + BigInt(fraction.slice(0, decimals).padEnd(decimals, "0") || "0");
}

/** "0.5%" → 50 basis points; null when it is not a percentage or is finer than 1 bps (0.01%). */
export function parsePercent(raw: string): number | null {
  const match = /^(\d{1,5})(?:\.(\d{1,2}))?%$/.exec(raw.trim());
  if (match === null) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? "").padEnd(2, "0"));
}

/** 50 → "0.5%". */
export function formatBps(bps: number): string {
  const whole = Math.floor(bps / 100);
  const fraction = String(bps % 100).padStart(2, "0").replace(/0+$/, "");
  return `${whole}${fraction === "" ? "" : `.${fraction}`}%`;
}

function text(input: TermsInput, name: TermName): string | undefined {
  const value = input[name];
  if (value === undefined || value === false) return undefined;
  return value === true ? "true" : value;
}

/** `raw` as a lowercase address that is not the zero address; else the one line naming `name`. */
export function nonZeroAddress(name: string, raw: unknown, what: string): string {
  if (typeof raw !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(raw) || !isAddress(raw)) throw configError(name, what, raw === undefined ? undefined : String(raw));
  const lower = getAddress(raw).toLowerCase();
  if (lower === ZeroAddress) throw configError(name, `${what}, not the zero address`, raw);
  return lower;
}

function durationTerm(name: TermName, raw: string, min: number, max: number, maxText = formatDuration(max)): number {
  const seconds = parseDuration(raw);
  if (seconds === null || seconds < min || seconds > max) {
    throw configError(`--${name}`, `a duration from ${formatDuration(min)} to ${maxText}, like 90s, 10m, 6h, 30d`, raw);
  }
  return seconds;
}

function amountTerm(name: TermName, raw: string, decimals: number, min: bigint, unit: string): bigint {
  const value = parseUnits(raw, decimals);
  const max = tokenUnits(MAX_PRICE, decimals);
  if (value === null || value < min || value > MAX_PRICE) {
    const low = min === 0n ? "0" : tokenUnits(min, decimals);
    throw configError(`--${name}`, `an amount from ${low} to ${max} ${unit} with at most ${decimals} decimals`, raw);
  }
  return value;
}

function percentTerm(name: TermName, raw: string, maxBps: number): number {
  const bps = parsePercent(raw);
  if (bps === null || bps > maxBps) throw configError(`--${name}`, `a percentage from 0% to ${formatBps(maxBps)} in steps of 0.01% (1 bps), e.g. "0.5%"`, raw);
  return bps;
}

/** The token and the feed the terms name, resolved before the chain is read: `token` is an address or
 * a symbol of RECUR_TOKENS. */
export function resolveTermsAddresses(input: TermsInput, tokens: ReadonlyMap<string, string>): { token: string; feed: string | null } {
  const tokenRaw = text(input, "token");
  const known = [...tokens.keys()].join(", ");
  const expected = `a token address (0x…) or a symbol of RECUR_TOKENS${known === "" ? "" : ` (${known})`}`;
  if (tokenRaw === undefined) throw configError("--token", expected, undefined);
  const token = /^0x/i.test(tokenRaw) ? nonZeroAddress("--token", tokenRaw, expected) : [...tokens].find(([symbol]) => symbol.toUpperCase() === tokenRaw.toUpperCase())?.[1];
  if (token === undefined) throw configError("--token", expected, tokenRaw);
  const feedRaw = text(input, "feed");
  return { token, feed: feedRaw === undefined ? null : nonZeroAddress("--feed", feedRaw, "the price feed's 0x-prefixed 20-byte address") };
}

/** What was read from the chain for the terms. */
export interface TermsChain {
  /** The signer: the payee unless --payee names another. */
  signer: string;
  /** The token's decimals(); null when it did not answer. */
  tokenDecimals: number | null;
  /** The feed's decimals() (USD pricing only); null when it did not answer or there is no feed. */
  feedDecimals: number | null;
}

/** Checks every term against PlanTermsLib's bounds and builds the struct; the first bad term throws one
 * line naming it, its value and what is allowed. */
export function buildTerms(input: TermsInput, chain: TermsChain, tokens: ReadonlyMap<string, string>): PlanTerms {
  const { token, feed } = resolveTermsAddresses(input, tokens);
  const payeeRaw = text(input, "payee");
  const payee = payeeRaw === undefined ? chain.signer.toLowerCase() : nonZeroAddress("--payee", payeeRaw, "the payee's 0x-prefixed 20-byte address");
  if (payee === token) throw configError("--payee", "an address other than the token contract", payeeRaw ?? payee);
  if (chain.tokenDecimals === null) throw configError("--token", "an ERC-20 contract that answers decimals()", text(input, "token"));
  const decimals = chain.tokenDecimals;

  const periodRaw = text(input, "period");
  if (periodRaw === undefined) throw configError("--period", `a duration from ${formatDuration(MIN_PERIOD)} to ${formatDuration(MAX_PERIOD)} (like 30d)`, undefined);
  const period = durationTerm("period", periodRaw, MIN_PERIOD, MAX_PERIOD);
  const graceRaw = text(input, "grace");
  const graceMax = `${formatDuration(period - 1)} (the period ${formatDuration(period)} less 1s)`;
  if (graceRaw === undefined) throw configError("--grace", `a duration from ${formatDuration(MIN_GRACE_PERIOD)} to ${graceMax}`, undefined);
  const gracePeriod = durationTerm("grace", graceRaw, MIN_GRACE_PERIOD, period - 1, graceMax);

  const metered = input.metered === true || input.metered === "true";
  const terms: PlanTerms = {
    token, payee, price: 0n, period, trialPeriod: 0, gracePeriod, billingMode: metered ? BILLING_METERED : BILLING_FIXED,
    keeperRestricted: false, keeperFeeBps: 0, perCycleCap: 0n, priceFeed: ZeroAddress, maxPriceAge: 0, allowanceBufferBps: 0, freeCredits: 0n,
  };
  const notApplicable = (names: readonly TermName[], why: string) => {
    for (const name of names) {
      const value = text(input, name);
      if (value !== undefined) throw configError(`--${name}`, `nothing: it does not apply to ${why}`, value);
    }
  };

  if (metered) {
    notApplicable(["price", "price-usd", "feed", "max-price-age", "allowance-buffer", "trial", "keeper-fee", "keeper-restricted"], "a metered plan");
    const capRaw = text(input, "cap");
    if (capRaw === undefined) throw configError("--cap", `the most one cycle may bill, from ${tokenUnits(1n, decimals)} to ${tokenUnits(MAX_PRICE, decimals)} token units`, undefined);
    terms.perCycleCap = amountTerm("cap", capRaw, decimals, 1n, "token units");
    const creditsRaw = text(input, "free-credits");
    if (creditsRaw !== undefined) terms.freeCredits = amountTerm("free-credits", creditsRaw, decimals, 0n, "token units");
    return terms;
  }

  notApplicable(["cap", "free-credits"], "a fixed plan (only with --metered)");
  const trialRaw = text(input, "trial");
  if (trialRaw !== undefined) terms.trialPeriod = durationTerm("trial", trialRaw, 0, MAX_TRIAL);
  const feeRaw = text(input, "keeper-fee");
  if (feeRaw !== undefined) terms.keeperFeeBps = percentTerm("keeper-fee", feeRaw, MAX_KEEPER_FEE_BPS);
  terms.keeperRestricted = input["keeper-restricted"] === true || input["keeper-restricted"] === "true";

  const priceRaw = text(input, "price");
  const usdRaw = text(input, "price-usd");
  if ((priceRaw === undefined) === (usdRaw === undefined)) {
    throw configError("--price", "either --price (token units) or --price-usd with --feed, not both and not neither", priceRaw === undefined ? undefined : `${priceRaw} and --price-usd ${usdRaw}`);
  }
  if (priceRaw !== undefined) {
    notApplicable(["feed", "max-price-age", "allowance-buffer"], "a plan priced in token units (only with --price-usd)");
    terms.price = amountTerm("price", priceRaw, decimals, 1n, "token units");
    return terms;
  }
  terms.price = amountTerm("price-usd", usdRaw!, USD_DECIMALS, 1n, "USD");
  if (feed === null) throw configError("--feed", "the USD price feed's address (with --price-usd)", undefined);
  terms.priceFeed = feed;
  const ageRaw = text(input, "max-price-age");
  if (ageRaw === undefined) throw configError("--max-price-age", `a duration from ${formatDuration(MIN_PRICE_AGE)} to ${formatDuration(MAX_PRICE_AGE)} (with --price-usd)`, undefined);
  terms.maxPriceAge = durationTerm("max-price-age", ageRaw, MIN_PRICE_AGE, MAX_PRICE_AGE);
  const bufferRaw = text(input, "allowance-buffer");
  if (bufferRaw !== undefined) terms.allowanceBufferBps = percentTerm("allowance-buffer", bufferRaw, MAX_ALLOWANCE_BUFFER_BPS);
  if (chain.feedDecimals === null) throw configError("--feed", "a price feed that answers decimals()", feed);
  if (decimals + chain.feedDecimals > MAX_DECIMALS_SUM) {
    throw configError("--feed", `a feed whose decimals plus the token's (${decimals}) are at most ${MAX_DECIMALS_SUM}`, `${feed} (${chain.feedDecimals} decimals)`);
  }
  return terms;
}

/** The terms in a merchant's units, for the confirmation and the report. */
export function describeTerms(terms: PlanTerms, decimals: number, symbol: string): Record<string, string> {
  const out: Record<string, string> = {
    token: `${terms.token}${symbol === "" ? "" : ` (${symbol})`}`,
    payee: terms.payee,
    billing: terms.billingMode === BILLING_METERED ? "metered (usage billed after each cycle)" : "fixed price, in advance",
  };
  if (terms.billingMode === BILLING_FIXED) {
    out.price = terms.priceFeed === ZeroAddress ? `${tokenUnits(terms.price, decimals)} ${symbol || "token units"}` : `${tokenUnits(terms.price, USD_DECIMALS)} USD`;
  }
  out.period = formatDuration(terms.period);
  if (terms.billingMode === BILLING_FIXED) out.trial = terms.trialPeriod === 0 ? "none" : formatDuration(terms.trialPeriod);
  out.grace = formatDuration(terms.gracePeriod);
  if (terms.priceFeed !== ZeroAddress) {
    out.feed = terms.priceFeed;
    out.maxPriceAge = formatDuration(terms.maxPriceAge);
    out.allowanceBuffer = formatBps(terms.allowanceBufferBps);
  }
  if (terms.billingMode === BILLING_METERED) {
    out.perCycleCap = `${tokenUnits(terms.perCycleCap, decimals)} ${symbol || "token units"}`;
    out.freeCredits = `${tokenUnits(terms.freeCredits, decimals)} ${symbol || "token units"}`;
  } else {
    out.keeperFee = formatBps(terms.keeperFeeBps);
    out.keeperRestricted = terms.keeperRestricted ? "yes (only the owner and its keepers charge)" : "no (anyone may charge)";
  }
  return out;
}

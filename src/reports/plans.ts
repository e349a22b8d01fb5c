// `recur plans`: each plan's terms in human units, its status, and its subscriptions by status.
import { BILLING_METERED } from "../chain/abi.ts";
import { isoTime, tokenUnits } from "../cli/output.ts";
import type { Cell } from "../cli/output.ts";
import type { PlanRow, Store } from "../index/store.ts";
import type { TokenInfo } from "./chain.ts";
import { duration, usdUnits } from "./format.ts";
import { STATUSES } from "./status.ts";
import type { StatusName, StatusPlan } from "./status.ts";

const ZERO = "0x0000000000000000000000000000000000000000";
export const PLAN_STATUSES = ["Active", "OnHold", "Retired"] as const;
export const planStatusName = (code: number): string => PLAN_STATUSES[code] ?? `Unknown(${code})`;

export const isUsdPriced = (plan: PlanRow): boolean => plan.priceFeed !== ZERO && plan.billingMode !== BILLING_METERED;

/** What statusAt needs of a plan, with its retirement time from the index. */
export function statusPlan(plan: PlanRow, retiredAt: ReadonlyMap<string, number>): StatusPlan {
  return { billingMode: plan.billingMode, grace: plan.grace, period: plan.period, status: plan.status, retiredAt: retiredAt.get(plan.address) ?? null };
}

/** The plan's price in words: "10 USDC", "$9.99 (paid in USDC)", "usage, up to 100 USDC a cycle". */
export function priceText(plan: PlanRow, token: TokenInfo): string {
  if (plan.billingMode === BILLING_METERED) return `usage, up to ${tokenUnits(plan.perCycleCap, token.decimals)} ${token.symbol} a cycle`;
  if (isUsdPriced(plan)) return `$${usdUnits(plan.price)} (paid in ${token.symbol})`;
  return `${tokenUnits(plan.price, token.decimals)} ${token.symbol}`;
}

export interface PlansInput {
  store: Store;
  tokens: ReadonlyMap<string, TokenInfo>;
  chainId: bigint;
  now: number;
  owner: string | null;
}

export function plansOf(store: Store, owner: string | null): PlanRow[] {
  return store.plans().filter((p) => owner === null || p.owner.toLowerCase() === owner);
}

export function plansReport(input: PlansInput) {
  const { store, tokens, chainId, now } = input;
  const plans = plansOf(store, input.owner);
  const counts = store.reportStatusCounts(now);
  const rows = plans.map((plan) => {
    const token = tokens.get(plan.token.toLowerCase())!;
    const metered = plan.billingMode === BILLING_METERED;
    const usd = isUsdPriced(plan);
    const byStatus = Object.fromEntries(STATUSES.map((s) => [s, counts.get(plan.address)?.[s] ?? 0])) as Record<StatusName, number>;
    return {
      chainId: chainId.toString(),
      plan: plan.address,
      owner: plan.owner,
      kind: metered ? "metered" : "fixed",
      status: planStatusName(plan.status),
      token: plan.token,
      symbol: token.symbol,
      decimals: token.decimals,
      terms: priceText(plan, token),
      price: metered ? null : usd ? null : tokenUnits(plan.price, token.decimals),
      priceBaseUnits: metered || usd ? null : plan.price,
      priceUsd: usd ? usdUnits(plan.price) : null,
      priceFeed: usd ? plan.priceFeed : null,
      period: duration(plan.period),
      periodSeconds: plan.period,
      trialSeconds: plan.trial,
      graceSeconds: plan.grace,
      keeperFeeBps: plan.keeperFeeBps,
      perCycleCap: metered ? tokenUnits(plan.perCycleCap, token.decimals) : null,
      perCycleCapBaseUnits: metered ? plan.perCycleCap : null,
      freeCredits: metered ? tokenUnits(plan.freeCredits, token.decimals) : null,
      freeCreditsBaseUnits: metered ? plan.freeCredits : null,
      createdAt: isoTime(plan.createdAt),
      subscriptions: byStatus,
    };
  });
  const columns = [
    { key: "chain_id" }, { key: "plan" }, { key: "owner" }, { key: "kind" }, { key: "status" }, { key: "terms" },
    { key: "token" }, { key: "symbol" }, { key: "price", right: true }, { key: "price_base_units", right: true }, { key: "price_usd", right: true },
    { key: "period" }, { key: "period_seconds", right: true }, { key: "trial_seconds", right: true }, { key: "grace_seconds", right: true },
    { key: "keeper_fee_bps", right: true }, { key: "per_cycle_cap", right: true }, { key: "per_cycle_cap_base_units", right: true },
    { key: "free_credits", right: true }, { key: "free_credits_base_units", right: true }, { key: "created_at" },
    ...STATUSES.map((s) => ({ key: s.replace(/(?<=[a-z])([A-Z])/g, "_$1").toLowerCase(), title: s, right: true })),
  ];
  const table: Record<string, Cell>[] = rows.map((r) => ({
    chain_id: r.chainId, plan: r.plan, owner: r.owner, kind: r.kind, status: r.status, terms: r.terms, token: r.token, symbol: r.symbol,
    price: r.price, price_base_units: r.priceBaseUnits, price_usd: r.priceUsd, period: r.period, period_seconds: r.periodSeconds,
    trial_seconds: r.trialSeconds, grace_seconds: r.graceSeconds, keeper_fee_bps: r.keeperFeeBps, per_cycle_cap: r.perCycleCap,
    per_cycle_cap_base_units: r.perCycleCapBaseUnits, free_credits: r.freeCredits, free_credits_base_units: r.freeCreditsBaseUnits,
    created_at: r.createdAt,
    ...Object.fromEntries(STATUSES.map((s) => [s.replace(/(?<=[a-z])([A-Z])/g, "_$1").toLowerCase(), r.subscriptions[s]])),
  }));
  return { plans: rows, columns, rows: table };
}

// `recur revenue`: money collected per token per bucket (and in USD for USD-priced plans, each charge
// worth the plan's USD price: the on-chain conversion collects exactly that), MRR of the live fixed-price
// subscriptions, new and churned subscriptions and the MRR they moved, failed charges and how many were
// recovered inside grace, and the amount at risk: subscriptions due within N days whose next charge the
// plan predicts will fail. Every count and sum comes from the store's SQL aggregations.
import { BILLING_METERED } from "../chain/abi.ts";
import type { Rpc } from "../chain/rpc.ts";
import { isoTime, tokenUnits } from "../cli/output.ts";
import type { Cell, Column } from "../cli/output.ts";
import type { PlanRow, Store } from "../index/store.ts";
import { outcome, predict, willSucceed } from "./chain.ts";
import type { TokenInfo } from "./chain.ts";
import { USD_DECIMALS } from "./format.ts";
import { isUsdPriced } from "./plans.ts";

/** MRR is normalised to a 30-day month. */
export const MONTH = 30 * 86_400;

export interface RevenueInput {
  store: Store;
  rpc: Rpc;
  chainId: bigint;
  block: bigint;
  now: number;
  plans: readonly PlanRow[];
  tokens: ReadonlyMap<string, TokenInfo>;
  since: number;
  until: number;
  by: "day" | "week" | "month";
  atRiskDays: number;
}

/** What amounts are counted in: a token (its address) or "USD" (a USD-priced plan's price). */
interface Currency {
  currency: string;
  symbol: string;
  decimals: number;
}

/** A sum in one currency, in units and base units. */
function money(c: Currency, amount: bigint) {
  return { currency: c.currency, symbol: c.symbol, amount: tokenUnits(amount, c.decimals), amountBaseUnits: amount };
}

class Sums {
  readonly #sums = new Map<string, { c: Currency; amount: bigint; count: number }>();
  add(c: Currency, amount: bigint, count: number): void {
    const sum = this.#sums.get(c.currency) ?? { c, amount: 0n, count: 0 };
    sum.amount += amount;
    sum.count += count;
    this.#sums.set(c.currency, sum);
  }
  list() {
    return [...this.#sums.values()].map((s) => ({ ...money(s.c, s.amount), count: s.count }));
  }
}

export async function revenueReport(input: RevenueInput) {
  const { store, plans, now, since, until } = input;
  const addresses = plans.map((p) => p.address);
  const byAddress = new Map(plans.map((p) => [p.address, p]));
  const tokenOf = (plan: PlanRow): Currency => {
    const t = input.tokens.get(plan.token.toLowerCase())!;
    return { currency: plan.token.toLowerCase(), symbol: t.symbol, decimals: t.decimals };
  };
  const USD: Currency = { currency: "USD", symbol: "USD", decimals: USD_DECIMALS };
  /** Fixed plans' MRR currency and MRR per subscription (price × 30 days / period, rounded down). */
  const mrrOf = (plan: PlanRow, count: number): { c: Currency; amount: bigint } | null =>
    plan.billingMode === BILLING_METERED ? null : { c: isUsdPriced(plan) ? USD : tokenOf(plan), amount: (plan.price * BigInt(count) * BigInt(MONTH)) / BigInt(plan.period) };

  // Collected, per bucket per token; USD-priced plans also in USD.
  const buckets = new Map<string, { tokens: Sums; usd: Sums }>();
  for (const row of store.reportCollected(addresses, since, until, input.by)) {
    const plan = byAddress.get(row.plan)!;
    const bucket = buckets.get(row.bucket) ?? { tokens: new Sums(), usd: new Sums() };
    bucket.tokens.add(tokenOf(plan), row.amount, row.count);
    if (row.kind === "charged" && isUsdPriced(plan)) bucket.usd.add(USD, plan.price * BigInt(row.count), row.count);
    buckets.set(row.bucket, bucket);
  }
  const collected = [...buckets].sort(([a], [b]) => a.localeCompare(b)).map(([bucket, b]) => ({ bucket, tokens: b.tokens.list(), usd: b.usd.list()[0] ?? null }));

  // MRR of the live (Active, PastDue) subscriptions at now: trials pay nothing yet.
  const counts = store.reportStatusCounts(now);
  const mrr = new Sums();
  for (const plan of plans) {
    const live = (counts.get(plan.address)?.Active ?? 0) + (counts.get(plan.address)?.PastDue ?? 0);
    const m = mrrOf(plan, live);
    if (m !== null && live > 0) mrr.add(m.c, m.amount, live);
  }

  // New and churned subscriptions in the window, and the MRR they brought or took.
  const events = store.reportEventCounts(addresses, ["subscribed", "cancelled"], since, until);
  const expired = store.reportExpiredBetween(addresses, since, until, now);
  const recovery = store.reportRecovery(addresses, since, until);
  const added = new Sums();
  const lost = new Sums();
  let newCount = 0;
  let cancelled = 0;
  let expiredCount = 0;
  let failed = 0;
  let recovered = 0;
  for (const plan of plans) {
    const n = events.get(plan.address)?.subscribed ?? 0;
    const c = events.get(plan.address)?.cancelled ?? 0;
    const x = expired.get(plan.address) ?? 0;
    newCount += n;
    cancelled += c;
    expiredCount += x;
    failed += recovery.get(plan.address)?.failed ?? 0;
    recovered += recovery.get(plan.address)?.recovered ?? 0;
    const gained = mrrOf(plan, n);
    const churned = mrrOf(plan, c + x);
    if (gained !== null && n > 0) added.add(gained.c, gained.amount, n);
    if (churned !== null && c + x > 0) lost.add(churned.c, churned.amount, c + x);
  }

  // At risk: due within N days, and the plan predicts the charge will fail. One chargeabilityMany per plan
  // (in chunks of 500).
  const horizon = now + input.atRiskDays * 86_400;
  const due = store.reportDueBy(addresses, now, horizon);
  const duePerPlan = new Map<string, { subscriber: string; nextChargeAt: number }[]>();
  for (const d of due) {
    const list = duePerPlan.get(d.plan);
    if (list === undefined) duePerPlan.set(d.plan, [d]);
    else list.push(d);
  }
  const risk = new Map<string, { c: Currency; amount: bigint; count: number; reasons: Map<string, { count: number; amount: bigint }> }>();
  const atRiskItems = [];
  for (const [address, list] of duePerPlan) {
    const plan = byAddress.get(address)!;
    const reasons = await predict(input.rpc, address, list.map((d) => d.subscriber), input.block);
    const c = isUsdPriced(plan) ? USD : tokenOf(plan);
    for (const d of list) {
      const reason = reasons.get(d.subscriber) ?? "Unknown";
      if (willSucceed(reason)) continue;
      const sum = risk.get(c.currency) ?? { c, amount: 0n, count: 0, reasons: new Map() };
      sum.amount += plan.price;
      sum.count++;
      const r = sum.reasons.get(reason) ?? { count: 0, amount: 0n };
      r.count++;
      r.amount += plan.price;
      sum.reasons.set(reason, r);
      risk.set(c.currency, sum);
      atRiskItems.push({ plan: address, subscriber: d.subscriber, nextChargeAt: isoTime(d.nextChargeAt), reason, outcome: outcome(reason), ...money(c, plan.price) });
    }
  }
  const atRisk = {
    days: input.atRiskDays,
    dueSubscriptions: due.length,
    totals: [...risk.values()].map((r) => ({
      ...money(r.c, r.amount),
      count: r.count,
      reasons: Object.fromEntries([...r.reasons].map(([reason, v]) => [reason, { count: v.count, ...money(r.c, v.amount) }])),
    })),
    subscriptions: atRiskItems,
  };

  const json = {
    chainId: input.chainId.toString(),
    now: isoTime(now),
    block: input.block,
    window: { since: isoTime(since), until: isoTime(until), by: input.by },
    collected,
    mrr: mrr.list(),
    subscriptions: { new: newCount, cancelled, expired: expiredCount, mrrAdded: added.list(), mrrChurned: lost.list() },
    failedCharges: { failed, recoveredInGrace: recovered, recoveryRate: failed === 0 ? null : recovered / failed },
    atRisk,
  };

  // One flat table (and CSV): a line per figure.
  const columns: Column[] = [
    { key: "chain_id" }, { key: "metric" }, { key: "bucket" }, { key: "currency" }, { key: "symbol" },
    { key: "amount", right: true }, { key: "amount_base_units", right: true }, { key: "count", right: true }, { key: "detail" },
  ];
  const rows: Record<string, Cell>[] = [];
  const line = (metric: string, bucket: string | null, m: ReturnType<typeof money> | null, count: number | null, detail: string | null = null) =>
    rows.push({ chain_id: json.chainId, metric, bucket, currency: m?.currency ?? null, symbol: m?.symbol ?? null, amount: m?.amount ?? null, amount_base_units: m?.amountBaseUnits ?? null, count, detail });
  for (const b of collected) {
    for (const t of b.tokens) line("collected", b.bucket, t, t.count);
    if (b.usd !== null) line("collected_usd", b.bucket, b.usd, b.usd.count);
  }
  for (const m of json.mrr) line("mrr", null, m, m.count, "live subscriptions, 30-day month");
  line("new_subscriptions", null, null, newCount);
  for (const m of json.subscriptions.mrrAdded) line("mrr_added", null, m, m.count);
  line("cancelled", null, null, cancelled);
  line("expired", null, null, expiredCount);
  for (const m of json.subscriptions.mrrChurned) line("mrr_churned", null, m, m.count);
  line("failed_charges", null, null, failed);
  line("recovered_in_grace", null, null, recovered, failed === 0 ? null : `${((recovered / failed) * 100).toFixed(1)}% recovered`);
  for (const t of atRisk.totals) {
    line("at_risk", null, t, t.count, `due within ${input.atRiskDays} days, predicted to fail`);
    for (const [reason, v] of Object.entries(t.reasons)) line("at_risk_reason", null, v, v.count, reason);
  }
  return { json, columns, rows };
}

// `recur charges`: every charge, failed charge and usage bill in a window, and for each failure whether
// it was recovered inside the grace window (a later charge of the same plan, subscriber and period,
// no later than that period's due time plus the grace).
import { BILLING_METERED } from "../chain/abi.ts";
import { isoTime, tokenUnits } from "../cli/output.ts";
import type { Cell, Column } from "../cli/output.ts";
import type { ActivityKind, ActivityRow, PlanRow, Store } from "../index/store.ts";
import type { TokenInfo } from "./chain.ts";
import { isUsdPriced } from "./plans.ts";
import { usdUnits } from "./format.ts";

export const CHARGE_KINDS = ["charged", "charge_failed", "usage_charged", "usage_failed"] as const;
const SUCCESS_OF: Record<string, ActivityKind> = { charge_failed: "charged", usage_failed: "usage_charged" };

export interface Recovery {
  /** "recovered", "not recovered", or "pending" (still inside its grace window, not yet paid). */
  state: "recovered" | "not recovered" | "pending";
  at: number | null;
  txHash: string | null;
}

/** The due time a success paid: its event's new `nextChargeAt` less one period (schedules are anchored). */
function paidDueAt(success: ActivityRow, plan: PlanRow): number | null {
  const next = success.data?.nextChargeAt;
  return next === undefined ? null : Number(next) - plan.period;
}

/** Whether `failure` was recovered: the next success of the same kind for the same plan and subscriber
 * after it paid the period that was due when it failed (the failure came no earlier than that due time),
 * and came no later than the due time plus the plan's grace. */
export function recoveryOf(store: Store, failure: ActivityRow, plan: PlanRow, now: number): Recovery {
  const success = store.reportNextActivity(failure.plan, failure.subscriber!, SUCCESS_OF[failure.kind]!, failure.block, failure.logIndex);
  if (success !== undefined) {
    const dueAt = paidDueAt(success, plan);
    if (dueAt !== null && failure.time >= dueAt && success.time <= dueAt + plan.grace) return { state: "recovered", at: success.time, txHash: success.txHash };
  }
  if (success === undefined) {
    // Nothing paid since: the period that failed is still the one due; inside its grace it may still be.
    const sub = store.subscription(failure.plan, failure.subscriber!);
    if (sub !== undefined && sub.state === "live" && now <= sub.nextChargeAt + plan.grace && failure.time >= sub.nextChargeAt) {
      return { state: "pending", at: null, txHash: null };
    }
  }
  return { state: "not recovered", at: null, txHash: null };
}

export interface ChargesInput {
  store: Store;
  tokens: ReadonlyMap<string, TokenInfo>;
  chainId: bigint;
  now: number;
  plans: readonly PlanRow[];
  subscriber: string | null;
  since: number | null;
  until: number | null;
}

export function chargesReport(input: ChargesInput) {
  const { store, tokens, now } = input;
  const byAddress = new Map(input.plans.map((p) => [p.address, p]));
  const filter = {
    plans: input.plans.map((p) => p.address),
    kinds: [...CHARGE_KINDS],
    ...(input.subscriber === null ? {} : { subscriber: input.subscriber }),
    ...(input.since === null ? {} : { since: input.since }),
    ...(input.until === null ? {} : { until: input.until }),
  };
  const charges = [];
  for (const a of store.activity(filter)) {
    const plan = byAddress.get(a.plan)!;
    const token = tokens.get(plan.token.toLowerCase())!;
    const failed = a.kind === "charge_failed" || a.kind === "usage_failed";
    const recovery = failed ? recoveryOf(store, a, plan, now) : null;
    const usd = a.kind === "charged" && isUsdPriced(plan);
    charges.push({
      chainId: input.chainId.toString(),
      time: isoTime(a.time),
      plan: a.plan,
      kind: plan.billingMode === BILLING_METERED ? "metered" : "fixed",
      subscriber: a.subscriber,
      event: a.kind,
      amount: a.amount === null ? null : tokenUnits(a.amount, token.decimals),
      amountBaseUnits: a.amount,
      symbol: token.symbol,
      token: plan.token,
      usd: usd ? usdUnits(plan.price) : null,
      periodIndex: a.periodIndex,
      usage: a.usage === null ? null : tokenUnits(a.usage, token.decimals),
      usageBaseUnits: a.usage,
      fromCredits: a.fromCredits === null ? null : tokenUnits(a.fromCredits, token.decimals),
      fromCreditsBaseUnits: a.fromCredits,
      reason: a.reason,
      recovery: recovery === null ? null : recovery.state === "recovered" ? `recovered at ${isoTime(recovery.at)}` : recovery.state === "pending" ? "not recovered yet (inside grace)" : "not recovered",
      recoveredAt: recovery?.at === null || recovery === null ? null : isoTime(recovery.at),
      recoveryTxHash: recovery?.txHash ?? null,
      block: a.block,
      txHash: a.txHash,
      logIndex: a.logIndex,
    });
  }
  const columns: Column[] = [
    { key: "chain_id" }, { key: "time" }, { key: "plan" }, { key: "subscriber" }, { key: "event" }, { key: "amount", right: true },
    { key: "amount_base_units", right: true }, { key: "symbol" }, { key: "usd", right: true }, { key: "period_index", right: true },
    { key: "usage_base_units", right: true }, { key: "from_credits_base_units", right: true }, { key: "reason" }, { key: "recovery" },
    { key: "recovered_at" }, { key: "block", right: true }, { key: "tx_hash" }, { key: "log_index", right: true },
  ];
  const rows: Record<string, Cell>[] = charges.map((c) => ({
    chain_id: c.chainId, time: c.time, plan: c.plan, subscriber: c.subscriber, event: c.event, amount: c.amount,
    amount_base_units: c.amountBaseUnits, symbol: c.symbol, usd: c.usd, period_index: c.periodIndex, usage_base_units: c.usageBaseUnits,
    from_credits_base_units: c.fromCreditsBaseUnits, reason: c.reason, recovery: c.recovery, recovered_at: c.recoveredAt, block: c.block,
    tx_hash: c.txHash, log_index: c.logIndex,
  }));
  return { charges, columns, rows };
}

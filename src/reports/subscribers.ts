// `recur subscribers --plan P`: every subscriber of a plan, with the status the chain derives at now,
// what they paid, the merchant's ref, and the plan's own prediction of their next charge (one batched
// `chargeabilityMany` for the plan).
import { BILLING_METERED } from "../chain/abi.ts";
import type { Rpc } from "../chain/rpc.ts";
import { isoTime, tokenUnits } from "../cli/output.ts";
import type { Cell, Column } from "../cli/output.ts";
import type { PlanRow, Store } from "../index/store.ts";
import { outcome, predict } from "./chain.ts";
import type { TokenInfo } from "./chain.ts";
import { refMatches, refText } from "./format.ts";
import { statusPlan } from "./plans.ts";
import { PREDICTABLE, retiredFor, statusAt } from "./status.ts";
import type { StatusName } from "./status.ts";

export interface SubscribersInput {
  store: Store;
  rpc: Rpc;
  chainId: bigint;
  /** The confirmed block the index holds, and its time ("now"). */
  block: bigint;
  now: number;
  plan: PlanRow;
  token: TokenInfo;
  statuses: ReadonlySet<StatusName> | null;
  ref: string | null;
}

/** A metered plan's answer for usage 0 says whether a cycle waits for its bill, not whether the
 * customer's funds cover it (that depends on the usage). */
function meteredOutcome(reason: string): string {
  if (reason === "NotDue") return "cycle running: billable once it ends";
  if (reason === "Ok") return "ended cycle waiting for its bill";
  return outcome(reason);
}

export async function subscribersReport(input: SubscribersInput) {
  const { store, plan, token, now } = input;
  const sp = statusPlan(plan, store.reportRetiredAt());
  const metered = plan.billingMode === BILLING_METERED;
  const picked = store.subscriptionsOf(plan.address)
    .map((sub) => ({ sub, status: statusAt(sp, sub, now) }))
    .filter(({ sub, status }) => (input.statuses === null || input.statuses.has(status)) && (input.ref === null || refMatches(sub.ref, input.ref)));
  const asked = picked.filter((p) => PREDICTABLE.has(p.status)).map((p) => p.sub.subscriber);
  const reasons = await predict(input.rpc, plan.address, asked, input.block);
  const subscribers = picked.map(({ sub, status }) => {
    const reason = reasons.get(sub.subscriber.toLowerCase()) ?? null;
    const scheduled = PREDICTABLE.has(status) && !retiredFor(sp, sub);
    return {
      chainId: input.chainId.toString(),
      plan: plan.address,
      subscriber: sub.subscriber,
      status,
      ref: refText(sub.ref),
      refHex: refText(sub.ref) === null ? null : sub.ref,
      startedAt: isoTime(sub.startedAt),
      trial: sub.trial,
      periodsPaid: sub.periodsPaid,
      totalPaid: tokenUnits(sub.totalPaid, token.decimals),
      totalPaidBaseUnits: sub.totalPaid,
      symbol: token.symbol,
      maxAmount: tokenUnits(sub.maxAmount, token.decimals),
      maxAmountBaseUnits: sub.maxAmount,
      nextChargeAt: scheduled ? isoTime(sub.nextChargeAt) : null,
      lastFailure: sub.lastReason,
      prediction: reason,
      outcome: reason === null ? null : metered ? meteredOutcome(reason) : outcome(reason),
    };
  });
  const columns: Column[] = [
    { key: "chain_id" }, { key: "plan" }, { key: "subscriber" }, { key: "status" }, { key: "ref" }, { key: "ref_hex" },
    { key: "started_at" }, { key: "periods_paid", right: true }, { key: "total_paid", right: true }, { key: "total_paid_base_units", right: true },
    { key: "symbol" }, { key: "max_amount", right: true }, { key: "max_amount_base_units", right: true }, { key: "next_charge_at" },
    { key: "last_failure" }, { key: "prediction" }, { key: "outcome" },
  ];
  const rows: Record<string, Cell>[] = subscribers.map((s) => ({
    chain_id: s.chainId, plan: s.plan, subscriber: s.subscriber, status: s.status, ref: s.ref, ref_hex: s.refHex, started_at: s.startedAt,
    periods_paid: s.periodsPaid, total_paid: s.totalPaid, total_paid_base_units: s.totalPaidBaseUnits, symbol: s.symbol,
    max_amount: s.maxAmount, max_amount_base_units: s.maxAmountBaseUnits, next_charge_at: s.nextChargeAt, last_failure: s.lastFailure,
    prediction: s.prediction, outcome: s.outcome,
  }));
  return { subscribers, columns, rows };
}

// A subscription's status as the chain derives it (PlanCore._statusOf over BillingMath.statusOf, and
// MeteredPlan's override), from the index's row and the time: no call needed. Read next to
// contracts/libraries/BillingMath.sol, which it mirrors line by line.
import { BILLING_METERED, PLAN_RETIRED } from "../chain/abi.ts";
import type { PlanRow, SubscriptionRow } from "../index/store.ts";

/** `SubscriptionStatus` in words (contracts/interfaces/PlanTypes.sol), without `None` (the index holds
 * only subscribers who subscribed). */
export const STATUSES = ["Trialing", "Active", "PastDue", "Paused", "Cancelled", "Expired"] as const;
export type StatusName = (typeof STATUSES)[number];

/** What the status needs of a plan: its kind, grace, period, status, and when it was retired (unix
 * seconds; only metered plans read it). */
export type StatusPlan = Pick<PlanRow, "billingMode" | "grace" | "period" | "status"> & { retiredAt: number | null };
export type StatusSubscription = Pick<SubscriptionRow, "state" | "nextChargeAt" | "periodsPaid" | "beforeRetirement">;

/** `_retiredFor(dueAt, flags)`: a fixed plan's retirement stops every charge; a metered plan's stops the
 * cycles that started after it (due at least one period after the retirement, and not a cycle that had
 * started before it and was moved by a pause: `beforeRetirement`). */
export function retiredFor(plan: StatusPlan, sub: Pick<StatusSubscription, "nextChargeAt" | "beforeRetirement">): boolean {
  if (plan.status !== PLAN_RETIRED) return false;
  if (plan.billingMode !== BILLING_METERED) return true;
  return plan.retiredAt !== null && sub.nextChargeAt >= plan.retiredAt + plan.period && !sub.beforeRetirement;
}

/** `statusOf(subscriber)` at `now` (unix seconds). The paid flag (FLAG_PAID) is not in the index: on a
 * fixed plan it is clear only through the trial, which is always the subscriber's first subscription, so
 * it is "periodsPaid > 0"; a metered plan sets it from the start. */
export function statusAt(plan: StatusPlan, sub: StatusSubscription, now: number): StatusName {
  if (sub.state === "cancelled") return "Cancelled";
  if (sub.state === "paused") return "Paused";
  const retired = retiredFor(plan, sub);
  if (now >= sub.nextChargeAt) {
    // A retired plan never charges again: once the paid time is over, the subscription is over.
    if (retired || now > sub.nextChargeAt + plan.grace) return "Expired";
    return "PastDue";
  }
  if (plan.billingMode === BILLING_METERED) return retired ? "Expired" : "Active";
  return sub.periodsPaid === 0 ? "Trialing" : "Active";
}

/** Statuses whose next charge the chain can be asked about (the others will never be charged again, or
 * not before the subscriber acts). */
export const PREDICTABLE: ReadonlySet<StatusName> = new Set(["Trialing", "Active", "PastDue"]);

/** Parses "PastDue,Active" (any case); throws the one line naming the bad value otherwise. */
export function parseStatuses(raw: string, fail: (bad: string, allowed: string) => Error): Set<StatusName> {
  const out = new Set<StatusName>();
  for (const part of raw.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const found = STATUSES.find((s) => s.toLowerCase() === part.toLowerCase());
    if (found === undefined) throw fail(part, STATUSES.join(", "));
    out.add(found);
  }
  if (out.size === 0) throw fail(raw, STATUSES.join(", "));
  return out;
}

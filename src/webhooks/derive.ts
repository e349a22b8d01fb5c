// The time-derived webhooks: facts with no transaction behind them, read from the index and the clock
// (the chain time of the last indexed block), each sent once per subscription and due time:
//   charge.upcoming              `upcomingLead` before each due charge of a fixed plan (Active or Trialing),
//                                with the plan's own prediction (`chargeabilityMany`): will it succeed, or why not;
//   subscription.trial_will_end  `trialWillEndLead` before a fixed plan's trial ends;
//   subscription.past_due        the chain says PastDue (src/reports/status.ts statusAt) and the charge has
//                                been due `pastDueAfter` (a keeper charges at the due time: without the
//                                wait every renewal would be "past due" for a block); on a metered plan only
//                                once a usage bill failed (an ended cycle is PastDue until its owner bills it);
//   subscription.expired         the chain says Expired (grace over unpaid, or the plan retired).
// The window: subscriptions due by now + the longest lead whose grace had not ended at the previous
// derivation (meta `webhookTimeCursor`); the first derivation starts at now (no backlog of old facts).
import { BILLING_FIXED, BILLING_METERED } from "../chain/abi.ts";
import type { Rpc } from "../chain/rpc.ts";
import { isRetryable } from "../errors.ts";
import type { PlanRow, Store, SubscriptionRow } from "../index/store.ts";
import type { Logger } from "../log.ts";
import { outcome, predict, willSucceed } from "../reports/chain.ts";
import { statusAt } from "../reports/status.ts";
import type { WebhooksConfig } from "./config.ts";
import type { EventType } from "./events.ts";
import { timeEventId } from "./ids.ts";

export interface DeriveDeps {
  store: Store;
  rpc: Rpc;
  log: Logger;
  chainId: bigint;
  config: WebhooksConfig;
  /** Wall clock, unix ms. */
  clock: () => number;
}

const CURSOR = "webhookTimeCursor";

interface Pending {
  type: EventType;
  sub: SubscriptionRow;
  plan: PlanRow;
  dueAt: number;
  occurredAt: number;
  facts: Record<string, unknown>;
}

/** The time-derived events of `sub` at `now`. */
function eventsOf(config: WebhooksConfig, plan: PlanRow, sub: SubscriptionRow, retiredAt: number | null, now: number): Omit<Pending, "facts">[] {
  const out: Omit<Pending, "facts">[] = [];
  const status = statusAt({ ...plan, retiredAt }, sub, now);
  const due = sub.nextChargeAt;
  const fixed = plan.billingMode === BILLING_FIXED;
  const upcoming = Math.floor(config.upcomingLeadSeconds);
  const trial = Math.floor(config.trialWillEndLeadSeconds);
  if (fixed && upcoming > 0 && (status === "Active" || status === "Trialing") && now >= due - upcoming && now < due) {
    out.push({ type: "charge.upcoming", sub, plan, dueAt: due, occurredAt: Math.max(due - upcoming, sub.startedAt) });
  }
  if (fixed && trial > 0 && status === "Trialing" && sub.trial && now >= due - trial && now < due) {
    out.push({ type: "subscription.trial_will_end", sub, plan, dueAt: due, occurredAt: Math.max(due - trial, sub.startedAt) });
  }
  const after = Math.floor(config.pastDueAfterSeconds);
  if (status === "PastDue" && now >= due + after && (fixed || (plan.billingMode === BILLING_METERED && sub.lastReason !== null))) {
    out.push({ type: "subscription.past_due", sub, plan, dueAt: due, occurredAt: due + after });
  }
  if (status === "Expired") {
    // Expired inside the grace window: the plan was retired, so the paid time's end was the end.
    out.push({ type: "subscription.expired", sub, plan, dueAt: due, occurredAt: now > due + plan.grace ? due + plan.grace + 1 : due });
  }
  return out;
}

/** Derives the time-derived events at chain time `now` (the index's last block, `block`) into the outbox.
 * Predictions are read at `block`; a plan whose view fails gets "Unknown". Returns how many were new. */
export async function deriveTimeEvents(deps: DeriveDeps, now: number, block: bigint): Promise<number> {
  const { store, config, chainId } = deps;
  const since = Number(store.getMeta(CURSOR) ?? now);
  const lead = Math.max(config.upcomingLeadSeconds, config.trialWillEndLeadSeconds);
  const retired = new Map<string, number | null>();
  const found: Pending[] = [];
  for (const { sub, plan } of store.webhookTimeCandidates(since, now + Math.ceil(lead))) {
    if (!retired.has(plan.address)) retired.set(plan.address, store.retiredAt(plan.address));
    for (const e of eventsOf(config, plan, sub, retired.get(plan.address) ?? null, now)) {
      // Already in the outbox (an earlier derivation, or another keeper): nothing to read or write.
      if (store.webhookEvent(timeEventId(chainId, plan.address, sub.subscriber, e.type, e.dueAt)) !== undefined) continue;
      found.push({ ...e, facts: {} });
    }
  }
  const predictions = await predictUpcoming(deps, found.filter((e) => e.type === "charge.upcoming"), block);
  const nowMs = deps.clock();
  let added = 0;
  store.transaction(() => {
    for (const e of found) {
      const facts: Record<string, unknown> = {
        chainId: chainId.toString(), plan: e.plan.address, subscriber: e.sub.subscriber, ref: e.sub.ref, token: e.plan.token, dueAt: e.dueAt,
      };
      const usdPriced = !/^0x0{40}$/.test(e.plan.priceFeed);
      if (e.type === "charge.upcoming" || e.type === "subscription.trial_will_end") {
        if (usdPriced) facts.priceUsd = e.plan.price.toString();
        else facts.amount = e.plan.price.toString();
        facts.maxAmount = e.sub.maxAmount.toString();
      }
      if (e.type === "charge.upcoming") {
        const reason = predictions.get(`${e.plan.address}:${e.sub.subscriber}`) ?? "Unknown";
        facts.prediction = { willSucceed: willSucceed(reason), reason, outcome: reason === "Unknown" ? "unknown: the plan's chargeability view did not answer" : outcome(reason) };
      }
      if (e.type === "subscription.trial_will_end") facts.trialEndsAt = e.dueAt;
      if (e.type === "subscription.past_due") {
        facts.graceEndsAt = e.dueAt + e.plan.grace;
        facts.lastFailure = e.sub.lastReason;
      }
      if (e.type === "subscription.expired") facts.expiredAt = e.occurredAt;
      const fresh = store.addWebhookEvent({
        id: timeEventId(chainId, e.plan.address, e.sub.subscriber, e.type, e.dueAt), type: e.type, plan: e.plan.address, subscriber: e.sub.subscriber,
        occurredAt: e.occurredAt, block: null, payload: facts, createdAt: nowMs,
      });
      if (fresh) added++;
    }
    store.setMeta(CURSOR, String(now));
  });
  return added;
}

/** The plan's prediction for each upcoming charge, by "plan:subscriber"; a plan whose view fails for a
 * reason of its own (a revert, a hostile contract) is "Unknown"; an RPC outage stops the derivation. */
async function predictUpcoming(deps: DeriveDeps, upcoming: Pending[], block: bigint): Promise<Map<string, string>> {
  const byPlan = new Map<string, string[]>();
  for (const e of upcoming) byPlan.set(e.plan.address, [...(byPlan.get(e.plan.address) ?? []), e.sub.subscriber]);
  const out = new Map<string, string>();
  for (const [plan, subscribers] of byPlan) {
    try {
      for (const [who, reason] of await predict(deps.rpc, plan, subscribers, block)) out.set(`${plan}:${who}`, reason);
    } catch (error) {
      if (isRetryable(error)) throw error;
      deps.log.warn("webhook_prediction_failed", { plan, error });
    }
  }
  return out;
}

// The webhook events: which index facts become which event type, the facts each event keeps in the
// outbox (written by the indexer in the transaction that indexes the log: `recordChainEvent`), and the
// body each is sent as (`renderEvent`): `{ "type", "timestamp", "data" }` (the Standard Webhooks
// envelope), with amounts in base units and in token units, times in ISO-8601, and links to the plan's
// checkout and the subscriber's self-service page when they are configured.
// A plan is anyone's contract (the factory is permissionless): every field here comes from the ABI's
// fixed-size types (addresses, integers, bytes32), never from free text of the plan.
import { formatUnits } from "ethers";

import { reasonName } from "../chain/abi.ts";
import type { ActivityKind, ActivityRow, Store } from "../index/store.ts";
import { refText, usdUnits } from "../reports/format.ts";
import { chainEventId } from "./ids.ts";

/** Every event type, in the order docs/WEBHOOKS.md lists them. `webhook.test` is sent only by
 * `recur webhooks test`. */
export const EVENT_TYPES = [
  "subscription.created",
  "subscription.trial_will_end",
  "charge.upcoming",
  "charge.succeeded",
  "charge.failed",
  "subscription.past_due",
  "subscription.expired",
  "subscription.cancelled",
  "subscription.paused",
  "subscription.resumed",
  "subscription.max_amount_updated",
  "usage.billed",
  "usage.failed",
  "plan.status_changed",
  "plan.payee_changed",
] as const;
export type EventType = (typeof EVENT_TYPES)[number] | "webhook.test";

/** The index's activity kinds that are sent, and as what; the others (owner and keeper changes, blocks,
 * credits, fees, write-offs) are not. */
export const CHAIN_EVENT_TYPES: Partial<Record<ActivityKind, EventType>> = {
  subscribed: "subscription.created",
  charged: "charge.succeeded",
  charge_failed: "charge.failed",
  cancelled: "subscription.cancelled",
  paused: "subscription.paused",
  resumed: "subscription.resumed",
  max_amount_updated: "subscription.max_amount_updated",
  usage_charged: "usage.billed",
  usage_failed: "usage.failed",
  plan_status_changed: "plan.status_changed",
  payee_changed: "plan.payee_changed",
};

/** Facts kept as base units (strings) and rendered twice: `amount` and `amountDecimal`. */
const AMOUNT_KEYS = ["amount", "maxAmount", "oldMaxAmount", "newMaxAmount", "usage", "fromCredits"] as const;
/** Facts kept as unix seconds and rendered as ISO-8601. */
const TIME_KEYS = ["startedAt", "nextChargeAt", "paidThrough", "pausedAt", "dueAt", "trialEndsAt", "graceEndsAt", "expiredAt"] as const;
const PLAN_STATUS = ["Active", "OnHold", "Retired"];

/** Where the links in a body point (from the webhooks config); null: no link. */
export interface Links {
  checkoutUrl: string | null;
  portalUrl: string | null;
}

export interface TokenView {
  address: string;
  decimals: number | null;
  symbol: string;
}

const num = (v: string | undefined): number => Number(v ?? 0);

/** The facts of one index event for its webhook, or null when the kind is not sent. */
function chainFacts(store: Store, chainId: bigint, row: ActivityRow): Record<string, unknown> | null {
  const d = row.data ?? {};
  const sub = row.subscriber === null ? undefined : store.subscription(row.plan, row.subscriber);
  const ref = row.kind === "subscribed" ? row.ref : (sub?.ref ?? null);
  const base: Record<string, unknown> = {
    chainId: chainId.toString(), plan: row.plan, subscriber: row.subscriber, token: store.plan(row.plan)?.token ?? null,
    txHash: row.txHash, block: row.block.toString(), logIndex: row.logIndex,
  };
  // The merchant's ref belongs to a subscription; a plan's own events have none.
  if (row.subscriber !== null) base.ref = ref;
  switch (row.kind) {
    case "subscribed":
      return { ...base, maxAmount: d.maxAmount, startedAt: num(d.startedAt), nextChargeAt: num(d.nextChargeAt), trial: d.trial === "true" };
    case "charged":
      return { ...base, amount: String(row.amount), periodIndex: row.periodIndex, nextChargeAt: num(d.nextChargeAt) };
    case "charge_failed":
      return { ...base, reason: row.reason, dueAt: sub?.nextChargeAt ?? null };
    case "cancelled": {
      const owner = store.plan(row.plan)?.owner;
      const by = d.by ?? "";
      return { ...base, by, cancelledBy: by === row.subscriber ? "subscriber" : by === owner ? "owner" : "other", paidThrough: num(d.paidThrough) };
    }
    case "paused":
      return { ...base, pausedAt: num(d.pausedAt) };
    case "resumed":
      return { ...base, nextChargeAt: num(d.nextChargeAt), pausedForSeconds: num(d.pausedFor) };
    case "max_amount_updated":
      return { ...base, oldMaxAmount: d.oldMaxAmount, newMaxAmount: d.newMaxAmount };
    case "usage_charged":
      return {
        ...base, amount: String(row.amount), usage: String(row.usage), fromCredits: String(row.fromCredits), cycleIndex: row.periodIndex,
        usageRef: row.ref, nextChargeAt: num(d.nextChargeAt),
      };
    case "usage_failed":
      return { ...base, reason: row.reason, usage: String(row.usage), usageRef: row.ref };
    case "plan_status_changed":
      return { ...base, oldStatus: PLAN_STATUS[num(d.oldStatus)] ?? d.oldStatus, newStatus: PLAN_STATUS[num(d.newStatus)] ?? d.newStatus };
    case "payee_changed":
      return { ...base, oldPayee: d.oldPayee, newPayee: d.newPayee };
    default:
      return null;
  }
}

/** Writes the webhook event of one freshly indexed activity row into the outbox (the caller's store
 * transaction): a no-op for a kind that is not sent and for an id already there. */
export function recordChainEvent(store: Store, chainId: bigint, row: ActivityRow, nowMs: number): void {
  const type = CHAIN_EVENT_TYPES[row.kind];
  if (type === undefined) return;
  const payload = chainFacts(store, chainId, row);
  if (payload === null) return;
  store.addWebhookEvent({
    id: chainEventId(chainId, row.txHash, row.logIndex, type), type, plan: row.plan, subscriber: row.subscriber,
    occurredAt: row.time, block: row.block, payload, createdAt: nowMs,
  });
}

export const isoSeconds = (seconds: number): string => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");

/** A reason name (ChargeReason) from the facts, kept as it is only if it is one the ABI knows. */
const reasonOf = (v: unknown): string => (typeof v === "string" && /^[A-Za-z]{1,40}$/.test(v) ? v : reasonName(255));

/** The body of one event: `{ type, timestamp, data }`, JSON. Deterministic for the facts, the token
 * and the links: every attempt of one event sends the same bytes. */
export function renderEvent(event: { type: string; occurredAt: number; payload: Record<string, unknown> }, token: TokenView | null, links: Links): string {
  const data: Record<string, unknown> = {};
  const facts = event.payload;
  for (const [key, value] of Object.entries(facts)) {
    if (key === "token" || key === "ref" || key === "usageRef") continue;
    if ((AMOUNT_KEYS as readonly string[]).includes(key) && value !== null && value !== undefined) {
      data[key] = String(value);
      data[`${key}Decimal`] = token?.decimals === null || token === null ? null : decimal(BigInt(String(value)), token.decimals);
    } else if ((TIME_KEYS as readonly string[]).includes(key)) {
      data[key] = typeof value === "number" && value > 0 ? isoSeconds(value) : null;
    } else if (key === "priceUsd" && typeof value === "string") {
      data.priceUsd = value;
      data.priceUsdDecimal = usdUnits(BigInt(value));
    } else if (key === "reason") {
      data[key] = value === null ? null : reasonOf(value);
    } else {
      data[key] = value;
    }
  }
  if ("ref" in facts) {
    const ref = facts.ref as string | null;
    data.ref = refText(ref);
    data.refHex = ref === null || /^0x0*$/.test(ref) ? null : ref;
  }
  if ("usageRef" in facts) data.usageRef = refText(facts.usageRef as string | null);
  if (token !== null) data.token = { address: token.address, symbol: token.symbol, decimals: token.decimals };
  const plan = typeof facts.plan === "string" ? facts.plan : null;
  const subscriber = typeof facts.subscriber === "string" ? facts.subscriber : null;
  const linkOut: Record<string, string> = {};
  // The checkout (sign up again) and the self-service page (approve more, raise the max, cancel) apply to a
  // subscription's events, not to a plan's own.
  if (links.checkoutUrl !== null && plan !== null && !event.type.startsWith("plan.")) linkOut.checkout = withQuery(links.checkoutUrl, { plan });
  if (links.portalUrl !== null && plan !== null && subscriber !== null) linkOut.portal = withQuery(links.portalUrl, { plan, subscriber });
  if (Object.keys(linkOut).length > 0) data.links = linkOut;
  return JSON.stringify({ type: event.type, timestamp: isoSeconds(event.occurredAt), data });
}

function decimal(amount: bigint, decimals: number): string {
  const text = formatUnits(amount, decimals);
  return text.endsWith(".0") ? text.slice(0, -2) : text;
}

function withQuery(base: string, params: Record<string, string>): string {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

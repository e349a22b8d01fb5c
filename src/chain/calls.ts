// Typed calls to the plan contracts through the keeper's ABI.
import { meteredPlanInterface, planInterface } from "./abi.ts";
import type { Rpc } from "./rpc.ts";

export function encodeChargeMany(subscribers: string[]): string {
  return planInterface.encodeFunctionData("chargeMany", [subscribers]);
}

/** `chargeabilityMany(subscribers)` at `block`: one reason code per subscriber. */
export async function chargeabilityMany(rpc: Rpc, plan: string, subscribers: string[], block: bigint): Promise<number[]> {
  const data = planInterface.encodeFunctionData("chargeabilityMany", [subscribers]);
  const result = await rpc.ethCall(plan, data, block);
  const [reasons] = planInterface.decodeFunctionResult("chargeabilityMany", result);
  return (reasons as bigint[]).map(Number);
}

export async function isKeeperCall(rpc: Rpc, plan: string, account: string, block: bigint): Promise<boolean> {
  const result = await rpc.ethCall(plan, planInterface.encodeFunctionData("isKeeper", [account]), block);
  return planInterface.decodeFunctionResult("isKeeper", result)[0] as boolean;
}

// --- metered plans (`recur usage` only) -------------------------------------------------------

/** A metered plan's stored subscription, as `subscriptionOf` returns it (times in unix seconds). */
export interface StoredSubscription {
  maxAmount: bigint;
  nextChargeAt: bigint;
  startedAt: bigint;
  pausedAt: bigint;
  periodsPaid: bigint;
}

/** What `usageChargeability(subscriber, usage)` answers: the reason code and the split it would make. */
export interface UsageChargeability {
  reason: number;
  fromCredits: bigint;
  pulled: bigint;
}

async function meteredView(rpc: Rpc, plan: string, name: string, args: unknown[], block: bigint) {
  const result = await rpc.ethCall(plan, meteredPlanInterface.encodeFunctionData(name, args), block);
  return meteredPlanInterface.decodeFunctionResult(name, result);
}

export function encodeChargeUsageMany(subscribers: string[], usages: bigint[], usageRefs: string[]): string {
  return meteredPlanInterface.encodeFunctionData("chargeUsageMany", [subscribers, usages, usageRefs]);
}

export async function billingModeCall(rpc: Rpc, plan: string, block: bigint): Promise<number> {
  return Number((await meteredView(rpc, plan, "billingMode", [], block))[0] as bigint);
}

export async function isReporterCall(rpc: Rpc, plan: string, account: string, block: bigint): Promise<boolean> {
  return (await meteredView(rpc, plan, "isReporter", [account], block))[0] as boolean;
}

export async function perCycleCapCall(rpc: Rpc, plan: string, block: bigint): Promise<bigint> {
  return (await meteredView(rpc, plan, "perCycleCap", [], block))[0] as bigint;
}

export async function tokenCall(rpc: Rpc, plan: string, block: bigint): Promise<string> {
  return String((await meteredView(rpc, plan, "token", [], block))[0]).toLowerCase();
}

export async function usageChargeabilityCall(rpc: Rpc, plan: string, subscriber: string, usage: bigint, block: bigint): Promise<UsageChargeability> {
  const [, reason, fromCredits, pulled] = await meteredView(rpc, plan, "usageChargeability", [subscriber, usage], block);
  return { reason: Number(reason as bigint), fromCredits: fromCredits as bigint, pulled: pulled as bigint };
}

export async function subscriptionOfCall(rpc: Rpc, plan: string, subscriber: string, block: bigint): Promise<StoredSubscription> {
  const [sub] = await meteredView(rpc, plan, "subscriptionOf", [subscriber], block);
  const s = sub as { maxAmount: bigint; nextChargeAt: bigint; startedAt: bigint; pausedAt: bigint; periodsPaid: bigint };
  return { maxAmount: s.maxAmount, nextChargeAt: s.nextChargeAt, startedAt: s.startedAt, pausedAt: s.pausedAt, periodsPaid: s.periodsPaid };
}

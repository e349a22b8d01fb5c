// Discovery: plans from the factory's PlanCreated events, subscriptions and their schedule from each
// plan's events, into the store. Only blocks with the configured number of confirmations are read; a
// checkpoint (block number and hash) lets a restart resume where it stopped and lets a reorg be seen:
// if the chain's hash at the checkpoint changed, everything above the last block both agree on is
// rolled back and the remaining logs are replayed.
import type { LogDescription } from "ethers";

import { BILLING_FIXED, factoryInterface, PLAN_EVENT_TOPICS, planInterface, reasonName } from "./abi.ts";
import type { Logger } from "./log.ts";
import type { Block, Log, Rpc } from "./rpc.ts";
import type { StoredLog, Store } from "./store.ts";

export interface IndexerDeps {
  rpc: Rpc;
  store: Store;
  log: Logger;
  factory: string;
  factoryBlock: bigint;
  confirmations: number;
  logRange: bigint;
}

export interface SyncResult {
  from: bigint;
  to: bigint;
  logs: number;
  rolledBackTo?: bigint;
}

/** How many plan addresses go into one eth_getLogs filter. */
const ADDRESSES_PER_QUERY = 500;
const PLAN_CREATED = factoryInterface.getEvent("PlanCreated")!.topicHash;

/** The last final block at `head`: one with `confirmations` blocks on top of it, itself included. */
export const finalBlock = (head: bigint, confirmations: number): bigint => head - BigInt(Math.max(confirmations, 1) - 1);

export async function sync(deps: IndexerDeps, head: Block): Promise<SyncResult> {
  const { rpc, store, log } = deps;
  let rolledBackTo: bigint | undefined;
  const checkpoint = store.lastCheckpoint();
  if (checkpoint !== undefined) {
    // A head below the checkpoint means the chain switched to a shorter branch: a reorg as well.
    const onChain = checkpoint.block <= head.number ? await rpc.block(checkpoint.block) : undefined;
    if (onChain?.hash !== checkpoint.hash) {
      rolledBackTo = await findCommonAncestor(deps, head.number);
      log.warn("reorg", { checkpoint: checkpoint.block, rolledBackTo });
      store.transaction(() => {
        store.rollbackAbove(rolledBackTo!);
        for (const l of store.allLogs()) apply(store, l);
      });
    }
  }

  const target = finalBlock(head.number, deps.confirmations);
  const resumeAt = store.lastCheckpoint();
  let from = resumeAt === undefined ? deps.factoryBlock : resumeAt.block + 1n;
  const start = from;
  let count = 0;
  while (from <= target) {
    const to = from + deps.logRange - 1n < target ? from + deps.logRange - 1n : target;
    const toBlock = to === head.number ? head : await rpc.block(to);
    const created = await rpc.logs({ address: deps.factory, topics: [PLAN_CREATED], fromBlock: from, toBlock: to });
    const plans = new Set(store.planAddresses());
    for (const l of created) {
      const plan = fixedPlanOf(l);
      if (plan !== undefined) plans.add(plan);
    }
    const planLogs: Log[] = [];
    const addresses = [...plans];
    for (let i = 0; i < addresses.length; i += ADDRESSES_PER_QUERY) {
      const chunk = addresses.slice(i, i + ADDRESSES_PER_QUERY);
      planLogs.push(...(await rpc.logs({ address: chunk, topics: [PLAN_EVENT_TOPICS], fromBlock: from, toBlock: to })));
    }
    const ordered = [...created, ...planLogs].sort((a, b) =>
      a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
    );
    store.transaction(() => {
      for (const l of ordered) {
        store.addLog(l);
        apply(store, l);
      }
      store.addCheckpoint(to, toBlock.hash);
    });
    count += ordered.length;
    log.debug("indexed", { from, to, logs: ordered.length });
    from = to + 1n;
  }
  return { from: start, to: target, logs: count, ...(rolledBackTo === undefined ? {} : { rolledBackTo }) };
}

/** The highest stored checkpoint at or below `head` whose hash the chain still has; below all of them,
 * the block before the factory's. */
async function findCommonAncestor(deps: IndexerDeps, head: bigint): Promise<bigint> {
  for (const cp of deps.store.checkpoints()) {
    if (cp.block > head) continue;
    const onChain = await deps.rpc.block(cp.block);
    if (onChain.hash === cp.hash) return cp.block;
  }
  deps.log.warn("reorg_below_checkpoints", { rescanFrom: deps.factoryBlock });
  return deps.factoryBlock - 1n;
}

/** The plan a PlanCreated log announces, if it is a fixed plan (the only kind the keeper charges). */
function fixedPlanOf(log: StoredLog): string | undefined {
  const parsed = factoryInterface.parseLog(log)!;
  const terms = parsed.args.terms as unknown as { billingMode: bigint };
  return Number(terms.billingMode) === BILLING_FIXED ? String(parsed.args.plan).toLowerCase() : undefined;
}

/** Applies one event to the derived tables (plans, subscriptions). Idempotent for a given log. */
export function apply(store: Store, log: StoredLog): void {
  if (log.topics[0] === PLAN_CREATED) {
    const e = factoryInterface.parseLog(log)!;
    // Metered plans are not the keeper's to charge: it never indexes them, so it never calls them.
    if (fixedPlanOf(log) === undefined) return;
    const terms = e.args.terms as unknown as Record<string, bigint | boolean | string>;
    store.upsertPlan({
      address: String(e.args.plan).toLowerCase(),
      owner: String(e.args.owner).toLowerCase(),
      token: String(e.args.token).toLowerCase(),
      price: BigInt(terms.price as bigint),
      period: Number(terms.period),
      grace: Number(terms.gracePeriod),
      keeperFeeBps: Number(terms.keeperFeeBps),
      keeperRestricted: terms.keeperRestricted === true,
      status: 0,
      createdBlock: log.blockNumber,
    });
    return;
  }
  const e: LogDescription | null = planInterface.parseLog(log);
  if (e === null) return;
  const plan = log.address.toLowerCase();
  if (e.name === "PlanStatusChanged") {
    store.setPlanStatus(plan, Number(e.args.newStatus));
    return;
  }
  if (e.name === "KeeperAuthorized") return;
  const subscriber = String(e.args.subscriber).toLowerCase();
  const current = store.subscription(plan, subscriber);
  // Whatever can change the outcome of the next charge ends the retry schedule of the last one.
  if (e.name !== "ChargeFailed" && e.name !== "Paused") store.clearRetry(plan, subscriber);
  switch (e.name) {
    case "Subscribed":
      store.putSubscription({
        plan,
        subscriber,
        state: "live",
        nextChargeAt: Number(e.args.nextChargeAt),
        maxAmount: BigInt(e.args.maxAmount as bigint),
        periodsPaid: current?.periodsPaid ?? 0,
        lastReason: null,
      });
      return;
    case "Charged":
      if (current === undefined) return;
      store.putSubscription({ ...current, nextChargeAt: Number(e.args.nextChargeAt), periodsPaid: Number(e.args.periodIndex) + 1, lastReason: null });
      return;
    case "ChargeFailed":
      if (current !== undefined) store.setLastReason(plan, subscriber, reasonName(e.args.reason as bigint));
      return;
    case "Cancelled":
      if (current !== undefined) store.putSubscription({ ...current, state: "cancelled", nextChargeAt: Number(e.args.paidThrough) });
      return;
    case "Paused":
      if (current !== undefined) store.putSubscription({ ...current, state: "paused" });
      return;
    case "Resumed":
      if (current !== undefined) store.putSubscription({ ...current, state: "live", nextChargeAt: Number(e.args.nextChargeAt) });
      return;
    case "MaxAmountUpdated":
      if (current !== undefined) store.putSubscription({ ...current, maxAmount: BigInt(e.args.newMaxAmount as bigint) });
      return;
    default:
      return;
  }
}

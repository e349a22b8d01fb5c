// The index: every plan (fixed and metered) from the factory's PlanCreated events, and every event of
// every plan, into the store: plans with their terms, subscriptions with their schedule and life so far,
// and one activity row per event (with its transaction hash and block time). The keeper's charging
// passes read it (fixed plans only: metered plans are billed by their owner, `recur usage`), and so do
// the merchant reports (src/reports/), usage billing and webhooks (each event's webhook is written into
// the store's outbox in the same transaction as its activity row: src/webhooks/events.ts). Only blocks with the configured number of confirmations are read; a
// checkpoint (block number and hash) lets a restart resume where it stopped and lets a reorg be seen:
// if the chain's hash at the checkpoint changed, everything above the last block both agree on is
// rolled back and the remaining logs are replayed.
// The logs are read in pages: a block range whose logs are fetched, sorted and written in one store
// transaction with its checkpoint, then dropped. The range adapts: it halves when a provider refuses a
// request for its size (too many results, too many blocks) and after a page heavier than MAX_PAGE_LOGS,
// and doubles back after light pages, never above RECUR_LOG_RANGE. Memory is bounded by the page.
import type { Result } from "ethers";

import { BILLING_METERED, factoryInterface, PLAN_EVENT_TOPICS, PLAN_RETIRED, parsePlanEvent, reasonName } from "../chain/abi.ts";
import { errorMessage, KeeperError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { RpcError } from "../chain/rpc.ts";
import type { Block, Log, Rpc } from "../chain/rpc.ts";
import type { ActivityKind, ActivityRow, StoredLog, Store, SubscriptionRow } from "./store.ts";
import { recordChainEvent } from "../webhooks/events.ts";

export interface IndexerDeps {
  rpc: Rpc;
  store: Store;
  log: Logger;
  factory: string;
  factoryBlock: bigint;
  confirmations: number;
  /** The widest block range of one page (RECUR_LOG_RANGE): the adaptive range never exceeds it. */
  logRange: bigint;
  /** A page over this many logs makes the next page's range smaller; default MAX_PAGE_LOGS. */
  maxPageLogs?: number;
  /** The chain's id: part of every webhook event's id (src/webhooks/ids.ts). */
  chainId: bigint;
  /** Wall clock, unix ms (when a webhook event was recorded); default Date.now. */
  clock?: () => number;
}

/** What the indexer needs to write each event's webhook into the outbox, in the page's transaction. */
export interface Outbox {
  chainId: bigint;
  nowMs: number;
}

export interface SyncResult {
  from: bigint;
  to: bigint;
  logs: number;
  /** Pages written (each one store transaction with its checkpoint). */
  pages: number;
  /** How often the block range changed (shrunk on a provider's limit or a heavy page, grown back). */
  rangeChanges: number;
  /** The block range in use at the end. */
  logRange: bigint;
  rolledBackTo?: bigint;
}

/** How many plan addresses go into one eth_getLogs filter. */
const ADDRESSES_PER_QUERY = 500;
/** A page holding more logs than this halves the next page's range, so that memory is bounded by the
 * page even on a node that caps nothing (10,000 is also the most common provider cap on results). */
export const MAX_PAGE_LOGS = 10_000;
/** The range of the very first page (an empty store): the density of the chain ahead is unknown, and
 * one wide page of a dense chain is the whole chain. Light pages double it up to logRange; the range
 * reached is kept in the store (meta `logRange`), and the next sync starts there. */
const FIRST_RANGE = 16n;
const RANGE_KEY = "logRange";
/** Light pages (at most half of the bound) in a row before the range doubles. */
const GROW_AFTER = 2;
const PLAN_CREATED = factoryInterface.getEvent("PlanCreated")!.topicHash;

/** The last final block at `head`: one with `confirmations` blocks on top of it, itself included. */
export const finalBlock = (head: bigint, confirmations: number): bigint => head - BigInt(Math.max(confirmations, 1) - 1);

/** Why a provider refused an eth_getLogs request, if it refused it for its size: "results" (too many
 * logs, or a response too large or too slow to build) or "range" (too many blocks). Undefined for any
 * other error, which the caller treats as a real failure. The messages are the providers' own. */
export function logLimitOf(error: unknown): "results" | "range" | undefined {
  if (!(error instanceof RpcError)) return undefined;
  const text = `${error.message} ${error.data === undefined ? "" : JSON.stringify(error.data)}`;
  for (const [pattern, kind] of LOG_LIMITS) if (pattern.test(text)) return kind;
  // -32005 is "limit exceeded" (EIP-1474): on eth_getLogs, a cap on results or time.
  if (error.rpcCode === -32005) return "results";
  // -32602 / -32600 ("invalid params / request") name the range when that is what was refused.
  if ((error.rpcCode === -32602 || error.rpcCode === -32600) && /\b(block )?range\b|\bblocks\b/i.test(text)) return "range";
  return undefined;
}

const LOG_LIMITS: [RegExp, "results" | "range"][] = [
  [/query returned more than [\d,]+ results/i, "results"], // Infura, geth/Erigon-based nodes, zkSync, Polygon zkEVM
  [/log response size exceeded/i, "results"], // Alchemy
  [/logs matched by query exceeds limit of \d+/i, "results"], // Arbitrum (Nitro)
  [/query exceeds max results/i, "results"], // LlamaRPC, Ankr
  [/backend response too large/i, "results"], // Optimism
  [/response size should not greater than \d+ bytes/i, "results"], // 1RPC
  [/response (size )?(is )?too (large|big)|response size exceeded/i, "results"],
  [/too many (results|logs)/i, "results"], // Nethermind-style
  [/(log )?query (timed out|timeout exceeded)/i, "results"], // geth's filter timeout, Alchemy
  [/limited to a [\d,.]+ (block )?range/i, "range"], // QuickNode: "eth_getLogs is limited to a 10,000 range"
  [/limited to [\d,.]+ blocks?/i, "range"], // BlockPI
  [/block range (is )?too (wide|large)/i, "range"], // Ankr, Moonbeam, Base, Optimism
  [/range (is )?too large/i, "range"], // Merkle and others
  [/exceeds? (the )?max(imum)? block range/i, "range"], // "exceed maximum block range: 5000", Hyperliquid
  [/range \d+ exceeds limit of \d+/i, "range"], // Infura (live API)
  [/range \d+ is bigger than range limit \d+/i, "range"], // Tenderly
  [/requested too many blocks from \d+ to \d+/i, "range"], // Avalanche
  [/block range limit exceeded/i, "range"], // Chainstack
  [/please limit the query to at most [\d,.]+ blocks/i, "range"], // Coinbase
  [/max(imum)? (block )?range:? \d+|block range (greater than|exceeds) [\d,.]+/i, "range"], // Cloudflare, PublicNode, Swell, Somnia
  [/maximum allowed number of requested blocks/i, "range"], // thirdweb
  [/up to a [\d,.]+ block range/i, "range"], // Aurora
  [/blocks distance/i, "range"], // Ankr (TAC)
];

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
        const outbox = { chainId: deps.chainId, nowMs: (deps.clock ?? Date.now)() };
        for (const l of store.logs()) apply(store, l, outbox);
      });
    }
  }

  const target = finalBlock(head.number, deps.confirmations);
  const resumeAt = store.lastCheckpoint();
  let from = resumeAt === undefined ? deps.factoryBlock : resumeAt.block + 1n;
  const start = from;
  const bound = deps.maxPageLogs ?? MAX_PAGE_LOGS;
  const kept = store.getMeta(RANGE_KEY);
  const startRange = kept === undefined ? FIRST_RANGE : BigInt(kept);
  let range = deps.logRange < startRange ? deps.logRange : startRange;
  let light = 0;
  let count = 0;
  let pages = 0;
  let rangeChanges = 0;
  const change = (next: bigint, reason: string) => {
    log.info("log_range", { from, old: range, new: next, reason });
    range = next;
    rangeChanges++;
    light = 0;
  };
  while (from <= target) {
    const to = from + range - 1n < target ? from + range - 1n : target;
    let ordered: Log[];
    try {
      ordered = await page(deps, from, to);
    } catch (error) {
      const limit = logLimitOf(error);
      if (limit === undefined) throw error;
      if (to === from) {
        throw new KeeperError("RPC_ERROR", `eth_getLogs: the node refuses the logs of block ${from} alone (${errorMessage(error)}); no smaller range exists`, { cause: error });
      }
      // Retry the same `from` with half the blocks.
      change((to - from + 1n) / 2n, limit === "range" ? "range_refused" : "results_refused");
      continue;
    }
    const toBlock = to === head.number ? head : await rpc.block(to);
    const stamped = await withBlockTimes(rpc, ordered, toBlock);
    store.transaction(() => {
      const outbox = { chainId: deps.chainId, nowMs: (deps.clock ?? Date.now)() };
      for (const l of stamped) {
        store.addLog(l);
        apply(store, l, outbox);
      }
      store.addCheckpoint(to, toBlock.hash);
      store.setMeta(RANGE_KEY, range.toString());
    });
    count += ordered.length;
    pages++;
    log.debug("indexed", { from, to, logs: ordered.length });
    from = to + 1n;
    if (ordered.length > bound && range > 1n) {
      change(range / 2n, "heavy_page");
    } else if (ordered.length <= bound / 2 && range < deps.logRange && ++light >= GROW_AFTER && from <= target) {
      change(range * 2n < deps.logRange ? range * 2n : deps.logRange, "light_pages");
    }
  }
  if (rangeChanges > 0) store.setMeta(RANGE_KEY, range.toString());
  if (rangeChanges > 0) log.info("sync", { from: start, to: target, logs: count, pages, rangeChanges, logRange: range });
  return { from: start, to: target, logs: count, pages, rangeChanges, logRange: range, ...(rolledBackTo === undefined ? {} : { rolledBackTo }) };
}

/** One page: the factory's PlanCreated logs and every known plan's logs in [from, to], in chain order. */
async function page(deps: IndexerDeps, from: bigint, to: bigint): Promise<Log[]> {
  const { rpc, store } = deps;
  const created = await rpc.logs({ address: deps.factory, topics: [PLAN_CREATED], fromBlock: from, toBlock: to });
  const plans = new Set(store.planAddresses());
  for (const l of created) plans.add(String(factoryInterface.parseLog(l)!.args.plan).toLowerCase());
  const ordered: Log[] = created;
  const addresses = [...plans];
  for (let i = 0; i < addresses.length; i += ADDRESSES_PER_QUERY) {
    const chunk = addresses.slice(i, i + ADDRESSES_PER_QUERY);
    // A loop, not push(...answer): a spread of a large answer overflows the call stack.
    for (const l of await rpc.logs({ address: chunk, topics: [PLAN_EVENT_TOPICS], fromBlock: from, toBlock: to })) ordered.push(l);
  }
  return ordered.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
}

/** How many blocks are fetched at once for their timestamps. */
const BLOCK_TIME_CONCURRENCY = 8;

/** The logs with their block's time: the node's own `blockTimestamp` when it adds one to its logs,
 * otherwise each distinct block fetched once (a few at a time; `known`, the page's last block, is
 * already at hand). */
async function withBlockTimes(rpc: Rpc, logs: Log[], known: Block): Promise<StoredLog[]> {
  const times = new Map<bigint, number>([[known.number, Number(known.timestamp)]]);
  const missing: bigint[] = [];
  for (const l of logs) {
    if (l.blockTimestamp !== undefined) times.set(l.blockNumber, l.blockTimestamp);
  }
  for (const l of logs) {
    if (!times.has(l.blockNumber) && missing.at(-1) !== l.blockNumber) missing.push(l.blockNumber);
  }
  for (let i = 0; i < missing.length; i += BLOCK_TIME_CONCURRENCY) {
    const blocks = await Promise.all(missing.slice(i, i + BLOCK_TIME_CONCURRENCY).map((n) => rpc.block(n)));
    for (const b of blocks) times.set(b.number, Number(b.timestamp));
  }
  return logs.map((l) => ({
    blockNumber: l.blockNumber,
    logIndex: l.logIndex,
    blockHash: l.blockHash,
    address: l.address,
    topics: l.topics,
    data: l.data,
    transactionHash: l.transactionHash,
    blockTime: l.blockTimestamp ?? times.get(l.blockNumber)!,
  }));
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

const ZERO_REF = "0x" + "0".repeat(64);
/** The events that end a subscriber's retry schedule (the keeper's, on fixed plans). */
const CLEARS_RETRY = new Set(["Subscribed", "Charged", "Cancelled", "Resumed", "MaxAmountUpdated"]);
const str = (v: unknown): string => (typeof v === "string" ? v.toLowerCase() : String(v));

/** Applies one event to the derived tables (plans, subscriptions, blocks, activity), in chain order,
 * and writes its webhook event into the outbox (same transaction). Idempotent for a given log: the
 * activity row is keyed by (block, log index), what accumulates (total paid) only moves when that row
 * is new, and the webhook event is keyed by its stable id. */
export function apply(store: Store, log: StoredLog, outbox: Outbox): void {
  applyEvent(store, log, outbox);
}

/** Applies a settled transaction's log (the keeper's own charges, before the indexer reaches their
 * block) to the subscription state only: no activity row and no total, which the indexer records once
 * the block is final. */
export function applySettled(store: Store, log: Log): void {
  applyEvent(store, { ...log, blockTime: log.blockTimestamp ?? 0 }, null);
}

/** `outbox` null: a settled transaction's log (no activity row, no webhook: the indexer records both). */
function applyEvent(store: Store, log: StoredLog, outbox: Outbox | null): void {
  const activity = (kind: ActivityKind, plan: string, subscriber: string | null, fields: Partial<ActivityRow> = {}): boolean => {
    if (outbox === null) return false;
    const row: ActivityRow = {
      block: log.blockNumber, logIndex: log.logIndex, txHash: log.transactionHash, time: log.blockTime, plan, subscriber, kind,
      amount: null, periodIndex: null, reason: null, usage: null, fromCredits: null, ref: null, data: null, ...fields,
    };
    const fresh = store.addActivity(row);
    if (fresh) recordChainEvent(store, outbox.chainId, row, outbox.nowMs);
    return fresh;
  };

  if (log.topics[0] === PLAN_CREATED) {
    const e = factoryInterface.parseLog(log)!;
    const terms = (e.args.terms as Result).toObject() as Record<string, bigint | boolean | string>;
    const plan = str(e.args.plan);
    store.upsertPlan({
      address: plan,
      owner: str(e.args.owner),
      token: str(e.args.token),
      price: BigInt(terms.price as bigint),
      period: Number(terms.period),
      grace: Number(terms.gracePeriod),
      keeperFeeBps: Number(terms.keeperFeeBps),
      keeperRestricted: terms.keeperRestricted === true,
      status: 0,
      createdBlock: log.blockNumber,
      billingMode: Number(terms.billingMode),
      payee: str(terms.payee),
      trial: Number(terms.trialPeriod),
      priceFeed: str(terms.priceFeed),
      maxPriceAge: Number(terms.maxPriceAge),
      allowanceBufferBps: Number(terms.allowanceBufferBps),
      perCycleCap: BigInt(terms.perCycleCap as bigint),
      freeCredits: BigInt(terms.freeCredits as bigint),
      createdAt: log.blockTime,
    });
    const data: Record<string, string> = { owner: str(e.args.owner) };
    for (const [key, value] of Object.entries(terms)) data[key] = str(value);
    activity("plan_created", plan, null, { data });
    return;
  }
  const e = parsePlanEvent(log);
  if (e === null) return;
  const plan = log.address.toLowerCase();
  const a = e.args;
  switch (e.name) {
    case "PlanStatusChanged":
      store.setPlanStatus(plan, Number(a.newStatus));
      activity("plan_status_changed", plan, null, { data: { oldStatus: str(a.oldStatus), newStatus: str(a.newStatus) } });
      return;
    case "PayeeChanged":
      store.setPlanPayee(plan, str(a.newPayee));
      activity("payee_changed", plan, null, { data: { oldPayee: str(a.oldPayee), newPayee: str(a.newPayee) } });
      return;
    case "OwnershipTransferred":
      // The plan's constructor emits one (from the zero address) before the factory's PlanCreated, which
      // names the owner: skipped. Every later one is an accepted two-step transfer.
      if (/^0x0{40}$/.test(str(a.previousOwner))) return;
      store.setPlanOwner(plan, str(a.newOwner));
      activity("owner_changed", plan, null, { data: { previousOwner: str(a.previousOwner), newOwner: str(a.newOwner) } });
      return;
    case "KeeperAuthorized":
      activity("keeper_authorized", plan, null, { data: { keeper: str(a.keeper), authorized: str(a.authorized) } });
      return;
    case "ReporterAuthorized":
      activity("reporter_authorized", plan, null, { data: { reporter: str(a.reporter), authorized: str(a.authorized) } });
      return;
    default:
      break;
  }
  const subscriber = str(a.subscriber);
  const current = store.subscription(plan, subscriber);
  // Whatever can change the outcome of the next charge ends the retry schedule of the last one.
  if (CLEARS_RETRY.has(e.name)) store.clearRetry(plan, subscriber);
  const put = (next: SubscriptionRow) => store.putSubscription(next);
  switch (e.name) {
    case "Subscribed": {
      const ref = String(a.ref);
      activity("subscribed", plan, subscriber, {
        ref,
        data: { maxAmount: str(a.maxAmount), startedAt: str(a.startedAt), nextChargeAt: str(a.nextChargeAt), trial: str(a.trial) },
      });
      put({
        plan,
        subscriber,
        state: "live",
        nextChargeAt: Number(a.nextChargeAt),
        maxAmount: BigInt(a.maxAmount as bigint),
        periodsPaid: current?.periodsPaid ?? 0,
        lastReason: null,
        ref: ref === "" ? ZERO_REF : ref,
        startedAt: Number(a.startedAt),
        trial: a.trial === true,
        totalPaid: current?.totalPaid ?? 0n,
        pausedAt: 0,
        cancelledBy: null,
        endedAt: 0,
        blocked: store.isBlocked(plan, subscriber),
        // A sign-up needs an active plan: no cycle of it started before a retirement.
        beforeRetirement: false,
      });
      return;
    }
    case "Charged": {
      const amount = BigInt(a.amount as bigint);
      const fresh = activity("charged", plan, subscriber, { amount, periodIndex: Number(a.periodIndex), data: { nextChargeAt: str(a.nextChargeAt) } });
      if (current !== undefined) {
        put({ ...current, nextChargeAt: Number(a.nextChargeAt), periodsPaid: Number(a.periodIndex) + 1, lastReason: null, totalPaid: current.totalPaid + (fresh ? amount : 0n) });
      }
      return;
    }
    case "UsageCharged": {
      const pulled = BigInt(a.pulled as bigint);
      const fresh = activity("usage_charged", plan, subscriber, {
        amount: pulled, periodIndex: Number(a.cycleIndex), usage: BigInt(a.usage as bigint), fromCredits: BigInt(a.fromCredits as bigint),
        ref: String(a.usageRef), data: { nextChargeAt: str(a.nextChargeAt) },
      });
      if (current !== undefined) {
        put({
          ...current, nextChargeAt: Number(a.nextChargeAt), periodsPaid: Number(a.cycleIndex) + 1, lastReason: null,
          totalPaid: current.totalPaid + (fresh ? pulled : 0n), beforeRetirement: false,
        });
      }
      return;
    }
    case "ChargeFailed": {
      const reason = reasonName(a.reason as bigint);
      activity("charge_failed", plan, subscriber, { reason });
      if (current !== undefined) store.setLastReason(plan, subscriber, reason);
      return;
    }
    case "UsageChargeFailed": {
      const reason = reasonName(a.reason as bigint);
      activity("usage_failed", plan, subscriber, { reason, usage: BigInt(a.usage as bigint), ref: String(a.usageRef) });
      if (current !== undefined) store.setLastReason(plan, subscriber, reason);
      return;
    }
    case "Cancelled":
      activity("cancelled", plan, subscriber, { data: { by: str(a.by), paidThrough: str(a.paidThrough) } });
      if (current !== undefined) {
        put({
          ...current, state: "cancelled", nextChargeAt: Number(a.paidThrough), cancelledBy: str(a.by), endedAt: log.blockTime, pausedAt: 0,
          beforeRetirement: unpausedBeforeRetirement(store, plan, current),
        });
      }
      return;
    case "Paused":
      activity("paused", plan, subscriber, { data: { pausedAt: str(a.pausedAt) } });
      if (current !== undefined) put({ ...current, state: "paused", pausedAt: Number(a.pausedAt) });
      return;
    case "Resumed":
      activity("resumed", plan, subscriber, { data: { nextChargeAt: str(a.nextChargeAt), pausedFor: str(a.pausedFor) } });
      if (current !== undefined) {
        put({ ...current, state: "live", nextChargeAt: Number(a.nextChargeAt), pausedAt: 0, beforeRetirement: unpausedBeforeRetirement(store, plan, current) });
      }
      return;
    case "MaxAmountUpdated":
      activity("max_amount_updated", plan, subscriber, { data: { oldMaxAmount: str(a.oldMaxAmount), newMaxAmount: str(a.newMaxAmount) } });
      if (current !== undefined) put({ ...current, maxAmount: BigInt(a.newMaxAmount as bigint) });
      return;
    case "SubscriberBlockUpdated":
      activity(a.blocked === true ? "subscriber_blocked" : "subscriber_unblocked", plan, subscriber);
      store.setBlocked(plan, subscriber, a.blocked === true);
      return;
    case "AuthorizationsRevoked":
      activity("authorizations_revoked", plan, subscriber, { data: { nonce: str(a.nonce) } });
      return;
    case "KeeperFeePaid":
      activity("keeper_fee_paid", plan, subscriber, { amount: BigInt(a.fee as bigint), data: { keeper: str(a.keeper) } });
      return;
    case "CreditsGranted":
      activity("credits_granted", plan, subscriber, { data: { credits: str(a.credits) } });
      return;
    case "CycleWrittenOff":
      // writeOff only flags the ended subscription's last cycle as settled (nothing the row holds moves):
      // the address may subscribe afresh.
      activity("cycle_written_off", plan, subscriber, { periodIndex: Number(a.cycleIndex), data: { cycleEnd: str(a.cycleEnd) } });
      return;
    default:
      return;
  }
}

/** MeteredPlan._unpause: a pause ending (resume, or cancel while paused) on a retired metered plan marks the
 * cycle it froze, which had started before the retirement (its end, before the shift, less than a period
 * after it), so that the shift does not make it look like a cycle started after the retirement. */
function unpausedBeforeRetirement(store: Store, plan: string, current: SubscriptionRow): boolean {
  if (current.beforeRetirement || current.state !== "paused") return current.beforeRetirement;
  const p = store.plan(plan);
  if (p === undefined || p.billingMode !== BILLING_METERED || p.status !== PLAN_RETIRED) return false;
  const retiredAt = store.retiredAt(plan);
  return retiredAt !== null && current.nextChargeAt < retiredAt + p.period;
}

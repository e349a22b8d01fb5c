// Discovery: plans from the factory's PlanCreated events, subscriptions and their schedule from each
// plan's events, into the store. Only blocks with the configured number of confirmations are read; a
// checkpoint (block number and hash) lets a restart resume where it stopped and lets a reorg be seen:
// if the chain's hash at the checkpoint changed, everything above the last block both agree on is
// rolled back and the remaining logs are replayed.
// The logs are read in pages: a block range whose logs are fetched, sorted and written in one store
// transaction with its checkpoint, then dropped. The range adapts: it halves when a provider refuses a
// request for its size (too many results, too many blocks) and after a page heavier than MAX_PAGE_LOGS,
// and doubles back after light pages, never above RECUR_LOG_RANGE. Memory is bounded by the page.
import type { LogDescription } from "ethers";

import { BILLING_FIXED, factoryInterface, PLAN_EVENT_TOPICS, planInterface, reasonName } from "../chain/abi.ts";
import { errorMessage, KeeperError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { RpcError } from "../chain/rpc.ts";
import type { Block, Log, Rpc } from "../chain/rpc.ts";
import type { StoredLog, Store } from "./store.ts";

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
        for (const l of store.logs()) apply(store, l);
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
    store.transaction(() => {
      for (const l of ordered) {
        store.addLog(l);
        apply(store, l);
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
  for (const l of created) {
    const plan = fixedPlanOf(l);
    if (plan !== undefined) plans.add(plan);
  }
  const ordered: Log[] = created;
  const addresses = [...plans];
  for (let i = 0; i < addresses.length; i += ADDRESSES_PER_QUERY) {
    const chunk = addresses.slice(i, i + ADDRESSES_PER_QUERY);
    // A loop, not push(...answer): a spread of a large answer overflows the call stack.
    for (const l of await rpc.logs({ address: chunk, topics: [PLAN_EVENT_TOPICS], fromBlock: from, toBlock: to })) ordered.push(l);
  }
  return ordered.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
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

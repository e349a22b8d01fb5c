// One keeper pass: settle what a previous run left pending, index new confirmed events, find the
// subscriptions due now (by the stored nextChargeAt), re-check them against the chain at one block,
// and charge the ones that would succeed with chargeMany, in batches. Ends with one summary line.
//
// The factory is permissionless, so any plan here may be built to hurt the keeper. A failure in one
// plan's calls is that plan's alone: logged with the plan, counted, and the pass goes on with the
// others; a plan that keeps failing is quarantined (src/charging/backoff.ts). Plans take turns, one batch
// each per round, and each takes at most `maxPerPlan` subscribers per pass. A batch that fails for one
// item sets that item aside and sends the rest; one that fails for an unnamed reason is split until the
// failing items are found. A subscriber whose charge the chain refused is retried on the retry schedule,
// not on every pass; a plan whose every charge failed alike is backed off as a whole.
// An optional observer (src/ops/metrics.ts) is told the head and each item's and transaction's outcome
// as the pass goes; it changes nothing the pass does.
import { chargeabilityMany, encodeChargeMany, isKeeperCall } from "../chain/calls.ts";
import { BILLING_FIXED, PLAN_RETIRED, planInterface, reasonName } from "../chain/abi.ts";
import { lastTryAt, nextRetryAt, planBackoffUntil, quarantineUntil } from "./backoff.ts";
import type { BackoffConfig } from "./backoff.ts";
import { errorMessage, KeeperError } from "../errors.ts";
import { applySettled, sync } from "../index/indexer.ts";
import type { IndexerDeps } from "../index/indexer.ts";
import type { Logger } from "../log.ts";
import { refusal } from "./policy.ts";
import type { PlanLists } from "./policy.ts";
import type { Block, Log, Receipt, Rpc } from "../chain/rpc.ts";
import { RpcError } from "../chain/rpc.ts";
import type { Sender } from "../chain/sender.ts";
import type { PlanHealthRow, PlanRow, RetryRow, Store } from "../index/store.ts";

export interface PassDeps {
  rpc: Rpc;
  store: Store;
  log: Logger;
  sender: Sender | null;
  indexer: IndexerDeps;
  batchSize: number;
  /** Most subscribers of one plan charged in one pass. */
  maxPerPlan: number;
  shard: { index: number; count: number };
  lists: PlanLists;
  backoff: BackoffConfig;
  dryRun: boolean;
  clock: () => number;
  observer?: PassObserver;
}

/** One subscriber's outcome in a pass: `charged` and `failed` come from the Charged and ChargeFailed
 * events of our own receipts, `skipped` is the re-check at one block saying the charge would fail (so it
 * was not sent), `set_aside` a batch failing for this subscriber alone. */
export type ItemResult = "charged" | "failed" | "skipped" | "set_aside";

/** What a pass reports as it goes, beyond its summary (for metrics). */
export interface PassObserver {
  /** The head the pass works at (read once, at its start). */
  head(block: Block): void;
  /** One subscriber of `plan`: its result, the ChargeReason name of a failure or skip, and for a charge
   * how late it came, in seconds after its due time (null when the receipt was found after a restart). */
  item(plan: string, result: ItemResult, reason: string | null, lagSeconds: number | null): void;
  /** One chargeMany of ours mined: how many subscribers it carried (null when a restart found it in the
   * journal), and its receipt. */
  transaction(subscribers: number | null, receipt: Receipt): void;
}

export interface PassSummary {
  block: bigint;
  indexedLogs: number;
  due: number;
  sent: number;
  charged: number;
  failed: Record<string, number>;
  skipped: Record<string, number>;
  /** subscribers set aside in this pass (a batch failed for them alone) */
  setAside: number;
  /** plans whose calls failed in this pass */
  planFailures: number;
  /** plans held back in this pass (quarantined or backed off) */
  plansHeld: number;
  transactions: number;
  gasUsed: bigint;
  durationMs: number;
  rpcCalls: number;
  errors: string[];
}

/** Failed calls of one plan in one pass after which the keeper leaves it until the next pass. */
const MAX_FAULTS_PER_PLAN = 8;
/** Simulations of one plan in one pass spent on finding the items a batch fails for. */
const MAX_ISOLATIONS_PER_PLAN = 48;
/** A reason code the views never give: the view itself failed for this subscriber alone. */
const VIEW_FAILED = -1;

const bump = (counts: Record<string, number>, key: string, by = 1) => {
  counts[key] = (counts[key] ?? 0) + by;
};

/** One plan's work in a pass. */
interface PlanWork {
  plan: PlanRow;
  subscribers: string[];
  dueAt: Map<string, number>;
  cursor: number;
  done: boolean;
  keeperChecked: boolean;
  faults: number;
  isolations: number;
  lastFault: string | null;
  /** set when every item of a batch failed with this one reason */
  alike: string | null;
  progressed: boolean;
  /** due subscribers beyond the plan's share of this pass */
  leftOver: number;
}

/** The plan's part of the pass stops here; the pass goes on with the others. */
class PlanGaveUp extends Error {}

export async function runPass(deps: PassDeps): Promise<PassSummary> {
  const { rpc, store, log, sender } = deps;
  const started = deps.clock();
  const callsBefore = totalCalls(rpc);
  const summary: PassSummary = {
    block: 0n, indexedLogs: 0, due: 0, sent: 0, charged: 0, failed: {}, skipped: {}, setAside: 0, planFailures: 0, plansHeld: 0,
    transactions: 0, gasUsed: 0n, durationMs: 0, rpcCalls: 0, errors: [],
  };

  if (sender !== null) {
    for (const receipt of await sender.recover()) record(summary, receipt, log, deps.observer, null, () => null, isPlanOf(store));
  }

  const head = await rpc.block("latest");
  deps.observer?.head(head);
  summary.block = head.number;
  const indexed = await sync(deps.indexer, head);
  summary.indexedLogs = indexed.logs;
  const now = Number(head.timestamp);

  const due = store.due(now, deps.shard, PLAN_RETIRED);
  summary.due = due.length;
  const work = planWork(deps, summary, due, now);

  let priorityFee: bigint | undefined;
  const ctx = {
    deps, summary, now, started,
    fees: async () => {
      priorityFee ??= await rpc.maxPriorityFee();
      return { baseFee: head.baseFeePerGas ?? 0n, priorityFee };
    },
  };
  // Round-robin: each plan takes one batch in turn, so a slow or failing plan delays the others by at
  // most one batch per round.
  try {
    for (let open = work.length; open > 0; ) {
      open = 0;
      for (const w of work) {
        if (w.done) continue;
        try {
          await nextBatch(ctx, w, head.number);
        } catch (error) {
          if (!(error instanceof PlanGaveUp || error instanceof PlanCallFailed)) throw error;
          w.done = true;
        }
        if (!w.done) open++;
      }
    }
  } catch (error) {
    // Not a plan's fault (the node is unreachable, the fee cap is hit, the keeper's key is in use
    // elsewhere): nothing more is sent in this pass.
    summary.errors.push(errorMessage(error));
    log.error("pass_stopped", { error: errorMessage(error), code: error instanceof KeeperError ? error.code : "UNKNOWN" });
  }
  for (const w of work) settlePlanHealth(deps, w, now);

  if (sender !== null) {
    try {
      // Confirmations are waited for once, for every transaction of the pass; the confirmed outcomes
      // go straight into the store, so `status` is right without waiting for the next pass.
      for (const receipt of await sender.settle()) for (const l of receipt.logs) if (store.plan(l.address) !== undefined) applySettled(store, l);
    } catch (error) {
      summary.errors.push(errorMessage(error));
      log.error("settle_failed", { error: errorMessage(error) });
    }
  }

  summary.durationMs = deps.clock() - started;
  summary.rpcCalls = totalCalls(rpc) - callsBefore;
  log.info("pass", { ...summary });
  store.setMeta("lastPass", JSON.stringify({ ...summary, at: new Date(deps.clock()).toISOString() }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
  return summary;
}

/** Groups the due subscriptions by plan, leaving out those waiting for a retry, plans the operator's
 * lists exclude and plans held back; oldest due first, at most `maxPerPlan` per plan. */
function planWork(deps: PassDeps, summary: PassSummary, due: { plan: string; subscriber: string; nextChargeAt: number }[], now: number): PlanWork[] {
  const { store, log } = deps;
  const retries = store.retries();
  const health = store.planHealth();
  const byPlan = new Map<string, PlanWork | string>();
  for (const d of due) {
    let w = byPlan.get(d.plan);
    if (w === undefined) {
      w = admit(deps, summary, d.plan, health.get(d.plan), now);
      byPlan.set(d.plan, w);
    }
    if (typeof w === "string") {
      // Left out by the lists or held back: each of its due subscribers is counted under that reason.
      bump(summary.skipped, w);
      continue;
    }
    const retry = retries.get(`${d.plan}:${d.subscriber}`);
    if (retry !== undefined && retry.dueAt === d.nextChargeAt) {
      if (retry.nextTryAt === null) {
        bump(summary.skipped, "RetriesUsedUp");
        continue;
      }
      if (retry.nextTryAt > now) {
        bump(summary.skipped, "RetryLater");
        continue;
      }
    }
    if (w.subscribers.length >= deps.maxPerPlan) {
      bump(summary.skipped, "PlanShareUsed");
      w.leftOver++;
      continue;
    }
    w.subscribers.push(d.subscriber);
    w.dueAt.set(d.subscriber, d.nextChargeAt);
  }
  const work: PlanWork[] = [];
  for (const w of byPlan.values()) {
    if (typeof w === "string" || w.subscribers.length === 0) continue;
    if (w.leftOver > 0) log.info("plan_share_used", { plan: w.plan.address, taken: w.subscribers.length, leftForNextPass: w.leftOver });
    work.push(w);
  }
  return work;
}

/** The plan's work for this pass, or why it has none: the lists leave it out, or it is held back. */
function admit(deps: PassDeps, summary: PassSummary, address: string, health: PlanHealthRow | undefined, now: number): PlanWork | string {
  const plan = deps.store.plan(address);
  // The index holds metered plans too; due() never names one, and the keeper never charges one.
  if (plan === undefined || plan.billingMode !== BILLING_FIXED) return "UnknownPlan";
  const refused = refusal(deps.lists, plan);
  if (refused !== null) {
    deps.log.debug("plan_excluded", { plan: address, reason: refused });
    return refused;
  }
  if (health !== undefined && health.until > now) {
    summary.plansHeld++;
    deps.log.info("plan_held", { plan: address, kind: health.kind, reason: health.reason, failures: health.failures, until: iso(health.until) });
    return health.kind === "quarantine" ? "PlanQuarantined" : "PlanBackedOff";
  }
  return {
    plan, subscribers: [], dueAt: new Map(), cursor: 0, done: false, keeperChecked: false,
    faults: 0, isolations: 0, lastFault: null, alike: null, progressed: false, leftOver: 0,
  };
}

interface PassContext {
  deps: PassDeps;
  summary: PassSummary;
  now: number;
  /** The keeper's clock at the pass's start, ms. */
  started: number;
  fees: () => Promise<{ baseFee: bigint; priorityFee: bigint }>;
}

/** Re-checks and charges the plan's next batch. */
async function nextBatch(ctx: PassContext, w: PlanWork, block: bigint): Promise<void> {
  const { deps, summary } = ctx;
  const { rpc, store, log, sender } = deps;
  const plan = w.plan.address;
  if (!w.keeperChecked) {
    w.keeperChecked = true;
    if (w.plan.keeperRestricted && sender !== null) {
      const allowed = await planCall(ctx, w, "isKeeper", () => isKeeperCall(rpc, plan, sender.address, block));
      if (!allowed) {
        log.warn("not_authorized_keeper", { plan, keeper: sender.address, due: w.subscribers.length });
        bump(summary.skipped, "NotAuthorizedKeeper", w.subscribers.length);
        for (let i = 0; i < w.subscribers.length; i++) deps.observer?.item(plan, "skipped", "NotAuthorizedKeeper", null);
        w.done = true;
        return;
      }
    }
  }
  const batch = w.subscribers.slice(w.cursor, w.cursor + deps.batchSize);
  w.cursor += batch.length;
  if (w.cursor >= w.subscribers.length) w.done = true;

  // Re-check at one block: never pay gas for a charge the chain says would fail.
  const reasons = await checkedChargeability(ctx, w, batch, block);
  const ok: string[] = [];
  batch.forEach((subscriber, k) => {
    const code = reasons[k]!;
    if (code === VIEW_FAILED) return;
    const reason = reasonName(code);
    if (reason === "Ok") {
      ok.push(subscriber);
      return;
    }
    bump(summary.skipped, reason);
    deps.observer?.item(plan, "skipped", reason, null);
    store.setLastReason(plan, subscriber, reason);
    log.info("skip", { plan, subscriber, reason });
  });
  w.progressed = true;
  if (ok.length === 0) return;
  if (deps.dryRun || sender === null) {
    log.info("would_charge", { plan, subscribers: ok.length });
    summary.sent += ok.length;
    return;
  }
  await sendIsolating(ctx, w, ok);
}

/** `chargeabilityMany` for `batch`; a call that fails is split in halves until the subscribers it fails
 * for are found (each set aside, `VIEW_FAILED`). */
async function checkedChargeability(ctx: PassContext, w: PlanWork, batch: string[], block: bigint): Promise<number[]> {
  try {
    return await planCall(ctx, w, "chargeabilityMany", () => chargeabilityMany(ctx.deps.rpc, w.plan.address, batch, block), batch.length);
  } catch (error) {
    if (!(error instanceof PlanCallFailed)) throw error;
    if (batch.length === 1) {
      setAside(ctx, w, batch[0]!, `view failed: ${error.reason}`);
      return [VIEW_FAILED];
    }
    const half = Math.ceil(batch.length / 2);
    return [...(await checkedChargeability(ctx, w, batch.slice(0, half), block)), ...(await checkedChargeability(ctx, w, batch.slice(half), block))];
  }
}

/** A call of the plan's that failed (for a reason the plan or its token is answerable for). */
class PlanCallFailed extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

/** Runs one call of the plan's. A failure the plan is answerable for is logged with the plan and counted;
 * past `MAX_FAULTS_PER_PLAN` the plan is left for this pass (`PlanGaveUp`), else `PlanCallFailed`. Any
 * other failure (the node, the keeper's own account) goes up and stops the pass. */
async function planCall<T>(ctx: PassContext, w: PlanWork, call: string, fn: () => Promise<T>, items?: number): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!isPlanFault(error)) throw error;
    const reason = failureReason(error);
    w.faults++;
    w.lastFault = `${call}: ${reason}`;
    if (w.faults === 1) ctx.summary.planFailures++;
    ctx.deps.log.warn("plan_call_failed", { plan: w.plan.address, call, ...(items === undefined ? {} : { subscribers: items }), reason, failures: w.faults });
    if (w.faults >= MAX_FAULTS_PER_PLAN) {
      ctx.deps.log.warn("plan_left_for_this_pass", { plan: w.plan.address, failures: w.faults });
      throw new PlanGaveUp();
    }
    throw new PlanCallFailed(reason);
  }
}

/** Sends `chargeMany(items)`. A batch above one transaction's gas budget is halved; one whose simulation
 * fails for a subscriber it names (`BatchOutOfGas(s)`) sets that subscriber aside and sends the rest; one
 * that fails for an unnamed reason is halved until the failing items are found. */
async function sendIsolating(ctx: PassContext, w: PlanWork, items: string[]): Promise<void> {
  const { deps, summary } = ctx;
  const sender = deps.sender!;
  const plan = w.plan.address;
  const queue: string[][] = [items];
  while (queue.length > 0) {
    const part = queue.shift()!;
    let sent;
    try {
      sent = await sender.send(plan, encodeChargeMany(part), await ctx.fees(), { plan, subscribers: part });
    } catch (error) {
      if (error instanceof KeeperError && error.code === "GAS_BUDGET" && part.length > 1) {
        queue.unshift(...halves(part));
        continue;
      }
      if (!isPlanFault(error)) throw error;
      if (++w.isolations > MAX_ISOLATIONS_PER_PLAN) {
        w.faults++;
        w.lastFault = `chargeMany: ${failureReason(error)}`;
        summary.planFailures++;
        deps.log.warn("plan_left_for_this_pass", { plan, reason: "too many batches failed to simulate", left: queue.reduce((n, q) => n + q.length, part.length) });
        throw new PlanGaveUp();
      }
      const named = namedSubscriber(error, part);
      deps.log.info("batch_split", { plan, subscribers: part.length, ...(named === null ? {} : { names: named }), reason: failureReason(error) });
      if (named !== null) {
        setAside(ctx, w, named, failureReason(error));
        const rest = part.filter((s) => s !== named);
        if (rest.length > 0) queue.unshift(rest);
      } else if (part.length > 1) {
        queue.unshift(...halves(part));
      } else {
        setAside(ctx, w, part[0]!, failureReason(error));
      }
      continue;
    }
    summary.sent += part.length;
    const failures = record(summary, sent.receipt, deps.log, deps.observer, part.length, (s) => lagOf(ctx, w, s), isPlanOf(deps.store));
    afterReceipt(ctx, w, part, sent.receipt, failures);
    if (w.alike !== null) {
      // Every item failed alike: the plan's problem, not each subscriber's. Nothing more for it now.
      w.done = true;
      return;
    }
  }
}

/** Records what one of our chargeMany transactions did to its items' retry schedules and the plan. */
function afterReceipt(ctx: PassContext, w: PlanWork, part: string[], receipt: Receipt, failures: Map<string, string>): void {
  const { deps } = ctx;
  const plan = w.plan.address;
  if (receipt.status !== 1) {
    // Simulated fine, then reverted: the state moved between the two. Each item waits for a retry.
    for (const s of part) retryLater(ctx, w, s, "Reverted");
    return;
  }
  for (const s of part) if (!failures.has(s)) deps.store.clearRetry(plan, s);
  const reasons = new Set(failures.values());
  if (part.length >= 2 && failures.size === part.length && reasons.size === 1) {
    w.alike = [...reasons][0]!;
    return;
  }
  for (const [s, reason] of failures) retryLater(ctx, w, s, reason);
}

/** A subscriber a batch failed for alone: logged with its reason, its retry schedule started or moved. */
function setAside(ctx: PassContext, w: PlanWork, subscriber: string, reason: string): void {
  ctx.summary.setAside++;
  bump(ctx.summary.failed, "SetAside");
  ctx.deps.observer?.item(w.plan.address, "set_aside", null, null);
  ctx.deps.store.setLastReason(w.plan.address, subscriber, "SetAside");
  const next = retryLater(ctx, w, subscriber, reason);
  ctx.deps.log.warn("set_aside", { plan: w.plan.address, subscriber, reason, nextTry: next === null ? null : iso(next) });
}

/** Starts or moves `subscriber`'s retry schedule for its current due time; returns the next try. */
function retryLater(ctx: PassContext, w: PlanWork, subscriber: string, reason: string): number | null {
  const { store } = ctx.deps;
  const plan = w.plan.address;
  const dueAt = w.dueAt.get(subscriber)!;
  const previous: RetryRow | undefined = store.retries().get(`${plan}:${subscriber}`);
  const same = previous !== undefined && previous.dueAt === dueAt;
  const attempts = same ? previous.attempts + 1 : 1;
  const firstFailedAt = same ? previous.firstFailedAt : ctx.now;
  const nextTryAt = nextRetryAt(ctx.deps.backoff.retrySchedule, firstFailedAt, dueAt + w.plan.grace, attempts);
  store.putRetry({ plan, subscriber, dueAt, attempts, firstFailedAt, nextTryAt, reason });
  return nextTryAt;
}

/** After the pass: a plan whose calls failed moves towards (or deeper into) quarantine; one whose every
 * charge failed alike is backed off; one that worked is forgotten. */
function settlePlanHealth(deps: PassDeps, w: PlanWork, now: number): void {
  const { store, log, backoff } = deps;
  const plan = w.plan.address;
  const previous = store.planHealth().get(plan);
  if (w.faults > 0) {
    const failures = previous !== undefined && previous.kind !== "backoff" ? previous.failures + 1 : 1;
    const until = quarantineUntil(backoff, now, failures);
    store.putPlanHealth({ plan, kind: until > 0 ? "quarantine" : "failing", reason: w.lastFault ?? "calls failed", failures, since: previous?.since ?? now, until });
    if (until > 0) log.warn("plan_quarantined", { plan, failures, reason: w.lastFault, until: iso(until) });
    return;
  }
  if (w.alike !== null) {
    const attempts = previous?.kind === "backoff" ? previous.failures + 1 : 1;
    const since = previous?.kind === "backoff" ? previous.since : now;
    // Never past the last try a due subscriber of this pass still has inside its own grace window.
    let until = planBackoffUntil(backoff.retrySchedule, since, w.plan.grace, attempts, now);
    for (const dueAt of w.dueAt.values()) {
      const lastTry = lastTryAt(dueAt, w.plan.grace);
      if (lastTry > now && lastTry < until) until = lastTry;
    }
    store.putPlanHealth({ plan, kind: "backoff", reason: w.alike, failures: attempts, since, until });
    log.warn("plan_backoff", { plan, reason: w.alike, attempts, until: iso(until) });
    return;
  }
  if (previous !== undefined && w.progressed) {
    store.clearPlanHealth(plan);
    log.info("plan_recovered", { plan, kind: previous.kind, reason: previous.reason });
  }
}

/** A failure the plan (its code, its token, its feed, one of its subscribers) is answerable for: the
 * node ran the call and it failed, or its answer could not be decoded. Not the node being unreachable,
 * nor the keeper's own account (funds, nonce). */
export function isPlanFault(error: unknown): boolean {
  if (error instanceof RpcError) return !/insufficient funds|nonce|underpriced|replacement|already known|fee cap|max fee/i.test(error.message);
  const code = (error as { code?: unknown } | null)?.code;
  return code === "BAD_DATA" || code === "CALL_EXCEPTION";
}

/** The subscriber a revert names (`BatchOutOfGas(s)`), if it is one of `part`. */
export function namedSubscriber(error: unknown, part: string[]): string | null {
  const data = revertData(error);
  if (data === null) return null;
  try {
    const parsed = planInterface.parseError(data);
    if (parsed === null) return null;
    for (const arg of parsed.args) {
      const who = typeof arg === "string" ? arg.toLowerCase() : "";
      if (part.includes(who)) return who;
    }
  } catch {
    // not one of ours
  }
  return null;
}

function revertData(error: unknown): string | null {
  if (!(error instanceof RpcError)) return null;
  const data = error.data as unknown;
  if (typeof data === "string" && /^0x[0-9a-fA-F]{8,}$/.test(data)) return data;
  const inner = (data as { data?: unknown } | null)?.data;
  return typeof inner === "string" && /^0x[0-9a-fA-F]{8,}$/.test(inner) ? inner : null;
}

/** A short reason for a failed call: the decoded custom error, else the node's message. */
function failureReason(error: unknown): string {
  const data = revertData(error);
  if (data !== null) {
    try {
      const parsed = planInterface.parseError(data);
      if (parsed !== null) return `${parsed.name}(${parsed.args.map(String).join(", ")})`;
    } catch {
      // fall through to the message
    }
  }
  return errorMessage(error).slice(0, 200);
}

const halves = <T>(items: T[]): T[][] => {
  const half = Math.ceil(items.length / 2);
  return [items.slice(0, half), items.slice(half)];
};

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/** Seconds from `subscriber`'s due time to now, in chain time: the head's time at the pass's start plus
 * the time the pass has run since (the receipt's block time would cost a call per transaction). */
function lagOf(ctx: PassContext, w: PlanWork, subscriber: string): number | null {
  const dueAt = w.dueAt.get(subscriber);
  if (dueAt === undefined) return null;
  return Math.max(0, ctx.now + (ctx.deps.clock() - ctx.started) / 1000 - dueAt);
}

/** Counts the Charged / ChargeFailed events of one of our receipts (`subscribers` items, null when not
 * known); returns the failures by subscriber. */
function record(
  summary: PassSummary, receipt: Receipt, log: Logger, observer: PassObserver | undefined, subscribers: number | null, lag: (subscriber: string) => number | null,
  isPlan: (address: string) => boolean,
): Map<string, string> {
  summary.transactions++;
  summary.gasUsed += receipt.gasUsed;
  const failures = new Map<string, string>();
  for (const l of receipt.logs as Log[]) {
    // Only the plans' own logs: a token (any token: the factory is permissionless) can emit logs with the
    // same signatures from inside the charge, to inflate the counts or fake a subscriber's failure.
    if (!isPlan(l.address)) continue;
    const e = planInterface.parseLog(l);
    if (e?.name === "Charged") {
      summary.charged++;
      const subscriber = String(e.args.subscriber).toLowerCase();
      observer?.item(l.address, "charged", null, lag(subscriber));
      log.info("charged", { plan: l.address, subscriber, periodIndex: e.args.periodIndex, amount: e.args.amount, nextChargeAt: e.args.nextChargeAt });
    } else if (e?.name === "ChargeFailed") {
      const reason = reasonName(e.args.reason as bigint);
      const subscriber = String(e.args.subscriber).toLowerCase();
      failures.set(subscriber, reason);
      bump(summary.failed, reason);
      observer?.item(l.address, "failed", reason, null);
      log.warn("charge_failed", { plan: l.address, subscriber, reason });
    }
  }
  observer?.transaction(subscribers, receipt);
  return failures;
}

/** Whether a log's address is one of the factory's plans (in the index). */
const isPlanOf = (store: Store) => (address: string): boolean => store.plan(address.toLowerCase()) !== undefined;

function totalCalls(rpc: Rpc): number {
  let n = 0;
  for (const c of rpc.calls.values()) n += c;
  return n;
}

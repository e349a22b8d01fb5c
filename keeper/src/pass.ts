// One keeper pass: settle what a previous run left pending, index new confirmed events, find the
// subscriptions due now (by the stored nextChargeAt), re-check them against the chain at one block,
// and charge the ones that would succeed with chargeMany, in batches. Ends with one summary line.
import { chargeabilityMany, encodeChargeMany, isKeeperCall } from "./calls.ts";
import { PLAN_RETIRED, planInterface, reasonName } from "./abi.ts";
import { errorMessage, KeeperError } from "./errors.ts";
import { apply, sync } from "./indexer.ts";
import type { IndexerDeps } from "./indexer.ts";
import type { Logger } from "./log.ts";
import type { Rpc } from "./rpc.ts";
import type { Sender } from "./sender.ts";
import type { Due, Store } from "./store.ts";

export interface PassDeps {
  rpc: Rpc;
  store: Store;
  log: Logger;
  sender: Sender | null;
  indexer: IndexerDeps;
  batchSize: number;
  shard: { index: number; count: number };
  dryRun: boolean;
  clock: () => number;
}

export interface PassSummary {
  block: bigint;
  indexedLogs: number;
  due: number;
  sent: number;
  charged: number;
  failed: Record<string, number>;
  skipped: Record<string, number>;
  transactions: number;
  gasUsed: bigint;
  durationMs: number;
  rpcCalls: number;
  errors: string[];
}

const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

export async function runPass(deps: PassDeps): Promise<PassSummary> {
  const { rpc, store, log, sender } = deps;
  const started = deps.clock();
  const callsBefore = totalCalls(rpc);
  const summary: PassSummary = {
    block: 0n, indexedLogs: 0, due: 0, sent: 0, charged: 0, failed: {}, skipped: {},
    transactions: 0, gasUsed: 0n, durationMs: 0, rpcCalls: 0, errors: [],
  };

  if (sender !== null) {
    for (const receipt of await sender.recover()) record(summary, receipt.logs, receipt.gasUsed, log);
  }

  const head = await rpc.block("latest");
  summary.block = head.number;
  const indexed = await sync(deps.indexer, head);
  summary.indexedLogs = indexed.logs;

  const due = store.due(Number(head.timestamp), deps.shard, PLAN_RETIRED);
  summary.due = due.length;
  const byPlan = new Map<string, Due[]>();
  for (const d of due) byPlan.set(d.plan, [...(byPlan.get(d.plan) ?? []), d]);

  let priorityFee: bigint | undefined;
  for (const [plan, items] of byPlan) {
    const restricted = store.plan(plan)?.keeperRestricted === true;
    if (restricted && sender !== null && !(await isKeeperCall(rpc, plan, sender.address, head.number))) {
      log.warn("not_authorized_keeper", { plan, keeper: sender.address, due: items.length });
      for (const _ of items) bump(summary.skipped, "NotAuthorizedKeeper");
      continue;
    }
    for (let i = 0; i < items.length; i += deps.batchSize) {
      const batch = items.slice(i, i + deps.batchSize).map((d) => d.subscriber);
      // Re-check at one block: never pay gas for a charge the chain says would fail.
      const reasons = await chargeabilityMany(rpc, plan, batch, head.number);
      const ok: string[] = [];
      batch.forEach((subscriber, k) => {
        const reason = reasonName(reasons[k] ?? -1);
        if (reason === "Ok") {
          ok.push(subscriber);
          return;
        }
        bump(summary.skipped, reason);
        store.setLastReason(plan, subscriber, reason);
        log.info("skip", { plan, subscriber, reason });
      });
      if (ok.length === 0) continue;
      if (deps.dryRun || sender === null) {
        log.info("would_charge", { plan, subscribers: ok.length });
        summary.sent += ok.length;
        continue;
      }
      try {
        priorityFee ??= await rpc.maxPriorityFee();
        const fees = { baseFee: head.baseFeePerGas ?? 0n, priorityFee };
        // A batch over one transaction's gas budget is split in halves until each part fits.
        const queue = [ok];
        while (queue.length > 0) {
          const part = queue.shift()!;
          try {
            const sent = await sender.send(plan, encodeChargeMany(part), fees, { plan, subscribers: part });
            summary.sent += part.length;
            record(summary, sent.receipt.logs, sent.receipt.gasUsed, log);
          } catch (error) {
            if (!(error instanceof KeeperError && error.code === "GAS_BUDGET" && part.length > 1)) throw error;
            const half = Math.ceil(part.length / 2);
            queue.unshift(part.slice(0, half), part.slice(half));
          }
        }
      } catch (error) {
        summary.errors.push(errorMessage(error));
        log.error("batch_failed", { plan, subscribers: ok.length, error: errorMessage(error) });
        break;
      }
    }
  }

  if (sender !== null) {
    try {
      // Confirmations are waited for once, for every transaction of the pass; the confirmed outcomes
      // go straight into the store, so `status` is right without waiting for the next pass.
      for (const receipt of await sender.settle()) for (const l of receipt.logs) if (store.plan(l.address) !== undefined) apply(store, l);
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

/** Counts the Charged / ChargeFailed events of one of our receipts. */
function record(summary: PassSummary, logs: { address: string; topics: string[]; data: string }[], gasUsed: bigint, log: Logger): void {
  summary.transactions++;
  summary.gasUsed += gasUsed;
  for (const l of logs) {
    const e = planInterface.parseLog(l);
    if (e?.name === "Charged") {
      summary.charged++;
      log.info("charged", { plan: l.address, subscriber: String(e.args.subscriber).toLowerCase(), periodIndex: e.args.periodIndex, amount: e.args.amount, nextChargeAt: e.args.nextChargeAt });
    } else if (e?.name === "ChargeFailed") {
      const reason = reasonName(e.args.reason as bigint);
      bump(summary.failed, reason);
      log.warn("charge_failed", { plan: l.address, subscriber: String(e.args.subscriber).toLowerCase(), reason });
    }
  }
}

function totalCalls(rpc: Rpc): number {
  let n = 0;
  for (const c of rpc.calls.values()) n += c;
  return n;
}

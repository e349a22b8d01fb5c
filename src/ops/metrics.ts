// The keeper's Prometheus metrics (prom-client), on a registry of its own (never the library's global
// one): the default process metrics, and what an operator needs to tell from a dashboard whether the
// keeper is alive, keeping up and funded. The numbers come from three places: the charging pass's
// observer (each head, item and transaction as the pass goes) and its summary, the RPC client's observer
// (each call attempt), and the store and the webhook outbox, read when Prometheus scrapes.
// Labels stay bounded: plans only for plans the keeper charges (at most MAX_PLAN_LABELS of them, the
// rest as "other"), reasons only the contract's ChargeReason names and the keeper's own fixed reasons,
// RPC methods only those the keeper calls. docs/OPERATIONS.md explains every metric (a test keeps it so).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

import { CHARGE_REASONS } from "../chain/abi.ts";
import type { Block, Receipt, RpcObserver } from "../chain/rpc.ts";
import type { ItemResult, PassObserver, PassSummary } from "../charging/pass.ts";
import { finalBlock } from "../index/indexer.ts";
import type { Store } from "../index/store.ts";

/** What the webhook outbox reports, read at scrape time: undelivered events, and the age of the oldest
 * of them in seconds (null when there is none). */
export type OutboxStats = () => { depth: number; oldestAgeSeconds: number | null };

export interface MetricsDeps {
  store: Store;
  /** The keeper's clock, ms. */
  clock: () => number;
  confirmations: number;
  /** Static facts about this keeper, exposed as `recur_keeper_info` labels (with the account: `identify`). */
  info: { chainId: string; shard: string };
  /** Without it the outbox gauges are absent (not zero). */
  outboxStats?: OutboxStats;
}

export interface KeeperMetrics {
  readonly registry: Registry;
  /** For `createRpc({ observe })`. */
  readonly rpc: RpcObserver;
  /** For `runPass({ observer })`. */
  readonly pass: PassObserver;
  /** After each pass: its summary, or null when it threw. */
  passEnded(summary: PassSummary | null): void;
  /** The keeper account (lowercase), once its key is loaded; null without a signer (a dry run), which
   * leaves the balance gauge out. */
  identify(keeper: string | null): void;
  /** The keeper account's balance, wei (read after each pass). */
  setBalance(wei: bigint): void;
  /** One webhook delivery attempt's result ("delivered", "failed", "gone", "dead" …: a small fixed set). */
  webhookDelivery(result: string): void;
  /** The last head seen by a pass, if any (readiness reads it too). */
  lastHead(): Block | null;
}

/** Plans beyond this many distinct ones are counted under plan="other". */
export const MAX_PLAN_LABELS = 1000;

const LAG_BUCKETS = [10, 30, 60, 120, 300, 600, 1_800, 3_600, 7_200, 21_600, 86_400, 259_200];
const BATCH_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 200, 300, 500];
const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PASS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function createMetrics(deps: MetricsDeps): KeeperMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const info = new Gauge({
    name: "recur_keeper_info", help: "Always 1; its labels say which chain, shard and keeper account this process runs as.",
    labelNames: ["chain_id", "shard", "keeper"], registers,
  });

  const passes = new Counter({
    name: "recur_passes_total", help: "Charging passes finished, by result: ok, or failed (an error stopped or ended the pass; its reason is the pass's last log line).",
    labelNames: ["result"], registers,
  });
  const passDuration = new Histogram({ name: "recur_pass_duration_seconds", help: "Wall-clock time of one charging pass, seconds.", buckets: PASS_BUCKETS, registers });
  const lastSuccess = new Gauge({
    name: "recur_last_successful_pass_timestamp_seconds", help: "Unix time (the keeper's clock) at which the last pass without errors ended; 0 until one has.", registers,
  });
  const charges = new Counter({
    name: "recur_charges_total",
    help: "Subscriptions the keeper handled, by plan and result: charged (a Charged event in its transaction), failed (a ChargeFailed event), skipped (the re-check said the charge would fail, so it was not sent; counted at each pass that skips it), set_aside (a batch failed for this subscriber alone).",
    labelNames: ["plan", "result"], registers,
  });
  const failures = new Counter({
    name: "recur_charge_failures_total", help: "ChargeFailed events in the keeper's own transactions, by the contract's ChargeReason (money did not move; the subscriber is retried on the retry schedule).",
    labelNames: ["reason"], registers,
  });
  const skipped = new Counter({
    name: "recur_charges_skipped_total",
    help: "Due subscriptions a pass left uncharged, by reason, once per pass: a ChargeReason from the on-chain re-check (AllowanceTooLow, BalanceTooLow …) or the keeper's own (RetryLater, PlanQuarantined, PlanBackedOff, PlanShareUsed, NotAuthorizedKeeper, the allow and deny lists …).",
    labelNames: ["reason"], registers,
  });
  const due = new Gauge({ name: "recur_due_subscriptions", help: "Subscriptions due (and within their grace window) at the last pass's head, in this keeper's shard.", registers });
  const lag = new Histogram({
    name: "recur_charge_lag_seconds", help: "How late each charge came, seconds: chain time when the keeper had its receipt (the pass's head time plus the time the pass had run) less the subscription's due time.",
    buckets: LAG_BUCKETS, registers,
  });
  const batch = new Histogram({ name: "recur_batch_size", help: "Subscribers in each chargeMany transaction the keeper sent.", buckets: BATCH_BUCKETS, registers });
  const transactions = new Counter({
    name: "recur_transactions_total", help: "The keeper's chargeMany transactions mined, by status: success, or reverted (state moved between the simulation and the block).",
    labelNames: ["status"], registers,
  });
  const gas = new Counter({ name: "recur_gas_used_total", help: "Gas used by the keeper's mined transactions (the sum of their receipts' gasUsed).", registers });
  const fees = new Counter({ name: "recur_fees_paid_wei_total", help: "Ether the keeper paid for gas, wei (gasUsed × effectiveGasPrice of each receipt).", registers });
  // Registered by identify(): without a signer there is no keeper account, and no balance to show.
  let balance: Gauge | null = null;
  const headBlock = new Gauge({ name: "recur_head_block", help: "The chain head's block number at the last pass (0 until the first pass).", registers });
  const headAge = new Gauge({
    name: "recur_head_age_seconds", help: "When the last pass read the head: the keeper's clock less the head block's timestamp, seconds (large: the node is behind; negative: its clock is ahead; 0 until the first pass).",
    registers,
  });
  const confirmed = new Gauge({ name: "recur_last_confirmed_block", help: "The newest block with the configured confirmations at the last pass's head: the highest block the indexer may read (0 until the first pass).", registers });
  new Gauge({
    name: "recur_last_indexed_block", help: "The last block the index (the store's checkpoint) has read, at scrape time (0 before the first sync).", registers,
    collect() {
      this.set(Number(deps.store.lastCheckpoint()?.block ?? 0n));
    },
  });
  let head: Block | null = null;
  new Gauge({
    name: "recur_plans_held", help: "Plans the keeper holds back now (chain time of the last head), by kind: quarantine (its calls kept failing) or backoff (every charge failed alike).",
    labelNames: ["kind"], registers,
    collect() {
      const now = head === null ? deps.clock() / 1000 : Number(head.timestamp);
      const held = { quarantine: 0, backoff: 0 };
      for (const h of deps.store.planHealth().values()) if (h.until > now && h.kind !== "failing") held[h.kind]++;
      this.set({ kind: "quarantine" }, held.quarantine);
      this.set({ kind: "backoff" }, held.backoff);
    },
  });
  const rpcCalls = new Counter({
    name: "recur_rpc_requests_total", help: "JSON-RPC requests (each retry counts), by method and outcome: ok, error (the node answered with an error: a revert, a refused transaction), timeout, transport (unreachable, HTTP error), aborted.",
    labelNames: ["method", "outcome"], registers,
  });
  const rpcLatency = new Histogram({ name: "recur_rpc_request_duration_seconds", help: "Time of each JSON-RPC request, by method, seconds.", labelNames: ["method"], buckets: RPC_BUCKETS, registers });
  const deliveries = new Counter({ name: "recur_webhook_deliveries_total", help: "Webhook delivery attempts, by result.", labelNames: ["result"], registers });
  if (deps.outboxStats !== undefined) {
    const stats = deps.outboxStats;
    new Gauge({ name: "recur_webhook_outbox_depth", help: "Webhook events not yet delivered (read at scrape time).", registers, collect() { this.set(stats().depth); } });
    new Gauge({
      name: "recur_webhook_outbox_oldest_age_seconds", help: "Age of the oldest webhook event not yet delivered, seconds; 0 when there is none (read at scrape time).", registers,
      collect() { this.set(stats().oldestAgeSeconds ?? 0); },
    });
  }

  // Zeros for the label values known in advance, so that rate() and increase() see a series from the start.
  for (const result of ["ok", "failed"]) passes.inc({ result }, 0);
  for (const reason of CHARGE_REASONS.slice(1)) failures.inc({ reason }, 0);
  for (const status of ["success", "reverted"]) transactions.inc({ status }, 0);

  const plans = new Set<string>();
  const planLabel = (plan: string): string => {
    if (plans.has(plan)) return plan;
    if (plans.size >= MAX_PLAN_LABELS) return "other";
    plans.add(plan);
    return plan;
  };

  const pass: PassObserver = {
    head(block) {
      head = block;
      headBlock.set(Number(block.number));
      headAge.set(deps.clock() / 1000 - Number(block.timestamp));
      confirmed.set(Number(finalBlock(block.number, deps.confirmations)));
    },
    item(plan: string, result: ItemResult, reason: string | null, lagSeconds: number | null) {
      charges.inc({ plan: planLabel(plan), result });
      if (result === "failed" && reason !== null) failures.inc({ reason });
      if (result === "charged" && lagSeconds !== null) lag.observe(lagSeconds);
    },
    transaction(subscribers: number | null, receipt: Receipt) {
      transactions.inc({ status: receipt.status === 1 ? "success" : "reverted" });
      if (subscribers !== null) batch.observe(subscribers);
      gas.inc(Number(receipt.gasUsed));
      fees.inc(Number(receipt.gasUsed * receipt.effectiveGasPrice));
    },
  };

  return {
    registry,
    rpc(method, seconds, outcome) {
      rpcCalls.inc({ method, outcome });
      rpcLatency.observe({ method }, seconds);
    },
    pass,
    identify(keeper) {
      info.set({ chain_id: deps.info.chainId, shard: deps.info.shard, keeper: keeper ?? "" }, 1);
      if (keeper === null || balance !== null) return;
      balance = new Gauge({ name: "recur_keeper_balance_wei", help: "The keeper account's ether balance, wei, read after each pass (0 until the first read).", registers });
    },
    passEnded(summary) {
      const ok = summary !== null && summary.errors.length === 0;
      passes.inc({ result: ok ? "ok" : "failed" });
      if (summary === null) return;
      passDuration.observe(summary.durationMs / 1000);
      due.set(summary.due);
      for (const [reason, n] of Object.entries(summary.skipped)) skipped.inc({ reason }, n);
      if (ok) lastSuccess.set(deps.clock() / 1000);
    },
    setBalance(wei) {
      balance?.set(Number(wei));
    },
    webhookDelivery(result) {
      deliveries.inc({ result: /^[a-z][a-z0-9_]{0,31}$/.test(result) ? result : "other" });
    },
    lastHead: () => head,
  };
}

// The embedded store: one SQLite file (node:sqlite, part of Node 22: no native package to install).
// The index: every plan of the factory (fixed and metered) with all of its terms, every subscription
// with its life so far (state, schedule, ref, total paid, pause, cancellation, block), and one activity
// row per plan event of any kind (plus the factory's PlanCreated), all rebuilt from chain events; the
// raw events themselves (with their transaction hash and block time, so a reorg can roll them back and
// replay everything); block-hash checkpoints; and, not derived from the chain, the journal of
// transactions, held plans and retries.
// Readers: the keeper's charging passes (src/charging/: fixed plans only, through due() and plan()),
// merchant reports (src/reports/: plans(), subscriptionsOf(), activity()), usage billing (src/usage/)
// and, later, webhooks (activity() in chain order).
// Writes that must survive a crash (the journal) are committed before the keeper acts on them.
// The webhook outbox (webhook_events, webhook_deliveries, webhook_tokens) is not derived either: an
// event is written in the same transaction that indexes its log (src/webhooks/events.ts), keyed by its
// stable id, so a rebuild re-deriving it is a no-op; a reorg deletes only the events not yet delivered.
// Schema version (meta `schemaVersion`): a store written by an older version has its derived and raw
// tables dropped on open and is rebuilt from the factory's block; the journal, plan health and
// retries are kept.
import { DatabaseSync } from "node:sqlite";
import type { StatementSync } from "node:sqlite";

export interface PlanRow {
  address: string;
  owner: string;
  token: string;
  price: bigint;
  period: number;
  grace: number;
  keeperFeeBps: number;
  keeperRestricted: boolean;
  status: number;
  createdBlock: bigint;
  /** `BillingMode`: 0 fixed (charged by the keeper), 1 metered (billed by its owner: `recur usage`). */
  billingMode: number;
  payee: string;
  /** Trial period, seconds. */
  trial: number;
  /** The USD price feed (lowercase), the zero address when the price is in token units. */
  priceFeed: string;
  maxPriceAge: number;
  allowanceBufferBps: number;
  perCycleCap: bigint;
  freeCredits: bigint;
  /** Block time of the PlanCreated event. */
  createdAt: number;
}

export interface SubscriptionRow {
  plan: string;
  subscriber: string;
  state: "live" | "paused" | "cancelled";
  nextChargeAt: number;
  maxAmount: bigint;
  periodsPaid: number;
  lastReason: string | null;
  /** Subscribed.ref (bytes32 hex, zero when none) of the latest sign-up. */
  ref: string;
  startedAt: number;
  trial: boolean;
  /** Charged.amount plus UsageCharged.pulled, base units, over every sign-up of this address on this
   * plan (like periodsPaid, it carries over a re-subscribe). */
  totalPaid: bigint;
  /** When it was paused (Paused.pausedAt); 0 unless paused. */
  pausedAt: number;
  cancelledBy: string | null;
  /** Block time of the Cancelled event; 0 unless cancelled. */
  endedAt: number;
  /** The owner blocked this subscriber (SubscriberBlockUpdated). */
  blocked: boolean;
  /** Metered plans (the chain's FLAG_BEFORE_RETIREMENT): the cycle waiting for its bill started before the
   * plan was retired, though a pause across the retirement moved its start past it; cleared by its bill. */
  beforeRetirement: boolean;
}

export const ACTIVITY_KINDS = [
  "plan_created",
  "subscribed",
  "charged",
  "charge_failed",
  "cancelled",
  "paused",
  "resumed",
  "max_amount_updated",
  "plan_status_changed",
  "payee_changed",
  "owner_changed",
  "subscriber_blocked",
  "subscriber_unblocked",
  "authorizations_revoked",
  "keeper_authorized",
  "keeper_fee_paid",
  "usage_charged",
  "usage_failed",
  "credits_granted",
  "reporter_authorized",
  "cycle_written_off",
] as const;
export type ActivityKind = (typeof ACTIVITY_KINDS)[number];

/** One plan event (or the factory's PlanCreated, under the new plan). Amounts in token base units. */
export interface ActivityRow {
  block: bigint;
  logIndex: number;
  txHash: string;
  /** Block time, seconds. */
  time: number;
  plan: string;
  /** Null for plan-level events (status, payee, keeper and reporter changes, plan_created). */
  subscriber: string | null;
  kind: ActivityKind;
  /** Charged.amount, UsageCharged.pulled, KeeperFeePaid.fee. */
  amount: bigint | null;
  /** Charged.periodIndex, UsageCharged.cycleIndex, CycleWrittenOff.cycleIndex. */
  periodIndex: number | null;
  /** The ChargeReason name of ChargeFailed and UsageChargeFailed. */
  reason: string | null;
  usage: bigint | null;
  fromCredits: bigint | null;
  /** Subscribed.ref, UsageCharged.usageRef, UsageChargeFailed.usageRef. */
  ref: string | null;
  /** The event's other arguments, as strings. */
  data: Record<string, string> | null;
}

export interface ActivityFilter {
  plans?: readonly string[];
  subscriber?: string;
  kinds?: readonly ActivityKind[];
  /** Block time, inclusive. */
  since?: number;
  /** Block time, exclusive. */
  until?: number;
}

export interface StoredLog {
  blockNumber: bigint;
  logIndex: number;
  blockHash: string;
  address: string;
  topics: string[];
  data: string;
  transactionHash: string;
  /** The block's timestamp, seconds. */
  blockTime: number;
}

export interface TxRow {
  id: number;
  nonce: bigint;
  hash: string;
  raw: string;
  plan: string;
  subscribers: string[];
  status: "pending" | "mined" | "failed" | "dropped";
  maxFeePerGas: bigint;
  sentAt: number;
}

/** A plan the keeper holds back, or is watching: `failing` (calls failed in the last `failures` passes,
 * not yet quarantined), `quarantine` (calls kept failing), `backoff` (every charge failed alike). Times in
 * chain seconds; held while `until` is in the future. Not derived from chain events: a reorg keeps it. */
export interface PlanHealthRow {
  plan: string;
  kind: "failing" | "quarantine" | "backoff";
  reason: string;
  failures: number;
  since: number;
  until: number;
}

/** A subscriber whose charge the chain refused for the due time `dueAt`: tried again at `nextTryAt`
 * (chain seconds), or never again for this due time once null. */
export interface RetryRow {
  plan: string;
  subscriber: string;
  dueAt: number;
  attempts: number;
  firstFailedAt: number;
  nextTryAt: number | null;
  reason: string;
}

export interface Due {
  plan: string;
  subscriber: string;
  nextChargeAt: number;
}

/** One webhook event in the outbox (src/webhooks/events.ts builds them). */
export interface WebhookEventRow {
  seq: number;
  /** The webhook-id: stable for the fact (src/webhooks/ids.ts). */
  id: string;
  type: string;
  plan: string;
  subscriber: string | null;
  /** Chain time of the fact, seconds. */
  occurredAt: number;
  /** The block of the log behind it; null for time-derived events. */
  block: bigint | null;
  /** The facts the body is rendered from (base units as strings). */
  payload: Record<string, unknown>;
  /** When the keeper recorded it, unix ms. */
  createdAt: number;
}

/** One event's delivery to one endpoint. Times in unix ms. */
export interface WebhookDeliveryRow {
  eventSeq: number;
  endpoint: string;
  state: "pending" | "delivered" | "dead";
  attempts: number;
  nextAttemptAt: number;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
}

export const SCHEMA_VERSION = "3";

/** The tables rebuilt from the chain: dropped when the schema version changes. */
const DERIVED = `
DROP TABLE IF EXISTS logs; DROP TABLE IF EXISTS checkpoints; DROP TABLE IF EXISTS plans;
DROP TABLE IF EXISTS subscriptions; DROP TABLE IF EXISTS activity; DROP TABLE IF EXISTS blocked;
DELETE FROM meta WHERE key = 'logRange';
`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (block INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
  block INTEGER NOT NULL, log_index INTEGER NOT NULL, block_hash TEXT NOT NULL,
  address TEXT NOT NULL, topics TEXT NOT NULL, data TEXT NOT NULL, tx_hash TEXT NOT NULL,
  block_time INTEGER NOT NULL,
  PRIMARY KEY (block, log_index));
CREATE TABLE IF NOT EXISTS plans (
  address TEXT PRIMARY KEY, owner TEXT NOT NULL, token TEXT NOT NULL, price TEXT NOT NULL,
  period INTEGER NOT NULL, grace INTEGER NOT NULL, keeper_fee_bps INTEGER NOT NULL,
  keeper_restricted INTEGER NOT NULL, status INTEGER NOT NULL, created_block INTEGER NOT NULL,
  billing_mode INTEGER NOT NULL, payee TEXT NOT NULL, trial INTEGER NOT NULL, price_feed TEXT NOT NULL,
  max_price_age INTEGER NOT NULL, allowance_buffer_bps INTEGER NOT NULL, per_cycle_cap TEXT NOT NULL,
  free_credits TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
  plan TEXT NOT NULL, subscriber TEXT NOT NULL, state TEXT NOT NULL, next_charge_at INTEGER NOT NULL,
  max_amount TEXT NOT NULL, periods_paid INTEGER NOT NULL, last_reason TEXT,
  shard_key INTEGER NOT NULL, ref TEXT NOT NULL, started_at INTEGER NOT NULL, trial INTEGER NOT NULL,
  total_paid TEXT NOT NULL, paused_at INTEGER NOT NULL, cancelled_by TEXT, ended_at INTEGER NOT NULL,
  blocked INTEGER NOT NULL, before_retirement INTEGER NOT NULL,
  PRIMARY KEY (plan, subscriber));
CREATE INDEX IF NOT EXISTS subscriptions_due ON subscriptions (state, next_charge_at);
-- Blocked subscribers, with or without a subscription (a block can come first).
CREATE TABLE IF NOT EXISTS blocked (plan TEXT NOT NULL, subscriber TEXT NOT NULL, PRIMARY KEY (plan, subscriber));
CREATE TABLE IF NOT EXISTS activity (
  block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, time INTEGER NOT NULL,
  plan TEXT NOT NULL, subscriber TEXT, kind TEXT NOT NULL, amount TEXT, period_index INTEGER,
  reason TEXT, usage TEXT, from_credits TEXT, ref TEXT, data TEXT,
  PRIMARY KEY (block, log_index));
-- Time, then chain position: a scan of one index answers a filtered query already in chain order.
CREATE INDEX IF NOT EXISTS activity_plan_time ON activity (plan, time, block, log_index);
CREATE INDEX IF NOT EXISTS activity_plan_subscriber_time ON activity (plan, subscriber, time, block, log_index);
CREATE INDEX IF NOT EXISTS activity_kind_time ON activity (kind, time, block, log_index);
CREATE INDEX IF NOT EXISTS activity_time ON activity (time, block, log_index);
CREATE TABLE IF NOT EXISTS txs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, nonce INTEGER NOT NULL, hash TEXT NOT NULL, raw TEXT NOT NULL,
  plan TEXT NOT NULL, subscribers TEXT NOT NULL, status TEXT NOT NULL, max_fee TEXT NOT NULL,
  sent_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS txs_status ON txs (status, nonce);
CREATE TABLE IF NOT EXISTS plan_health (
  plan TEXT PRIMARY KEY, kind TEXT NOT NULL, reason TEXT NOT NULL, failures INTEGER NOT NULL,
  since INTEGER NOT NULL, until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS retries (
  plan TEXT NOT NULL, subscriber TEXT NOT NULL, due_at INTEGER NOT NULL, attempts INTEGER NOT NULL,
  first_failed_at INTEGER NOT NULL, next_try_at INTEGER, reason TEXT NOT NULL,
  PRIMARY KEY (plan, subscriber));
-- The webhook outbox (src/webhooks/). Not derived: a schema rebuild keeps it. occurred_at: chain seconds;
-- created_at, next_attempt_at, delivered_at: unix milliseconds. payload: the event's facts (JSON), rendered
-- into the body when sent. orphaned: its block was rolled back after it was delivered somewhere (sent no more).
CREATE TABLE IF NOT EXISTS webhook_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, plan TEXT NOT NULL,
  subscriber TEXT, occurred_at INTEGER NOT NULL, block INTEGER, payload TEXT NOT NULL, created_at INTEGER NOT NULL,
  orphaned INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS webhook_events_block ON webhook_events (block);
CREATE INDEX IF NOT EXISTS webhook_events_occurred ON webhook_events (occurred_at);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  event_seq INTEGER NOT NULL, endpoint TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL, last_status INTEGER, last_error TEXT, delivered_at INTEGER,
  PRIMARY KEY (event_seq, endpoint));
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
-- Token decimals and symbol for webhook amounts (immutable per token; null decimals: unreadable).
CREATE TABLE IF NOT EXISTS webhook_tokens (address TEXT PRIMARY KEY, decimals INTEGER, symbol TEXT NOT NULL);
`;

/** A stable small number per subscriber, for sharding: the address's last 4 bytes. */
export const shardKey = (subscriber: string): number => Number.parseInt(subscriber.slice(-8), 16);

type Row = Record<string, unknown>;

export class Store {
  readonly #db: DatabaseSync;
  // Statements run once per log are prepared once: a warm-up writes hundreds of thousands of logs.
  #addLog: StatementSync | undefined;
  #addActivity: StatementSync | undefined;
  #getSubscription: StatementSync | undefined;
  #putSubscription: StatementSync | undefined;
  #setLastReason: StatementSync | undefined;
  #isBlocked: StatementSync | undefined;
  #getPlan: StatementSync | undefined;
  #clearRetry: StatementSync | undefined;
  #addWebhookEvent: StatementSync | undefined;
  #queueDelivery: StatementSync | undefined;
  #setDelivery: StatementSync | undefined;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
    this.transaction(() => {
      this.#db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);");
      // An older store (or a new file): rebuild everything derived from the chain, keep the rest.
      if (this.getMeta("schemaVersion") !== SCHEMA_VERSION) this.#db.exec(DERIVED);
      this.#db.exec(SCHEMA);
      this.setMeta("schemaVersion", SCHEMA_VERSION);
    });
  }

  close(): void {
    this.#db.close();
  }

  /** Runs `fn` in one transaction: all of its writes land, or none. */
  transaction<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  getMeta(key: string): string | undefined {
    const row = this.#db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as Row | undefined;
    return row === undefined ? undefined : String(row.value);
  }

  setMeta(key: string, value: string): void {
    this.#db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  deleteMeta(key: string): void {
    this.#db.prepare("DELETE FROM meta WHERE key = ?").run(key);
  }

  // --- checkpoints -------------------------------------------------------------------------------

  /** The last block indexed, with its hash; undefined before the first sync. */
  lastCheckpoint(): { block: bigint; hash: string } | undefined {
    const row = this.#db.prepare("SELECT block, hash FROM checkpoints ORDER BY block DESC LIMIT 1").get() as Row | undefined;
    return row === undefined ? undefined : { block: BigInt(row.block as number), hash: String(row.hash) };
  }

  checkpoints(): { block: bigint; hash: string }[] {
    return (this.#db.prepare("SELECT block, hash FROM checkpoints ORDER BY block DESC").all() as Row[]).map((r) => ({
      block: BigInt(r.block as number),
      hash: String(r.hash),
    }));
  }

  addCheckpoint(block: bigint, hash: string, keep = 128): void {
    this.#db.prepare("INSERT OR REPLACE INTO checkpoints (block, hash) VALUES (?, ?)").run(block, hash);
    this.#db.prepare("DELETE FROM checkpoints WHERE block NOT IN (SELECT block FROM checkpoints ORDER BY block DESC LIMIT ?)").run(keep);
  }

  // --- raw logs (for rollback and replay) -----------------------------------------------------------

  addLog(log: StoredLog): void {
    this.#addLog ??= this.#db.prepare(
      "INSERT OR REPLACE INTO logs (block, log_index, block_hash, address, topics, data, tx_hash, block_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#addLog.run(log.blockNumber, log.logIndex, log.blockHash, log.address, JSON.stringify(log.topics), log.data, log.transactionHash, log.blockTime);
  }

  /** Every stored log in chain order, read one row at a time (a replay holds one log in memory, not
   * the whole table). */
  *logs(): Generator<StoredLog> {
    for (const r of this.#db.prepare("SELECT * FROM logs ORDER BY block, log_index").iterate() as Iterable<Row>) {
      yield {
        blockNumber: BigInt(r.block as number),
        logIndex: Number(r.log_index),
        blockHash: String(r.block_hash),
        address: String(r.address),
        topics: JSON.parse(String(r.topics)) as string[],
        data: String(r.data),
        transactionHash: String(r.tx_hash),
        blockTime: Number(r.block_time),
      };
    }
  }

  /** Forgets everything indexed above `block` (a reorg): logs and checkpoints; derived tables
   * (plans, subscriptions, blocks, activity) are emptied, then rebuilt by replaying the remaining logs. */
  rollbackAbove(block: bigint): void {
    this.#db.prepare("DELETE FROM logs WHERE block > ?").run(block);
    this.#db.prepare("DELETE FROM checkpoints WHERE block > ?").run(block);
    this.#db.exec("DELETE FROM plans; DELETE FROM subscriptions; DELETE FROM blocked; DELETE FROM activity;");
    // Webhooks of the rolled-back blocks: never sent if not sent yet; an event already delivered to some
    // endpoint is kept (it cannot be unsent) but marked orphaned, and sent to no one else.
    this.#db.prepare(
      `DELETE FROM webhook_deliveries WHERE state != 'delivered' AND event_seq IN (SELECT seq FROM webhook_events WHERE block > ?)`,
    ).run(block);
    this.#db.prepare(
      `DELETE FROM webhook_events WHERE block > ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = webhook_events.seq)`,
    ).run(block);
    this.#db.prepare("UPDATE webhook_events SET orphaned = 1 WHERE block > ?").run(block);
  }

  // --- plans ----------------------------------------------------------------------------------------

  upsertPlan(plan: PlanRow): void {
    this.#db
      .prepare(
        `INSERT OR REPLACE INTO plans (address, owner, token, price, period, grace, keeper_fee_bps, keeper_restricted, status, created_block,
           billing_mode, payee, trial, price_feed, max_price_age, allowance_buffer_bps, per_cycle_cap, free_credits, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        plan.address, plan.owner, plan.token, plan.price.toString(), plan.period, plan.grace, plan.keeperFeeBps, plan.keeperRestricted ? 1 : 0, plan.status, plan.createdBlock,
        plan.billingMode, plan.payee, plan.trial, plan.priceFeed, plan.maxPriceAge, plan.allowanceBufferBps, plan.perCycleCap.toString(), plan.freeCredits.toString(), plan.createdAt,
      );
  }

  setPlanStatus(address: string, status: number): void {
    this.#db.prepare("UPDATE plans SET status = ? WHERE address = ?").run(status, address);
  }

  /** A new owner (OwnershipTransferred: the two-step transfer accepted). */
  setPlanOwner(address: string, owner: string): void {
    this.#db.prepare("UPDATE plans SET owner = ? WHERE address = ?").run(owner, address);
  }

  setPlanPayee(address: string, payee: string): void {
    this.#db.prepare("UPDATE plans SET payee = ? WHERE address = ?").run(payee, address);
  }

  /** Every plan, of either kind, in creation order. */
  plans(): PlanRow[] {
    return (this.#db.prepare("SELECT * FROM plans ORDER BY created_block, address").all() as Row[]).map(toPlan);
  }

  plan(address: string): PlanRow | undefined {
    this.#getPlan ??= this.#db.prepare("SELECT * FROM plans WHERE address = ?");
    const r = this.#getPlan.get(address.toLowerCase()) as Row | undefined;
    return r === undefined ? undefined : toPlan(r);
  }

  /** Every plan's address, of either kind (the indexer reads the events of all of them). */
  planAddresses(): string[] {
    return (this.#db.prepare("SELECT address FROM plans ORDER BY address").all() as Row[]).map((r) => String(r.address));
  }

  // --- subscriptions --------------------------------------------------------------------------------

  subscription(plan: string, subscriber: string): SubscriptionRow | undefined {
    this.#getSubscription ??= this.#db.prepare("SELECT * FROM subscriptions WHERE plan = ? AND subscriber = ?");
    const r = this.#getSubscription.get(plan, subscriber) as Row | undefined;
    return r === undefined ? undefined : toSubscription(r);
  }

  /** Every subscription to `plan` (any state), by subscriber address. */
  subscriptionsOf(plan: string): SubscriptionRow[] {
    return (this.#db.prepare("SELECT * FROM subscriptions WHERE plan = ? ORDER BY subscriber").all(plan.toLowerCase()) as Row[]).map(toSubscription);
  }

  putSubscription(sub: SubscriptionRow): void {
    this.#putSubscription ??= this.#db.prepare(
      `INSERT OR REPLACE INTO subscriptions (plan, subscriber, state, next_charge_at, max_amount, periods_paid, last_reason, shard_key,
         ref, started_at, trial, total_paid, paused_at, cancelled_by, ended_at, blocked, before_retirement)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#putSubscription.run(
      sub.plan, sub.subscriber, sub.state, sub.nextChargeAt, sub.maxAmount.toString(), sub.periodsPaid, sub.lastReason, shardKey(sub.subscriber),
      sub.ref, sub.startedAt, sub.trial ? 1 : 0, sub.totalPaid.toString(), sub.pausedAt, sub.cancelledBy, sub.endedAt, sub.blocked ? 1 : 0,
      sub.beforeRetirement ? 1 : 0,
    );
  }

  setLastReason(plan: string, subscriber: string, reason: string | null): void {
    this.#setLastReason ??= this.#db.prepare("UPDATE subscriptions SET last_reason = ? WHERE plan = ? AND subscriber = ?");
    this.#setLastReason.run(reason, plan, subscriber);
  }

  /** Records the owner's block (or unblock) of `subscriber`, whether or not it has a subscription yet. */
  setBlocked(plan: string, subscriber: string, blocked: boolean): void {
    if (blocked) this.#db.prepare("INSERT OR IGNORE INTO blocked (plan, subscriber) VALUES (?, ?)").run(plan, subscriber);
    else this.#db.prepare("DELETE FROM blocked WHERE plan = ? AND subscriber = ?").run(plan, subscriber);
    this.#db.prepare("UPDATE subscriptions SET blocked = ? WHERE plan = ? AND subscriber = ?").run(blocked ? 1 : 0, plan, subscriber);
  }

  isBlocked(plan: string, subscriber: string): boolean {
    this.#isBlocked ??= this.#db.prepare("SELECT 1 AS b FROM blocked WHERE plan = ? AND subscriber = ?");
    return this.#isBlocked.get(plan, subscriber) !== undefined;
  }

  // --- activity -------------------------------------------------------------------------------------

  /** Records one event; false if it was already recorded (the same block and log index). */
  addActivity(row: ActivityRow): boolean {
    this.#addActivity ??= this.#db.prepare(
      `INSERT OR IGNORE INTO activity (block, log_index, tx_hash, time, plan, subscriber, kind, amount, period_index, reason, usage, from_credits, ref, data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const result = this.#addActivity.run(
      row.block, row.logIndex, row.txHash, row.time, row.plan, row.subscriber, row.kind, row.amount?.toString() ?? null, row.periodIndex,
      row.reason, row.usage?.toString() ?? null, row.fromCredits?.toString() ?? null, row.ref, row.data === null ? null : JSON.stringify(row.data),
    );
    return Number(result.changes) > 0;
  }

  /** The events matching `filter`, in chain order, read one row at a time (a report over millions of
   * events holds one in memory). Every filter is answered from an index on (…, time, block, log_index). */
  *activity(filter: ActivityFilter = {}): Generator<ActivityRow> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.plans !== undefined) {
      if (filter.plans.length === 0) return;
      where.push(`plan IN (${filter.plans.map(() => "?").join(", ")})`);
      for (const p of filter.plans) params.push(p.toLowerCase());
    }
    if (filter.subscriber !== undefined) {
      where.push("subscriber = ?");
      params.push(filter.subscriber.toLowerCase());
    }
    if (filter.kinds !== undefined) {
      if (filter.kinds.length === 0) return;
      where.push(`kind IN (${filter.kinds.map(() => "?").join(", ")})`);
      for (const k of filter.kinds) params.push(k);
    }
    if (filter.since !== undefined) {
      where.push("time >= ?");
      params.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push("time < ?");
      params.push(filter.until);
    }
    // Block times never decrease along the chain: (time, block, log_index) is chain order.
    const sql = `SELECT * FROM activity ${where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`} ORDER BY time, block, log_index`;
    for (const r of this.#db.prepare(sql).iterate(...params) as Iterable<Row>) yield toActivity(r);
  }

  /** Live subscriptions due at `now` (unix seconds) and not yet past their grace window, on fixed plans
   * (metered plans are billed by their owner, never by the keeper) that are not retired, in this shard,
   * oldest first. Uses the (state, next_charge_at) index: the cost grows
   * with the number due, not with the number of subscriptions. */
  due(now: number, shard: { index: number; count: number }, retiredStatus: number, limit = 1_000_000): Due[] {
    const rows = this.#db
      .prepare(
        `SELECT s.plan, s.subscriber, s.next_charge_at FROM subscriptions s JOIN plans p ON p.address = s.plan
         WHERE s.state = 'live' AND s.next_charge_at <= ? AND s.next_charge_at + p.grace >= ? AND p.status != ? AND p.billing_mode = 0
           AND s.shard_key % ? = ?
         ORDER BY s.next_charge_at LIMIT ?`,
      )
      .all(now, now, retiredStatus, shard.count, shard.index, limit) as Row[];
    return rows.map((r) => ({ plan: String(r.plan), subscriber: String(r.subscriber), nextChargeAt: Number(r.next_charge_at) }));
  }

  counts(now: number, horizon: number): { plans: number; subscriptions: Record<string, number>; dueNow: number; dueSoon: number } {
    // The keeper's view: fixed plans only.
    const plans = Number((this.#db.prepare("SELECT COUNT(*) AS n FROM plans WHERE billing_mode = 0").get() as Row).n);
    const subscriptions: Record<string, number> = {};
    const fixed = "SELECT s.state, COUNT(*) AS n FROM subscriptions s JOIN plans p ON p.address = s.plan WHERE p.billing_mode = 0 GROUP BY s.state";
    for (const r of this.#db.prepare(fixed).all() as Row[]) {
      subscriptions[String(r.state)] = Number(r.n);
    }
    const count = (from: number, to: number) =>
      Number(
        (this.#db
          .prepare(
            `SELECT COUNT(*) AS n FROM subscriptions s JOIN plans p ON p.address = s.plan
             WHERE s.state = 'live' AND s.next_charge_at <= ? AND s.next_charge_at + p.grace >= ? AND p.billing_mode = 0`,
          )
          .get(to, from) as Row).n,
      );
    return { plans, subscriptions, dueNow: count(now, now), dueSoon: count(now, now + horizon) };
  }

  reasons(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.#db.prepare(`SELECT s.last_reason, COUNT(*) AS n FROM subscriptions s JOIN plans p ON p.address = s.plan
       WHERE s.last_reason IS NOT NULL AND p.billing_mode = 0 GROUP BY s.last_reason`).all() as Row[]) {
      out[String(r.last_reason)] = Number(r.n);
    }
    return out;
  }

  // --- held plans and retries ----------------------------------------------------------------------

  planHealth(): Map<string, PlanHealthRow> {
    const out = new Map<string, PlanHealthRow>();
    for (const r of this.#db.prepare("SELECT * FROM plan_health ORDER BY since, plan").all() as Row[]) {
      out.set(String(r.plan), {
        plan: String(r.plan), kind: String(r.kind) as PlanHealthRow["kind"], reason: String(r.reason),
        failures: Number(r.failures), since: Number(r.since), until: Number(r.until),
      });
    }
    return out;
  }

  putPlanHealth(row: PlanHealthRow): void {
    this.#db
      .prepare("INSERT OR REPLACE INTO plan_health (plan, kind, reason, failures, since, until) VALUES (?, ?, ?, ?, ?, ?)")
      .run(row.plan, row.kind, row.reason, row.failures, row.since, row.until);
  }

  clearPlanHealth(plan: string): void {
    this.#db.prepare("DELETE FROM plan_health WHERE plan = ?").run(plan);
  }

  /** Every retry row, by "plan:subscriber". */
  retries(): Map<string, RetryRow> {
    const out = new Map<string, RetryRow>();
    for (const r of this.#db.prepare("SELECT * FROM retries").all() as Row[]) {
      out.set(`${String(r.plan)}:${String(r.subscriber)}`, {
        plan: String(r.plan), subscriber: String(r.subscriber), dueAt: Number(r.due_at), attempts: Number(r.attempts),
        firstFailedAt: Number(r.first_failed_at), nextTryAt: r.next_try_at === null ? null : Number(r.next_try_at), reason: String(r.reason),
      });
    }
    return out;
  }

  putRetry(row: RetryRow): void {
    this.#db
      .prepare("INSERT OR REPLACE INTO retries (plan, subscriber, due_at, attempts, first_failed_at, next_try_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(row.plan, row.subscriber, row.dueAt, row.attempts, row.firstFailedAt, row.nextTryAt, row.reason);
  }

  /** Forgets a subscriber's retries: it was charged, or something that can change the outcome happened
   * (a new max amount, a resume, a new subscription). */
  clearRetry(plan: string, subscriber: string): void {
    this.#clearRetry ??= this.#db.prepare("DELETE FROM retries WHERE plan = ? AND subscriber = ?");
    this.#clearRetry.run(plan, subscriber);
  }

  /** Retry rows by state: waiting for their next try, or with the schedule used up. */
  retryCounts(): { waiting: number; exhausted: number } {
    const r = this.#db.prepare("SELECT COUNT(next_try_at) AS waiting, COUNT(*) - COUNT(next_try_at) AS exhausted FROM retries").get() as Row;
    return { waiting: Number(r.waiting), exhausted: Number(r.exhausted) };
  }

  // --- transaction journal --------------------------------------------------------------------------

  /** Records a signed transaction before it is broadcast. */
  journal(tx: Omit<TxRow, "id" | "status">): number {
    const result = this.#db
      .prepare("INSERT INTO txs (nonce, hash, raw, plan, subscribers, status, max_fee, sent_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)")
      .run(tx.nonce, tx.hash, tx.raw, tx.plan, JSON.stringify(tx.subscribers), tx.maxFeePerGas.toString(), tx.sentAt);
    return Number(result.lastInsertRowid);
  }

  setTxStatus(nonce: bigint, status: TxRow["status"], hash?: string): void {
    if (hash === undefined) this.#db.prepare("UPDATE txs SET status = ? WHERE nonce = ? AND status = 'pending'").run(status, nonce);
    else this.#db.prepare("UPDATE txs SET status = CASE WHEN hash = ? THEN ? ELSE 'dropped' END WHERE nonce = ? AND status = 'pending'").run(hash, status, nonce);
  }

  pendingTxs(): TxRow[] {
    return (this.#db.prepare("SELECT * FROM txs WHERE status = 'pending' ORDER BY nonce, id").all() as Row[]).map((r) => ({
      id: Number(r.id),
      nonce: BigInt(r.nonce as number),
      hash: String(r.hash),
      raw: String(r.raw),
      plan: String(r.plan),
      subscribers: JSON.parse(String(r.subscribers)) as string[],
      status: "pending" as const,
      maxFeePerGas: BigInt(String(r.max_fee)),
      sentAt: Number(r.sent_at),
    }));
  }

  // --- webhook outbox (src/webhooks/) -----------------------------------------------------------

  /** Records one webhook event; false if its id is already there (a replay, a rebuild, another run). */
  addWebhookEvent(e: Omit<WebhookEventRow, "seq">): boolean {
    this.#addWebhookEvent ??= this.#db.prepare(
      // The same log back on the canonical branch after a reorg (same tx hash and log index): sent again.
      `INSERT INTO webhook_events (id, type, plan, subscriber, occurred_at, block, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET orphaned = 0, block = excluded.block WHERE orphaned = 1`,
    );
    const result = this.#addWebhookEvent.run(e.id, e.type, e.plan, e.subscriber, e.occurredAt, e.block, JSON.stringify(e.payload), e.createdAt);
    return Number(result.changes) > 0;
  }

  /** The events after `seq` (not orphaned), in outbox order. */
  webhookEventsAfter(seq: number, limit: number): WebhookEventRow[] {
    return (this.#db.prepare("SELECT * FROM webhook_events WHERE seq > ? AND orphaned = 0 ORDER BY seq LIMIT ?").all(seq, limit) as Row[]).map(toWebhookEvent);
  }

  webhookEvent(id: string): WebhookEventRow | undefined {
    const r = this.#db.prepare("SELECT * FROM webhook_events WHERE id = ?").get(id) as Row | undefined;
    return r === undefined ? undefined : toWebhookEvent(r);
  }

  webhookEventBySeq(seq: number): WebhookEventRow | undefined {
    const r = this.#db.prepare("SELECT * FROM webhook_events WHERE seq = ?").get(seq) as Row | undefined;
    return r === undefined ? undefined : toWebhookEvent(r);
  }

  /** The events that occurred (chain time) at or after `since`, in outbox order. */
  webhookEventsSince(since: number): WebhookEventRow[] {
    return (this.#db.prepare("SELECT * FROM webhook_events WHERE occurred_at >= ? AND orphaned = 0 ORDER BY seq").all(since) as Row[]).map(toWebhookEvent);
  }

  /** The outbox's last seq (0 when empty). */
  lastWebhookSeq(): number {
    return Number((this.#db.prepare("SELECT COALESCE(MAX(seq), 0) AS n FROM webhook_events").get() as Row).n);
  }

  /** Queues `event_seq` for `endpoint` (pending, due at `dueAt` ms); `requeue` resets a delivered or dead
   * one (a replay), otherwise an existing row is left alone. */
  queueDelivery(eventSeq: number, endpoint: string, dueAt: number, requeue = false): void {
    this.#queueDelivery ??= this.#db.prepare(
      `INSERT INTO webhook_deliveries (event_seq, endpoint, state, attempts, next_attempt_at) VALUES (?, ?, 'pending', 0, ?)
       ON CONFLICT (event_seq, endpoint) DO UPDATE SET state = 'pending', attempts = 0, next_attempt_at = excluded.next_attempt_at,
         last_status = NULL, last_error = NULL, delivered_at = NULL WHERE ?`,
    );
    this.#queueDelivery.run(eventSeq, endpoint, dueAt, requeue ? 1 : 0);
  }

  /** Pending deliveries due by `nowMs` to one of `endpoints`, oldest due first. */
  dueDeliveries(nowMs: number, endpoints: readonly string[], limit: number): WebhookDeliveryRow[] {
    if (endpoints.length === 0) return [];
    return (this.#db
      .prepare(
        `SELECT * FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? AND endpoint IN (${endpoints.map(() => "?").join(", ")})
         ORDER BY next_attempt_at, event_seq LIMIT ?`,
      )
      .all(nowMs, ...endpoints, limit) as Row[]).map(toDelivery);
  }

  /** The earliest due time (ms) of a pending delivery to one of `endpoints`, or null. */
  nextDeliveryAt(endpoints: readonly string[]): number | null {
    if (endpoints.length === 0) return null;
    const r = this.#db
      .prepare(`SELECT MIN(next_attempt_at) AS at FROM webhook_deliveries WHERE state = 'pending' AND endpoint IN (${endpoints.map(() => "?").join(", ")})`)
      .get(...endpoints) as Row;
    return r.at === null ? null : Number(r.at);
  }

  /** Records the outcome of one attempt. */
  setDelivery(row: WebhookDeliveryRow): void {
    this.#setDelivery ??= this.#db.prepare(
      `UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?
       WHERE event_seq = ? AND endpoint = ?`,
    );
    this.#setDelivery.run(row.state, row.attempts, row.nextAttemptAt, row.lastStatus, row.lastError, row.deliveredAt, row.eventSeq, row.endpoint);
  }

  delivery(eventSeq: number, endpoint: string): WebhookDeliveryRow | undefined {
    const r = this.#db.prepare("SELECT * FROM webhook_deliveries WHERE event_seq = ? AND endpoint = ?").get(eventSeq, endpoint) as Row | undefined;
    return r === undefined ? undefined : toDelivery(r);
  }

  /** Deliveries per endpoint per state (pending, delivered, dead). */
  webhookCounts(): Map<string, Record<string, number>> {
    const out = new Map<string, Record<string, number>>();
    for (const r of this.#db.prepare("SELECT endpoint, state, COUNT(*) AS n FROM webhook_deliveries GROUP BY endpoint, state").all() as Row[]) {
      const counts = out.get(String(r.endpoint)) ?? {};
      counts[String(r.state)] = Number(r.n);
      out.set(String(r.endpoint), counts);
    }
    return out;
  }

  /** For metrics and readiness: pending deliveries, and the age (seconds) of the oldest event still
   * pending somewhere (by its created_at), null when nothing is pending. `endpoints`: only deliveries to
   * these (the active ones: src/webhooks/worker.ts `outboxStats`), so that an endpoint removed from the
   * config or stopped by a 410 does not look like a stuck outbox; default every endpoint. */
  webhookOutboxStats(nowSeconds: number, endpoints?: readonly string[]): { depth: number; oldestAgeSeconds: number | null } {
    if (endpoints !== undefined && endpoints.length === 0) return { depth: 0, oldestAgeSeconds: null };
    const only = endpoints === undefined ? "" : ` AND d.endpoint IN (${endpoints.map(() => "?").join(", ")})`;
    const r = this.#db
      .prepare(`SELECT COUNT(*) AS n, MIN(e.created_at) AS oldest FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq WHERE d.state = 'pending'${only}`)
      .get(...(endpoints ?? [])) as Row;
    return { depth: Number(r.n), oldestAgeSeconds: r.oldest === null ? null : Math.max(0, nowSeconds - Math.floor(Number(r.oldest) / 1000)) };
  }

  /** A token's decimals and symbol as webhooks show them, once read (decimals null: unreadable). */
  webhookToken(address: string): { decimals: number | null; symbol: string } | undefined {
    const r = this.#db.prepare("SELECT decimals, symbol FROM webhook_tokens WHERE address = ?").get(address) as Row | undefined;
    return r === undefined ? undefined : { decimals: r.decimals === null ? null : Number(r.decimals), symbol: String(r.symbol) };
  }

  putWebhookToken(address: string, decimals: number | null, symbol: string): void {
    this.#db.prepare("INSERT OR REPLACE INTO webhook_tokens (address, decimals, symbol) VALUES (?, ?, ?)").run(address, decimals, symbol);
  }

  /** Live or paused subscriptions of every plan whose next charge is at or before `until` and whose grace
   * window ended at or after `since` (the candidates of the time-derived webhooks), with their plan. */
  webhookTimeCandidates(since: number, until: number): { sub: SubscriptionRow; plan: PlanRow }[] {
    const rows = this.#db
      .prepare(
        `SELECT s.*, p.address AS p_address, p.owner AS p_owner, p.token AS p_token, p.price AS p_price, p.period AS p_period, p.grace AS p_grace,
           p.keeper_fee_bps AS p_keeper_fee_bps, p.keeper_restricted AS p_keeper_restricted, p.status AS p_status, p.created_block AS p_created_block,
           p.billing_mode AS p_billing_mode, p.payee AS p_payee, p.trial AS p_trial, p.price_feed AS p_price_feed, p.max_price_age AS p_max_price_age,
           p.allowance_buffer_bps AS p_allowance_buffer_bps, p.per_cycle_cap AS p_per_cycle_cap, p.free_credits AS p_free_credits, p.created_at AS p_created_at
         FROM subscriptions s JOIN plans p ON p.address = s.plan
         WHERE s.state = 'live' AND s.next_charge_at <= ? AND s.next_charge_at + p.grace + 1 >= ?
         ORDER BY s.plan, s.subscriber`,
      )
      .all(until, since) as Row[];
    return rows.map((r) => {
      const plan: Row = {};
      for (const [k, v] of Object.entries(r)) if (k.startsWith("p_")) plan[k.slice(2)] = v;
      return { sub: toSubscription(r), plan: toPlan(plan) };
    });
  }

  // --- merchant reports ---
  // Read-only aggregations for src/reports/ (`recur plans`, `subscribers`, `charges`, `revenue`): the
  // counting and summing happens here, in SQL, so a report over 100,000 subscriptions and 1,000,000
  // charge events reads a few hundred rows, not the events.

  #reportIndexed = false;

  /** The indexes only the reports read, created on a report's first query (a keeper that never reports
   * never pays for them). */
  #reportIndexes(): void {
    if (this.#reportIndexed) return;
    this.#db.exec(`
      CREATE INDEX IF NOT EXISTS activity_report_kind ON activity (kind, plan, time, amount);
      CREATE INDEX IF NOT EXISTS subscriptions_report_plan ON subscriptions (plan, state, next_charge_at, periods_paid);
    `);
    this.#reportIndexed = true;
  }

  /** When `plan` was retired (the block time of its PlanStatusChanged to Retired, 2), or null. */
  retiredAt(plan: string): number | null {
    const r = this.#db
      .prepare("SELECT MAX(time) AS at FROM activity WHERE plan = ? AND kind = 'plan_status_changed' AND json_extract(data, '$.newStatus') = '2'")
      .get(plan) as Row | undefined;
    return r === undefined || r.at === null ? null : Number(r.at);
  }

  /** When each retired plan was retired: the block time of its last PlanStatusChanged to Retired (2). */
  reportRetiredAt(): Map<string, number> {
    this.#reportIndexes();
    const rows = this.#db
      .prepare("SELECT plan, MAX(time) AS at FROM activity WHERE kind = 'plan_status_changed' AND json_extract(data, '$.newStatus') = '2' GROUP BY plan")
      .all() as Row[];
    return new Map(rows.map((r) => [String(r.plan), Number(r.at)]));
  }

  /** SQL for a subscription's status at :now, as src/reports/status.ts `statusAt` derives it (BillingMath
   * .statusOf, MeteredPlan's retirement rule), over `s` (subscriptions), `p` (plans) and `r` (retired). */
  static readonly #STATUS_SQL = `
    CASE WHEN s.state = 'cancelled' THEN 'Cancelled'
         WHEN s.state = 'paused' THEN 'Paused'
         WHEN :now >= s.next_charge_at THEN
           CASE WHEN (p.status = 2 AND (p.billing_mode = 0 OR (r.at IS NOT NULL AND s.next_charge_at >= r.at + p.period AND s.before_retirement = 0)))
                  OR :now > s.next_charge_at + p.grace THEN 'Expired' ELSE 'PastDue' END
         WHEN p.billing_mode = 1 THEN
           CASE WHEN p.status = 2 AND r.at IS NOT NULL AND s.next_charge_at >= r.at + p.period AND s.before_retirement = 0
                THEN 'Expired' ELSE 'Active' END
         WHEN s.periods_paid = 0 THEN 'Trialing' ELSE 'Active' END`;

  static readonly #RETIRED_SQL = `WITH r0 AS (SELECT plan, MAX(time) AS at FROM activity
    WHERE kind = 'plan_status_changed' AND json_extract(data, '$.newStatus') = '2' GROUP BY plan)`;

  /** Subscriptions per plan per status (Trialing, Active, PastDue, Paused, Cancelled, Expired) at `now`. */
  reportStatusCounts(now: number): Map<string, Record<string, number>> {
    this.#reportIndexes();
    const rows = this.#db
      .prepare(
        `${Store.#RETIRED_SQL}
         SELECT s.plan AS plan, ${Store.#STATUS_SQL} AS sub_status, COUNT(*) AS n
         FROM subscriptions s JOIN plans p ON p.address = s.plan LEFT JOIN r0 r ON r.plan = s.plan
         GROUP BY s.plan, sub_status`,
      )
      .all({ now }) as Row[];
    const out = new Map<string, Record<string, number>>();
    for (const r of rows) {
      const counts = out.get(String(r.plan)) ?? {};
      counts[String(r.sub_status)] = Number(r.n);
      out.set(String(r.plan), counts);
    }
    return out;
  }

  /** The first event of `kind` for this plan and subscriber after the event at (`block`, `logIndex`). */
  reportNextActivity(plan: string, subscriber: string, kind: ActivityKind, block: bigint, logIndex: number): ActivityRow | undefined {
    const r = this.#db
      .prepare(
        `SELECT * FROM activity INDEXED BY activity_plan_subscriber_time WHERE plan = ? AND subscriber = ? AND kind = ? AND (block > ? OR (block = ? AND log_index > ?))
         ORDER BY time, block, log_index LIMIT 1`,
      )
      .get(plan, subscriber, kind, block, block, logIndex) as Row | undefined;
    return r === undefined ? undefined : toActivity(r);
  }

  /** Money collected (Charged.amount, UsageCharged.pulled) per plan per bucket in [since, until): `by`
   * day ("2027-01-31"), ISO week (its Monday) or month ("2027-01"), UTC. Sums are exact: bigint. SQL
   * groups by whole UTC day (integer maths, no date function per row); days are merged into weeks and
   * months here (a few thousand groups at most). */
  reportCollected(plans: readonly string[], since: number, until: number, by: "day" | "week" | "month"): { plan: string; bucket: string; kind: string; count: number; amount: bigint }[] {
    this.#reportIndexes();
    if (plans.length === 0) return [];
    const where = `kind IN ('charged', 'usage_charged') AND plan IN (${plans.map(() => "?").join(", ")}) AND time >= ? AND time < ?`;
    const params = [...plans, since, until];
    let days: Row[];
    try {
      days = this.#db.prepare(`SELECT plan, kind, time / 86400 AS day, COUNT(*) AS n, SUM(CAST(amount AS INTEGER)) AS total FROM activity WHERE ${where} GROUP BY plan, kind, day`).all(...params) as Row[];
    } catch (error) {
      // Sums past 2^63 (an 18-decimals token at scale): SQLite refuses them; add them up exactly here.
      if (!/overflow/i.test(String((error as Error).message))) throw error;
      const sums = new Map<string, Row>();
      for (const r of this.#db.prepare(`SELECT plan, kind, time / 86400 AS day, amount FROM activity WHERE ${where}`).iterate(...params) as Iterable<Row>) {
        const key = `${String(r.plan)}|${String(r.kind)}|${String(r.day)}`;
        const sum = sums.get(key) ?? { plan: r.plan, kind: r.kind, day: r.day, n: 0, total: 0n };
        sum.n = Number(sum.n) + 1;
        sum.total = (sum.total as bigint) + BigInt(String(r.amount));
        sums.set(key, sum);
      }
      days = [...sums.values()];
    }
    const label = (day: number): string => {
      const date = new Date(day * 86_400_000);
      if (by === "month") return date.toISOString().slice(0, 7);
      // ISO weeks start on Monday: step back (weekday + 6) % 7 days.
      if (by === "week") return new Date((day - ((date.getUTCDay() + 6) % 7)) * 86_400_000).toISOString().slice(0, 10);
      return date.toISOString().slice(0, 10);
    };
    const out = new Map<string, { plan: string; bucket: string; kind: string; count: number; amount: bigint }>();
    for (const r of days) {
      const bucket = label(Number(r.day));
      const key = `${String(r.plan)}|${String(r.kind)}|${bucket}`;
      const sum = out.get(key) ?? { plan: String(r.plan), kind: String(r.kind), bucket, count: 0, amount: 0n };
      sum.count += Number(r.n);
      sum.amount += BigInt(r.total as number | bigint);
      out.set(key, sum);
    }
    return [...out.values()].sort((x, y) => (x.bucket === y.bucket ? x.plan.localeCompare(y.plan) : x.bucket.localeCompare(y.bucket)));
  }

  /** How many events of each kind each plan had in [since, until). */
  reportEventCounts(plans: readonly string[], kinds: readonly ActivityKind[], since: number, until: number): Map<string, Record<string, number>> {
    this.#reportIndexes();
    const out = new Map<string, Record<string, number>>();
    if (plans.length === 0 || kinds.length === 0) return out;
    const rows = this.#db
      .prepare(
        `SELECT plan, kind, COUNT(*) AS n FROM activity WHERE kind IN (${kinds.map(() => "?").join(", ")}) AND plan IN (${plans.map(() => "?").join(", ")})
         AND time >= ? AND time < ? GROUP BY plan, kind`,
      )
      .all(...kinds, ...plans, since, until) as Row[];
    for (const r of rows) {
      const counts = out.get(String(r.plan)) ?? {};
      counts[String(r.kind)] = Number(r.n);
      out.set(String(r.plan), counts);
    }
    return out;
  }

  /** Live subscriptions per plan whose grace window ran out unpaid inside [since, until) and before
   * `now` (they turned Expired at next_charge_at + grace + 1). */
  reportExpiredBetween(plans: readonly string[], since: number, until: number, now: number): Map<string, number> {
    this.#reportIndexes();
    if (plans.length === 0) return new Map();
    const rows = this.#db
      .prepare(
        `SELECT s.plan AS plan, COUNT(*) AS n FROM subscriptions s JOIN plans p ON p.address = s.plan
         WHERE s.plan IN (${plans.map(() => "?").join(", ")}) AND s.state = 'live'
           AND s.next_charge_at + p.grace + 1 >= ? AND s.next_charge_at + p.grace + 1 < ? AND s.next_charge_at + p.grace < ?
         GROUP BY s.plan`,
      )
      .all(...plans, since, until, now) as Row[];
    return new Map(rows.map((r) => [String(r.plan), Number(r.n)]));
  }

  /** Failed charges (ChargeFailed, UsageChargeFailed) per plan in [since, until), and how many of them
   * were recovered inside the grace window: a later charge of the same kind for the same plan and
   * subscriber that paid the period due when it failed (its due time, its new nextChargeAt less one
   * period, is at or before the failure) no later than that due time plus the grace. */
  reportRecovery(plans: readonly string[], since: number, until: number): Map<string, { failed: number; recovered: number }> {
    this.#reportIndexes();
    if (plans.length === 0) return new Map();
    const rows = this.#db
      .prepare(
        // INDEXED BY: without statistics the planner picks (kind, plan, time) for `c`, which scans every later
        // charge of the plan per failure (4.7 s for 1,700 failures over two years), and (plan, time) for `f`,
        // which reads every event of the window; a subscriber's own events, and the failures alone, are few.
        `SELECT f.plan AS plan, COUNT(*) AS failed, SUM(EXISTS (
            SELECT 1 FROM activity c INDEXED BY activity_plan_subscriber_time
            WHERE c.plan = f.plan AND c.subscriber = f.subscriber
              AND c.kind = CASE f.kind WHEN 'charge_failed' THEN 'charged' ELSE 'usage_charged' END
              AND c.time >= f.time AND (c.block > f.block OR (c.block = f.block AND c.log_index > f.log_index))
              AND CAST(json_extract(c.data, '$.nextChargeAt') AS INTEGER) - p.period <= f.time
              AND c.time <= CAST(json_extract(c.data, '$.nextChargeAt') AS INTEGER) - p.period + p.grace)) AS recovered
         FROM activity f INDEXED BY activity_report_kind JOIN plans p ON p.address = f.plan
         WHERE f.kind IN ('charge_failed', 'usage_failed') AND f.plan IN (${plans.map(() => "?").join(", ")}) AND f.time >= ? AND f.time < ?
         GROUP BY f.plan`,
      )
      .all(...plans, since, until) as Row[];
    return new Map(rows.map((r) => [String(r.plan), { failed: Number(r.failed), recovered: Number(r.recovered) }]));
  }

  /** Subscriptions of fixed, non-retired plans that are live, not yet Expired at `now`, and due by
   * `until` (their next charge is the one at risk), per plan. */
  reportDueBy(plans: readonly string[], now: number, until: number): { plan: string; subscriber: string; nextChargeAt: number }[] {
    this.#reportIndexes();
    if (plans.length === 0) return [];
    const rows = this.#db
      .prepare(
        `SELECT s.plan, s.subscriber, s.next_charge_at FROM subscriptions s JOIN plans p ON p.address = s.plan
         WHERE s.plan IN (${plans.map(() => "?").join(", ")}) AND s.state = 'live' AND p.billing_mode = 0 AND p.status != 2
           AND s.next_charge_at <= ? AND s.next_charge_at + p.grace >= ?
         ORDER BY s.plan, s.next_charge_at, s.subscriber`,
      )
      .all(...plans, until, now) as Row[];
    return rows.map((r) => ({ plan: String(r.plan), subscriber: String(r.subscriber), nextChargeAt: Number(r.next_charge_at) }));
  }
}

function toPlan(r: Row): PlanRow {
  return {
    address: String(r.address),
    owner: String(r.owner),
    token: String(r.token),
    price: BigInt(String(r.price)),
    period: Number(r.period),
    grace: Number(r.grace),
    keeperFeeBps: Number(r.keeper_fee_bps),
    keeperRestricted: Number(r.keeper_restricted) === 1,
    status: Number(r.status),
    createdBlock: BigInt(r.created_block as number),
    billingMode: Number(r.billing_mode),
    payee: String(r.payee),
    trial: Number(r.trial),
    priceFeed: String(r.price_feed),
    maxPriceAge: Number(r.max_price_age),
    allowanceBufferBps: Number(r.allowance_buffer_bps),
    perCycleCap: BigInt(String(r.per_cycle_cap)),
    freeCredits: BigInt(String(r.free_credits)),
    createdAt: Number(r.created_at),
  };
}

function toSubscription(r: Row): SubscriptionRow {
  return {
    plan: String(r.plan),
    subscriber: String(r.subscriber),
    state: String(r.state) as SubscriptionRow["state"],
    nextChargeAt: Number(r.next_charge_at),
    maxAmount: BigInt(String(r.max_amount)),
    periodsPaid: Number(r.periods_paid),
    lastReason: r.last_reason === null || r.last_reason === undefined ? null : String(r.last_reason),
    ref: String(r.ref),
    startedAt: Number(r.started_at),
    trial: Number(r.trial) === 1,
    totalPaid: BigInt(String(r.total_paid)),
    pausedAt: Number(r.paused_at),
    cancelledBy: r.cancelled_by === null ? null : String(r.cancelled_by),
    endedAt: Number(r.ended_at),
    blocked: Number(r.blocked) === 1,
    beforeRetirement: Number(r.before_retirement) === 1,
  };
}

function toWebhookEvent(r: Row): WebhookEventRow {
  return {
    seq: Number(r.seq),
    id: String(r.id),
    type: String(r.type),
    plan: String(r.plan),
    subscriber: r.subscriber === null ? null : String(r.subscriber),
    occurredAt: Number(r.occurred_at),
    block: r.block === null ? null : BigInt(r.block as number),
    payload: JSON.parse(String(r.payload)) as Record<string, unknown>,
    createdAt: Number(r.created_at),
  };
}

function toDelivery(r: Row): WebhookDeliveryRow {
  return {
    eventSeq: Number(r.event_seq),
    endpoint: String(r.endpoint),
    state: String(r.state) as WebhookDeliveryRow["state"],
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastStatus: r.last_status === null ? null : Number(r.last_status),
    lastError: r.last_error === null ? null : String(r.last_error),
    deliveredAt: r.delivered_at === null ? null : Number(r.delivered_at),
  };
}

const bigOrNull = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(String(v)));
const stringOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toActivity(r: Row): ActivityRow {
  return {
    block: BigInt(r.block as number),
    logIndex: Number(r.log_index),
    txHash: String(r.tx_hash),
    time: Number(r.time),
    plan: String(r.plan),
    subscriber: stringOrNull(r.subscriber),
    kind: String(r.kind) as ActivityKind,
    amount: bigOrNull(r.amount),
    periodIndex: r.period_index === null ? null : Number(r.period_index),
    reason: stringOrNull(r.reason),
    usage: bigOrNull(r.usage),
    fromCredits: bigOrNull(r.from_credits),
    ref: stringOrNull(r.ref),
    data: r.data === null ? null : (JSON.parse(String(r.data)) as Record<string, string>),
  };
}

// The embedded store: one SQLite file (node:sqlite, part of Node 22: no native package to install).
// It holds the plans and subscriptions rebuilt from chain events, the raw events themselves (so a
// reorg can roll them back and replay), block-hash checkpoints, and the journal of transactions.
// Writes that must survive a crash (the journal) are committed before the keeper acts on them.
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
}

export interface SubscriptionRow {
  plan: string;
  subscriber: string;
  state: "live" | "paused" | "cancelled";
  nextChargeAt: number;
  maxAmount: bigint;
  periodsPaid: number;
  lastReason: string | null;
}

export interface StoredLog {
  blockNumber: bigint;
  logIndex: number;
  blockHash: string;
  address: string;
  topics: string[];
  data: string;
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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (block INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
  block INTEGER NOT NULL, log_index INTEGER NOT NULL, block_hash TEXT NOT NULL,
  address TEXT NOT NULL, topics TEXT NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (block, log_index));
CREATE TABLE IF NOT EXISTS plans (
  address TEXT PRIMARY KEY, owner TEXT NOT NULL, token TEXT NOT NULL, price TEXT NOT NULL,
  period INTEGER NOT NULL, grace INTEGER NOT NULL, keeper_fee_bps INTEGER NOT NULL,
  keeper_restricted INTEGER NOT NULL, status INTEGER NOT NULL, created_block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
  plan TEXT NOT NULL, subscriber TEXT NOT NULL, state TEXT NOT NULL, next_charge_at INTEGER NOT NULL,
  max_amount TEXT NOT NULL, periods_paid INTEGER NOT NULL, last_reason TEXT,
  shard_key INTEGER NOT NULL,
  PRIMARY KEY (plan, subscriber));
CREATE INDEX IF NOT EXISTS subscriptions_due ON subscriptions (state, next_charge_at);
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
`;

/** A stable small number per subscriber, for sharding: the address's last 4 bytes. */
export const shardKey = (subscriber: string): number => Number.parseInt(subscriber.slice(-8), 16);

type Row = Record<string, unknown>;

export class Store {
  readonly #db: DatabaseSync;
  #addLog: StatementSync | undefined;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
    this.#db.exec(SCHEMA);
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
    // One prepared statement for every log: a warm-up writes hundreds of thousands of them.
    this.#addLog ??= this.#db.prepare("INSERT OR REPLACE INTO logs (block, log_index, block_hash, address, topics, data) VALUES (?, ?, ?, ?, ?, ?)");
    this.#addLog.run(log.blockNumber, log.logIndex, log.blockHash, log.address, JSON.stringify(log.topics), log.data);
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
      };
    }
  }

  /** Forgets everything indexed above `block` (a reorg): logs and checkpoints; derived tables are
   * then rebuilt by replaying the remaining logs. */
  rollbackAbove(block: bigint): void {
    this.#db.prepare("DELETE FROM logs WHERE block > ?").run(block);
    this.#db.prepare("DELETE FROM checkpoints WHERE block > ?").run(block);
    this.#db.exec("DELETE FROM plans; DELETE FROM subscriptions;");
  }

  // --- plans ----------------------------------------------------------------------------------------

  upsertPlan(plan: PlanRow): void {
    this.#db
      .prepare(
        `INSERT OR REPLACE INTO plans (address, owner, token, price, period, grace, keeper_fee_bps, keeper_restricted, status, created_block)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(plan.address, plan.owner, plan.token, plan.price.toString(), plan.period, plan.grace, plan.keeperFeeBps, plan.keeperRestricted ? 1 : 0, plan.status, plan.createdBlock);
  }

  setPlanStatus(address: string, status: number): void {
    this.#db.prepare("UPDATE plans SET status = ? WHERE address = ?").run(status, address);
  }

  plans(): PlanRow[] {
    return (this.#db.prepare("SELECT * FROM plans ORDER BY created_block, address").all() as Row[]).map(toPlan);
  }

  plan(address: string): PlanRow | undefined {
    const r = this.#db.prepare("SELECT * FROM plans WHERE address = ?").get(address.toLowerCase()) as Row | undefined;
    return r === undefined ? undefined : toPlan(r);
  }

  planAddresses(): string[] {
    return (this.#db.prepare("SELECT address FROM plans ORDER BY address").all() as Row[]).map((r) => String(r.address));
  }

  // --- subscriptions --------------------------------------------------------------------------------

  subscription(plan: string, subscriber: string): SubscriptionRow | undefined {
    const r = this.#db.prepare("SELECT * FROM subscriptions WHERE plan = ? AND subscriber = ?").get(plan, subscriber) as Row | undefined;
    return r === undefined ? undefined : toSubscription(r);
  }

  putSubscription(sub: SubscriptionRow): void {
    this.#db
      .prepare(
        `INSERT OR REPLACE INTO subscriptions (plan, subscriber, state, next_charge_at, max_amount, periods_paid, last_reason, shard_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(sub.plan, sub.subscriber, sub.state, sub.nextChargeAt, sub.maxAmount.toString(), sub.periodsPaid, sub.lastReason, shardKey(sub.subscriber));
  }

  setLastReason(plan: string, subscriber: string, reason: string | null): void {
    this.#db.prepare("UPDATE subscriptions SET last_reason = ? WHERE plan = ? AND subscriber = ?").run(reason, plan, subscriber);
  }

  /** Live subscriptions due at `now` (unix seconds) and not yet past their grace window, on plans that
   * are not retired, in this shard, oldest first. Uses the (state, next_charge_at) index: the cost grows
   * with the number due, not with the number of subscriptions. */
  due(now: number, shard: { index: number; count: number }, retiredStatus: number, limit = 1_000_000): Due[] {
    const rows = this.#db
      .prepare(
        `SELECT s.plan, s.subscriber, s.next_charge_at FROM subscriptions s JOIN plans p ON p.address = s.plan
         WHERE s.state = 'live' AND s.next_charge_at <= ? AND s.next_charge_at + p.grace >= ? AND p.status != ?
           AND s.shard_key % ? = ?
         ORDER BY s.next_charge_at LIMIT ?`,
      )
      .all(now, now, retiredStatus, shard.count, shard.index, limit) as Row[];
    return rows.map((r) => ({ plan: String(r.plan), subscriber: String(r.subscriber), nextChargeAt: Number(r.next_charge_at) }));
  }

  counts(now: number, horizon: number): { plans: number; subscriptions: Record<string, number>; dueNow: number; dueSoon: number } {
    const plans = Number((this.#db.prepare("SELECT COUNT(*) AS n FROM plans").get() as Row).n);
    const subscriptions: Record<string, number> = {};
    for (const r of this.#db.prepare("SELECT state, COUNT(*) AS n FROM subscriptions GROUP BY state").all() as Row[]) {
      subscriptions[String(r.state)] = Number(r.n);
    }
    const count = (from: number, to: number) =>
      Number(
        (this.#db
          .prepare(
            `SELECT COUNT(*) AS n FROM subscriptions s JOIN plans p ON p.address = s.plan
             WHERE s.state = 'live' AND s.next_charge_at <= ? AND s.next_charge_at + p.grace >= ?`,
          )
          .get(to, from) as Row).n,
      );
    return { plans, subscriptions, dueNow: count(now, now), dueSoon: count(now, now + horizon) };
  }

  reasons(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.#db.prepare("SELECT last_reason, COUNT(*) AS n FROM subscriptions WHERE last_reason IS NOT NULL GROUP BY last_reason").all() as Row[]) {
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
    this.#db.prepare("DELETE FROM retries WHERE plan = ? AND subscriber = ?").run(plan, subscriber);
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
  };
}

// Readiness: can this keeper do its job right now? Each check says ok, fail (and why) or skipped (it
// could not be run because another failed): the RPC answers a cheap call in time (the probe's own RPC
// client has a short timeout and no retries), its head is recent, the store takes a write, the keeper's
// balance is above the floor, and the webhook outbox is not stuck (only when one runs). Concurrent
// probes share one run, so a burst of requests makes one set of RPC calls.
import type { Rpc } from "../chain/rpc.ts";
import { errorMessage } from "../errors.ts";
import type { Store } from "../index/store.ts";
import type { OutboxStats } from "./metrics.ts";

/** What `/readyz` requires (RECUR_READY_MAX_HEAD_AGE, RECUR_MIN_BALANCE, RECUR_READY_MAX_OUTBOX_AGE). */
export interface ReadyConfig {
  /** Oldest head accepted, seconds behind the keeper's clock; 0 turns the check off. */
  readonly maxHeadAgeSeconds: number;
  /** The keeper's balance must be above this, wei. */
  readonly minBalanceWei: bigint;
  /** Oldest undelivered webhook event accepted, seconds (only when a webhook outbox runs). */
  readonly maxOutboxAgeSeconds: number;
}

export interface ReadyDeps {
  /** An RPC client for probes: short timeout, no retries. */
  rpc: Rpc;
  store: Store;
  /** The keeper's clock, ms. */
  clock: () => number;
  /** The keeper account, lowercase; null without a signer (a dry run). */
  keeper: string | null;
  config: ReadyConfig;
  outboxStats?: OutboxStats;
}

export interface Check {
  status: "ok" | "fail" | "skipped";
  detail: string;
}

export interface Readiness {
  ready: boolean;
  /** The failing checks' names, in check order. */
  failing: string[];
  checks: Record<string, Check>;
}

const ok = (detail: string): Check => ({ status: "ok", detail });
const fail = (detail: string): Check => ({ status: "fail", detail });
const skipped = (detail: string): Check => ({ status: "skipped", detail });

/** Runs every check once. */
export async function checkReadiness(deps: ReadyDeps): Promise<Readiness> {
  const { rpc, config } = deps;
  const started = deps.clock();
  const [head, balance] = await Promise.allSettled([rpc.block("latest"), deps.keeper === null ? Promise.resolve(null) : rpc.balance(deps.keeper, "latest")]);
  const checks: Record<string, Check> = {};
  const unreachable = skipped("not checked: the RPC did not answer");

  if (head.status === "rejected") {
    checks.rpc = fail(errorMessage(head.reason));
    checks.head = unreachable;
  } else {
    checks.rpc = ok(`answered in ${Math.round(deps.clock() - started)} ms`);
    const age = Math.round(deps.clock() / 1000 - Number(head.value.timestamp));
    const seen = `head ${head.value.number} is ${age} s old`;
    if (config.maxHeadAgeSeconds === 0) checks.head = ok(`${seen} (not checked: RECUR_READY_MAX_HEAD_AGE is 0)`);
    else checks.head = age > config.maxHeadAgeSeconds ? fail(`${seen}, older than ${config.maxHeadAgeSeconds} s (RECUR_READY_MAX_HEAD_AGE)`) : ok(seen);
  }

  checks.store = storeCheck(deps);

  if (deps.keeper === null) checks.balance = skipped("not checked: no signer");
  else if (balance.status === "rejected") checks.balance = head.status === "rejected" ? unreachable : fail(errorMessage(balance.reason));
  else {
    const wei = balance.value!;
    const floor = config.minBalanceWei;
    checks.balance = wei > floor ? ok(`${wei} wei, above ${floor} wei`) : fail(`${wei} wei, not above the floor of ${floor} wei (RECUR_MIN_BALANCE)`);
  }

  if (deps.outboxStats !== undefined) checks.outbox = outboxCheck(deps.outboxStats, config.maxOutboxAgeSeconds);

  const failing = Object.entries(checks).filter(([, c]) => c.status === "fail").map(([name]) => name);
  return { ready: failing.length === 0, failing, checks };
}

/** A tiny write in a transaction: the store is writable (not read-only, not locked by another process
 * past its busy timeout, the disk not full). */
function storeCheck(deps: ReadyDeps): Check {
  try {
    deps.store.transaction(() => deps.store.setMeta("readyProbeAt", new Date(deps.clock()).toISOString()));
    return ok("writable");
  } catch (error) {
    return fail(`not writable: ${errorMessage(error)}`);
  }
}

function outboxCheck(stats: OutboxStats, maxAgeSeconds: number): Check {
  try {
    const { depth, oldestAgeSeconds } = stats();
    if (oldestAgeSeconds === null) return ok(`${depth} undelivered`);
    const seen = `${depth} undelivered, the oldest ${Math.round(oldestAgeSeconds)} s old`;
    return oldestAgeSeconds > maxAgeSeconds ? fail(`${seen}, older than ${maxAgeSeconds} s (RECUR_READY_MAX_OUTBOX_AGE)`) : ok(seen);
  } catch (error) {
    return fail(`not readable: ${errorMessage(error)}`);
  }
}

/** `checkReadiness`, with concurrent callers sharing the run in flight. */
export function readinessProbe(deps: ReadyDeps): () => Promise<Readiness> {
  let inFlight: Promise<Readiness> | null = null;
  return () => {
    inFlight ??= checkReadiness(deps).finally(() => {
      inFlight = null;
    });
    return inFlight;
  };
}

// The delivery worker: fans each outbox event out to the endpoints that want it (a cursor per endpoint,
// meta `webhookCursor:<url>`; an endpoint seen for the first time starts at the outbox's end), then sends
// what is due, a bounded number at once (`concurrency` in all, `perEndpoint` per endpoint: a slow or
// hanging receiver holds its own slots and no one else's), with Node's fetch and a timeout per attempt.
// At least once: a delivery is marked delivered only after its 2xx; a crash before that sends it again,
// with the same webhook-id and the same body. 2xx: delivered. 410 Gone: the endpoint is stopped (meta
// `webhookGone:<url>`; its events stay queued; `recur webhooks replay` starts it again). Anything else, a
// timeout, a refused connection: tried again on the schedule (src/webhooks/schedule.ts), at least after
// the receiver's Retry-After; after the last attempt, dead-lettered. Redirects are not followed.
import { sleepUnlessAborted } from "../sleep.ts";
import type { Rpc } from "../chain/rpc.ts";
import { errorMessage, isRetryable } from "../errors.ts";
import type { Store, WebhookDeliveryRow, WebhookEventRow } from "../index/store.ts";
import type { Logger } from "../log.ts";
import { readTokens } from "../reports/chain.ts";
import type { EndpointConfig, WebhooksConfig } from "./config.ts";
import { renderEvent } from "./events.ts";
import type { TokenView } from "./events.ts";
import { nextDelay, parseRetryAfter } from "./schedule.ts";
import { signHeaders } from "./sign.ts";
import { deriveTimeEvents } from "./derive.ts";

export type DeliveryResult = "delivered" | "failed" | "timeout" | "gone" | "dead";

export interface WorkerDeps {
  store: Store;
  rpc: Rpc;
  log: Logger;
  config: WebhooksConfig;
  /** Wall clock, unix ms. */
  clock: () => number;
  /** Stops the worker; deliveries in flight are abandoned (still pending: sent again later). */
  signal: AbortSignal;
  /** One call per attempt, with how long it took (the lead wires it to a counter). */
  onResult?: (result: DeliveryResult, ms: number) => void;
  /** In [0, 1): the retry jitter. */
  random?: () => number;
}

export interface RoundSummary {
  queued: number;
  attempted: number;
  delivered: number;
  failed: number;
  dead: number;
  gone: number;
}

const cursorKey = (url: string) => `webhookCursor:${url}`;
const goneKey = (url: string) => `webhookGone:${url}`;
/** Events read per endpoint per fan-out step. */
const FAN_OUT_PAGE = 1000;
/** A token the chain could not be asked about now (RPC down): its deliveries wait this long. */
const TOKEN_RETRY_MS = 5000;
/** How much of a receiver's error answer is kept (last_error). */
const ERROR_TEXT = 200;

/** Gives every endpoint seen for the first time a cursor at the outbox's end (it gets what happens from
 * now on; `recur webhooks replay` sends it the past). */
export function initCursors(store: Store, endpoints: readonly EndpointConfig[]): void {
  store.transaction(() => {
    const end = String(store.lastWebhookSeq());
    for (const e of endpoints) if (store.getMeta(cursorKey(e.url)) === undefined) store.setMeta(cursorKey(e.url), end);
  });
}

export const isGone = (store: Store, url: string): boolean => store.getMeta(goneKey(url)) !== undefined;

/** Starts a stopped (410) endpoint again. */
export function clearGone(store: Store, url: string): void {
  store.deleteMeta(goneKey(url));
}

const wants = (e: EndpointConfig, event: WebhookEventRow): boolean =>
  (e.plans === null || e.plans.has(event.plan)) && (e.events === null || e.events.has(event.type as never));

/** Queues a delivery of each new outbox event to each endpoint that wants it; returns how many. */
export function fanOut(store: Store, endpoints: readonly EndpointConfig[], nowMs: number): number {
  let queued = 0;
  for (const e of endpoints) {
    for (;;) {
      const cursor = Number(store.getMeta(cursorKey(e.url)) ?? store.lastWebhookSeq());
      const events = store.webhookEventsAfter(cursor, FAN_OUT_PAGE);
      if (events.length === 0) break;
      store.transaction(() => {
        for (const event of events) {
          if (!wants(e, event)) continue;
          store.queueDelivery(event.seq, e.url, nowMs);
          queued++;
        }
        store.setMeta(cursorKey(e.url), String(events.at(-1)!.seq));
      });
      if (events.length < FAN_OUT_PAGE) break;
    }
  }
  return queued;
}

/** The token as bodies show it: read once per token and kept (decimals never change); a token that does
 * not answer decimals() is shown in base units only. Undefined when the chain cannot be asked now. */
async function tokenOf(deps: WorkerDeps, address: string | null): Promise<TokenView | null | undefined> {
  if (address === null) return null;
  const known = deps.store.webhookToken(address);
  if (known !== undefined) return { address, ...known };
  const block = deps.store.lastCheckpoint()?.block;
  if (block === undefined) return undefined;
  try {
    const info = (await readTokens(deps.rpc, [address], block)).get(address)!;
    const decimals = info.decimals <= 77 ? info.decimals : null;
    deps.store.putWebhookToken(address, decimals, info.symbol);
    return { address, decimals, symbol: info.symbol };
  } catch (error) {
    if (isRetryable(error)) return undefined;
    deps.log.warn("webhook_token_unreadable", { token: address, error: errorMessage(error) });
    const symbol = `${address.slice(0, 6)}…${address.slice(-4)}`;
    deps.store.putWebhookToken(address, null, symbol);
    return { address, decimals: null, symbol };
  }
}

/** The body of one event as every attempt sends it. */
export async function bodyOf(deps: WorkerDeps, event: WebhookEventRow): Promise<string | undefined> {
  const token = await tokenOf(deps, typeof event.payload.token === "string" ? event.payload.token : null);
  if (token === undefined) return undefined;
  return renderEvent(event, token, { checkoutUrl: deps.config.checkoutUrl, portalUrl: deps.config.portalUrl });
}

/** One POST: the outcome, the HTTP status (if any), Retry-After (ms) and a short error text. */
export async function post(
  endpoint: EndpointConfig, id: string, body: string, timeoutMs: number, nowMs: number, signal: AbortSignal,
): Promise<{ outcome: "delivered" | "failed" | "timeout" | "gone" | "aborted"; status: number | null; retryAfterMs: number | null; error: string | null }> {
  const headers = { ...signHeaders(endpoint.secrets, id, Math.floor(nowMs / 1000), body), "content-type": "application/json", "user-agent": "recur-webhooks/1" };
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(endpoint.url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.any([timeout, signal]) });
    // The answer's body is not needed: a little of it names the error; the rest is dropped unread.
    let text = "";
    if (res.status < 200 || res.status > 299) text = (await readSome(res, ERROR_TEXT)).replace(/[^\x20-\x7e]/g, "?");
    else await res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status <= 299) return { outcome: "delivered", status: res.status, retryAfterMs: null, error: null };
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"), nowMs);
    if (res.status === 410) return { outcome: "gone", status: 410, retryAfterMs, error: text || "410 Gone" };
    return { outcome: "failed", status: res.status, retryAfterMs, error: `HTTP ${res.status}${text === "" ? "" : `: ${text}`}` };
  } catch (error) {
    if (signal.aborted) return { outcome: "aborted", status: null, retryAfterMs: null, error: null };
    if (timeout.aborted) return { outcome: "timeout", status: null, retryAfterMs: null, error: `no answer within ${timeoutMs} ms` };
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { outcome: "failed", status: null, retryAfterMs: null, error: (cause?.code ?? cause?.message ?? errorMessage(error)).slice(0, ERROR_TEXT) };
  }
}

/** At most `limit` characters of a response body, then the rest dropped (a hostile receiver's endless
 * answer costs one chunk). */
async function readSome(res: Response, limit: number): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  let text = "";
  try {
    while (text.length < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString("utf8");
    }
  } catch {
    // The answer broke off: what came is enough.
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text.slice(0, limit);
}

/** Attempts one delivery and records its outcome. */
async function attempt(deps: WorkerDeps, endpoint: EndpointConfig, row: WebhookDeliveryRow, summary: RoundSummary): Promise<void> {
  const { store, log, config } = deps;
  const event = store.webhookEventBySeq(row.eventSeq);
  if (event === undefined) return; // rolled back by a reorg while queued
  const body = await bodyOf(deps, event);
  if (body === undefined) {
    store.setDelivery({ ...row, nextAttemptAt: deps.clock() + TOKEN_RETRY_MS });
    return;
  }
  const started = deps.clock();
  const result = await post(endpoint, event.id, body, config.timeoutMs, started, deps.signal);
  if (result.outcome === "aborted") return;
  const ms = deps.clock() - started;
  summary.attempted++;
  const attempts = row.attempts + 1;
  const now = deps.clock();
  if (result.outcome === "delivered") {
    store.setDelivery({ ...row, state: "delivered", attempts, lastStatus: result.status, lastError: null, deliveredAt: now });
    summary.delivered++;
    deps.onResult?.("delivered", ms);
    log.debug("webhook_delivered", { endpoint: endpoint.name, id: event.id, type: event.type, attempts, ms });
    return;
  }
  if (result.outcome === "gone") {
    const first = !isGone(store, endpoint.url);
    store.transaction(() => {
      store.setDelivery({ ...row, attempts, lastStatus: 410, lastError: result.error, nextAttemptAt: now });
      if (first) store.setMeta(goneKey(endpoint.url), String(now));
    });
    deps.onResult?.("gone", ms);
    if (!first) return; // another delivery in flight when the first 410 came
    summary.gone++;
    log.error("webhook_endpoint_gone", { endpoint: endpoint.name, id: event.id, note: "410 Gone: no more deliveries to it; its events stay queued (recur webhooks replay starts it again)" });
    return;
  }
  deps.onResult?.(result.outcome, ms);
  const delay = nextDelay(attempts, config.retryScheduleMs, result.retryAfterMs, deps.random);
  if (delay === null) {
    store.setDelivery({ ...row, state: "dead", attempts, lastStatus: result.status, lastError: result.error });
    summary.dead++;
    deps.onResult?.("dead", ms);
    log.warn("webhook_dead", { endpoint: endpoint.name, id: event.id, type: event.type, attempts, error: result.error });
    return;
  }
  store.setDelivery({ ...row, attempts, nextAttemptAt: now + delay, lastStatus: result.status, lastError: result.error });
  summary.failed++;
  log.info("webhook_failed", { endpoint: endpoint.name, id: event.id, type: event.type, attempts, retryInMs: delay, error: result.error });
}

/** The endpoints that are configured and not stopped by a 410. */
export const activeEndpoints = (store: Store, config: WebhooksConfig): EndpointConfig[] => config.endpoints.filter((e) => !isGone(store, e.url));

/** The outbox as metrics and readiness see it: deliveries pending to the active endpoints, and the age
 * (seconds) of the oldest event among them (null when none is pending). */
export function outboxStats(store: Store, config: WebhooksConfig, nowSeconds: number): { depth: number; oldestAgeSeconds: number | null } {
  return store.webhookOutboxStats(nowSeconds, activeEndpoints(store, config).map((e) => e.url));
}

/** Fans out and sends everything due now, until nothing due is left (each delivery at most once per
 * call: a failed one is due again only later). */
export async function deliverDue(deps: WorkerDeps): Promise<RoundSummary> {
  const { store, config } = deps;
  const summary: RoundSummary = { queued: 0, attempted: 0, delivered: 0, failed: 0, dead: 0, gone: 0 };
  const inflight = new Map<string, Promise<void>>();
  const perEndpoint = new Map<string, number>();
  const tried = new Set<string>();
  let fannedAt = -Infinity;
  // Rows already tried in this call (or in flight) can fill a page of due rows: the page then widens.
  let page = config.concurrency * 4;
  for (;;) {
    if (deps.signal.aborted) break;
    const now = deps.clock();
    if (now - fannedAt >= config.intervalMs) {
      summary.queued += fanOut(store, config.endpoints, now);
      fannedAt = now;
    }
    const free = activeEndpoints(store, config).filter((e) => (perEndpoint.get(e.url) ?? 0) < config.perEndpoint);
    if (inflight.size < config.concurrency && free.length > 0) {
      const rows = store.dueDeliveries(now, free.map((e) => e.url), page + inflight.size);
      const launched = inflight.size;
      for (const row of rows) {
        if (inflight.size >= config.concurrency) break;
        const key = `${row.eventSeq}:${row.endpoint}`;
        const endpoint = config.endpoints.find((e) => e.url === row.endpoint)!;
        if (inflight.has(key) || tried.has(key) || (perEndpoint.get(row.endpoint) ?? 0) >= config.perEndpoint || isGone(store, row.endpoint)) continue;
        tried.add(key);
        perEndpoint.set(row.endpoint, (perEndpoint.get(row.endpoint) ?? 0) + 1);
        const task = attempt(deps, endpoint, row, summary)
          .catch((error: unknown) => deps.log.error("webhook_attempt_failed", { endpoint: endpoint.name, error: errorMessage(error) }))
          .finally(() => {
            inflight.delete(key);
            perEndpoint.set(row.endpoint, (perEndpoint.get(row.endpoint) ?? 1) - 1);
          });
        inflight.set(key, task);
      }
      if (inflight.size === launched && rows.length === page + launched && inflight.size < config.concurrency) {
        page *= 2;
        continue;
      }
      page = config.concurrency * 4;
    }
    if (inflight.size === 0) break;
    await Promise.race(inflight.values());
  }
  await Promise.all(inflight.values());
  return summary;
}

/** One round: derive the time events if the index moved (its last block's time is "now"), then fan out
 * and send what is due. */
export async function webhookRound(deps: WorkerDeps & { chainId: bigint }, state: { derivedAt: bigint | null } = { derivedAt: null }): Promise<RoundSummary & { derived: number }> {
  let derived = 0;
  const checkpoint = deps.store.lastCheckpoint();
  if (checkpoint !== undefined && checkpoint.block !== state.derivedAt) {
    const block = await deps.rpc.block(checkpoint.block);
    derived = await deriveTimeEvents(deps, Number(block.timestamp), checkpoint.block);
    state.derivedAt = checkpoint.block;
  }
  return { ...(await deliverDue(deps)), derived };
}

/** The daemon's worker: a round every `intervalMs` (sooner when a retry falls due) until the signal; a
 * failed round is logged and the next one runs: nothing here stops the charging passes. */
export async function runWebhookWorker(deps: WorkerDeps & { chainId: bigint }): Promise<void> {
  const state = { derivedAt: null as bigint | null };
  while (!deps.signal.aborted) {
    try {
      const r = await webhookRound(deps, state);
      if (r.attempted > 0 || r.derived > 0) deps.log.info("webhooks", { derived: r.derived, queued: r.queued, attempted: r.attempted, delivered: r.delivered, failed: r.failed, dead: r.dead, gone: r.gone });
    } catch (error) {
      deps.log.error("webhooks_failed", { error: errorMessage(error) });
    }
    const next = deps.store.nextDeliveryAt(activeEndpoints(deps.store, deps.config).map((e) => e.url));
    const wait = next === null ? deps.config.intervalMs : Math.max(10, Math.min(deps.config.intervalMs, next - deps.clock()));
    await sleepUnlessAborted(wait, deps.signal);
  }
}


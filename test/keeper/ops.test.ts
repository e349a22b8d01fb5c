// The operator surface's parts on their own, without a chain: the metrics registry (outbox gauges only
// with an outbox, bounded labels, webhook deliveries), the readiness checks against an RPC endpoint that
// refuses connections and a real store, and the HTTP listener served and scraped over real sockets.
// The whole keeper, against a real node, is in test/keeper/metrics.test.ts.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { createRpc } from "../../src/chain/rpc.ts";
import type { RpcObserver } from "../../src/chain/rpc.ts";
import { Store } from "../../src/index/store.ts";
import { createLogger } from "../../src/log.ts";
import { startOpsServer } from "../../src/ops/http.ts";
import { createMetrics, MAX_PLAN_LABELS } from "../../src/ops/metrics.ts";
import type { OutboxStats } from "../../src/ops/metrics.ts";
import { checkReadiness, readinessProbe } from "../../src/ops/ready.ts";
import { parseSamples, sampleKey } from "./support/prometheus.ts";

const newStore = () => new Store(path.join(mkdtempSync(path.join(tmpdir(), "recur-ops-")), "keeper.sqlite"));
/** The keeper's clock stands at 1,000,000 s. */
const metricsOf = (store: Store, outboxStats?: OutboxStats) =>
  createMetrics({ store, clock: () => 1_000_000_000, confirmations: 2, info: { chainId: "31337", shard: "0/1" }, ...(outboxStats === undefined ? {} : { outboxStats }) });
/** Nothing listens on the discard port: every request is refused at once. */
const deadRpc = (observe?: RpcObserver) => createRpc("http://127.0.0.1:9", { timeoutMs: 500, retries: 0, backoffMs: 0, ...(observe === undefined ? {} : { observe }) });
const READY = { maxHeadAgeSeconds: 300, minBalanceWei: 0n, maxOutboxAgeSeconds: 3_600 };

describe("keeper operator surface (metrics, readiness, listener)", () => {
  let store: Store;
  beforeEach(() => {
    store = newStore();
  });
  afterEach(() => {
    try {
      store.close();
    } catch {
      // closed by the test
    }
  });

  it("the outbox gauges are absent without an outbox and read at scrape time with one", async () => {
    expect(await metricsOf(store).registry.metrics()).not.to.include("recur_webhook_outbox");
    let stats = { depth: 3, oldestAgeSeconds: 42 as number | null };
    const metrics = metricsOf(store, () => stats);
    let samples = parseSamples(await metrics.registry.metrics());
    expect(samples.get(sampleKey("recur_webhook_outbox_depth"))).to.equal(3);
    expect(samples.get(sampleKey("recur_webhook_outbox_oldest_age_seconds"))).to.equal(42);
    stats = { depth: 0, oldestAgeSeconds: null };
    samples = parseSamples(await metrics.registry.metrics());
    expect(samples.get(sampleKey("recur_webhook_outbox_depth"))).to.equal(0);
    expect(samples.get(sampleKey("recur_webhook_outbox_oldest_age_seconds"))).to.equal(0);
  });

  it("webhookDelivery counts by result; a result that is not a short lowercase word counts as other", async () => {
    const metrics = metricsOf(store);
    metrics.webhookDelivery("delivered");
    metrics.webhookDelivery("delivered");
    metrics.webhookDelivery("gone");
    metrics.webhookDelivery("HTTP 500 from https://merchant.example/hook?token=x");
    const samples = parseSamples(await metrics.registry.metrics());
    expect(samples.get(sampleKey("recur_webhook_deliveries_total", { result: "delivered" }))).to.equal(2);
    expect(samples.get(sampleKey("recur_webhook_deliveries_total", { result: "gone" }))).to.equal(1);
    expect(samples.get(sampleKey("recur_webhook_deliveries_total", { result: "other" }))).to.equal(1);
  });

  it(`plan labels stop at ${MAX_PLAN_LABELS} plans; the charges of later plans count under plan="other"`, async () => {
    const metrics = metricsOf(store);
    const plan = (i: number) => `0x${i.toString(16).padStart(40, "0")}`;
    for (let i = 0; i < MAX_PLAN_LABELS + 5; i++) metrics.pass.item(plan(i), "charged", null, 30);
    metrics.pass.item(plan(0), "charged", null, 30);
    const samples = parseSamples(await metrics.registry.metrics());
    const plans = [...samples.keys()].filter((k) => k.startsWith("recur_charges_total{"));
    expect(plans).to.have.length(MAX_PLAN_LABELS + 1);
    expect(samples.get(sampleKey("recur_charges_total", { plan: plan(0), result: "charged" }))).to.equal(2);
    expect(samples.get(sampleKey("recur_charges_total", { plan: "other", result: "charged" }))).to.equal(5);
    expect(samples.get(sampleKey("recur_charge_lag_seconds_count"))).to.equal(MAX_PLAN_LABELS + 6);
  });

  it("the head sets the head, confirmed-block and head-age gauges; a held plan counts until its time is up", async () => {
    const metrics = metricsOf(store);
    metrics.pass.head({ number: 120n, hash: "0x", timestamp: 999_990n, baseFeePerGas: null });
    store.putPlanHealth({ plan: "0xa", kind: "quarantine", reason: "eth_call: boom", failures: 3, since: 999_000, until: 999_991 });
    store.putPlanHealth({ plan: "0xb", kind: "backoff", reason: "TransferFailed", failures: 1, since: 999_000, until: 999_980 });
    const samples = parseSamples(await metrics.registry.metrics());
    expect(samples.get(sampleKey("recur_head_block"))).to.equal(120);
    expect(samples.get(sampleKey("recur_last_confirmed_block"))).to.equal(119);
    expect(samples.get(sampleKey("recur_head_age_seconds"))).to.equal(10);
    expect(samples.get(sampleKey("recur_plans_held", { kind: "quarantine" }))).to.equal(1);
    expect(samples.get(sampleKey("recur_plans_held", { kind: "backoff" }))).to.equal(0);
  });

  it("readiness with the RPC refusing connections: rpc fails, head and balance are skipped, the store is checked by a write", async () => {
    const readiness = await checkReadiness({ rpc: deadRpc(), store, clock: () => Date.now(), keeper: "0x0000000000000000000000000000000000000001", config: READY });
    expect(readiness.ready).to.equal(false);
    expect(readiness.failing).to.deep.equal(["rpc"]);
    expect(readiness.checks.rpc!.detail).to.match(/^eth_getBlockByNumber: /);
    expect(readiness.checks.head!.status).to.equal("skipped");
    expect(readiness.checks.balance!.status).to.equal("skipped");
    expect(readiness.checks.store).to.deep.equal({ status: "ok", detail: "writable" });
    expect(store.getMeta("readyProbeAt")).to.be.a("string");
    expect(readiness.checks).not.to.have.property("outbox");
  });

  it("readiness: an outbox event older than RECUR_READY_MAX_OUTBOX_AGE fails the outbox check; a closed store fails the store check", async () => {
    const deps = { rpc: deadRpc(), store, clock: () => Date.now(), keeper: null, config: READY };
    const young = await checkReadiness({ ...deps, outboxStats: () => ({ depth: 2, oldestAgeSeconds: 60 }) });
    expect(young.checks.outbox).to.deep.equal({ status: "ok", detail: "2 undelivered, the oldest 60 s old" });
    expect(young.checks.balance).to.deep.equal({ status: "skipped", detail: "not checked: no signer" });
    const stuck = await checkReadiness({ ...deps, outboxStats: () => ({ depth: 7, oldestAgeSeconds: 7_200 }) });
    expect(stuck.failing).to.deep.equal(["rpc", "outbox"]);
    expect(stuck.checks.outbox!.detail).to.equal("7 undelivered, the oldest 7200 s old, older than 3600 s (RECUR_READY_MAX_OUTBOX_AGE)");
    store.close();
    const closed = await checkReadiness(deps);
    expect(closed.failing).to.deep.equal(["rpc", "store"]);
    expect(closed.checks.store!.detail).to.match(/^not writable: /);
  });

  it("concurrent readiness probes share one run; the next probe runs anew", async () => {
    let runs = 0;
    const probe = readinessProbe({ rpc: deadRpc(() => runs++), store, clock: () => Date.now(), keeper: null, config: READY });
    const first = probe();
    expect(probe()).to.equal(first);
    await first;
    expect(runs).to.equal(1);
    await probe();
    expect(runs).to.equal(2);
  });

  it("the listener: /healthz, /metrics with the registry's content type, /readyz 503 naming the failing check, 404 and 405, closed by close()", async () => {
    const metrics = metricsOf(store);
    const log = createLogger(process.stderr, { level: "error" });
    const ready = readinessProbe({ rpc: deadRpc(metrics.rpc), store, clock: () => Date.now(), keeper: null, config: READY });
    const server = await startOpsServer({ host: "127.0.0.1", port: 0, metrics, ready, log });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      expect(server.port).to.be.greaterThan(0);
      const health = await fetch(`${base}/healthz`);
      expect([health.status, await health.json()]).to.deep.equal([200, { status: "ok" }]);
      const scraped = await fetch(`${base}/metrics`);
      expect(scraped.status).to.equal(200);
      expect(scraped.headers.get("content-type")).to.equal(metrics.registry.contentType);
      expect(await scraped.text()).to.include("# TYPE recur_charges_total counter");
      const head = await fetch(`${base}/metrics`, { method: "HEAD" });
      expect([head.status, await head.text()]).to.deep.equal([200, ""]);
      const [a, b] = await Promise.all([fetch(`${base}/readyz`), fetch(`${base}/readyz`)]);
      for (const res of [a, b]) {
        expect(res.status).to.equal(503);
        const body = (await res.json()) as { status: string; failing: string[]; reason: string };
        expect(body).to.deep.include({ status: "not_ready", failing: ["rpc"] });
        expect(body.reason).to.match(/^rpc: eth_getBlockByNumber: /);
      }
      // The probe's calls are counted, by method and outcome.
      const calls = parseSamples(await metrics.registry.metrics());
      expect(calls.get(sampleKey("recur_rpc_requests_total", { method: "eth_getBlockByNumber", outcome: "transport" }))).to.be.at.least(2);
      expect((await fetch(`${base}/`)).status).to.equal(404);
      expect((await fetch(`${base}/metrics/x`)).status).to.equal(404);
      const post = await fetch(`${base}/readyz`, { method: "POST" });
      expect([post.status, post.headers.get("allow")]).to.deep.equal([405, "GET, HEAD"]);
    } finally {
      await server.close();
    }
    let refused = false;
    await fetch(`${base}/healthz`).catch(() => (refused = true));
    expect(refused).to.equal(true);
  });
});

// The daemon's metrics, health and readiness end to end: a real hardhat node behind a TCP proxy the test
// can take away, the keeper as a process (`recur run`, listening on a free port), and real HTTP scrapes.
// After a scripted run (charges that succeed, one that the token refuses on-chain, one the re-check
// skips), `/metrics` says what the chain says; `/readyz` fails when the RPC goes away and recovers when it
// comes back, and fails when the balance floor is above the keeper's balance. With webhooks configured
// (a real receiver on 127.0.0.1), `/metrics` counts every delivery attempt by result and shows the
// outbox gauges, and `/readyz` fails naming the outbox while the receiver refuses, and recovers after.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import type { Contract, TransactionReceipt } from "ethers";

import { planInterface, reasonName } from "../../src/chain/abi.ts";
import { deploy, poll, runKeeper, startKeeper, useSharedNode } from "./support/chain.ts";
import type { KeeperProcess, Node } from "./support/chain.ts";
import { createPlan, eoaSubscriber } from "./support/hostile.ts";
import { parseSamples, sampleKey } from "./support/prometheus.ts";
import { PERIOD, setUp, subscribeNew } from "./support/scenario.ts";
import { startSwitchProxy } from "./support/switch-proxy.ts";
import { OLD_SECRET, tmp, writeConfig } from "../webhooks/support/helpers.ts";
import { startReceiver } from "../webhooks/support/receiver.ts";

const storePath = () => path.join(mkdtempSync(path.join(tmpdir(), "recur-metrics-")), "keeper.sqlite");
const lower = (c: Contract) => String(c.target).toLowerCase();

/** The sample's value; fails when it is absent. */
function value(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const key = sampleKey(name, labels);
  expect(samples.has(key), `${key} in /metrics`).to.equal(true);
  return samples.get(key)!;
}

async function scrape(base: string): Promise<{ samples: Map<string, number>; text: string; type: string | null }> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).to.equal(200);
  const text = await res.text();
  return { samples: parseSamples(text), text, type: res.headers.get("content-type") };
}

interface ReadyBody {
  status: string;
  failing?: string[];
  reason?: string;
  checks: Record<string, { status: string; detail: string }>;
}

async function readyz(base: string): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

/** The n-th `pass` line after `after` (a line already seen). */
async function passAfter(keeper: KeeperProcess, after: Record<string, unknown>, n = 1): Promise<Record<string, unknown>> {
  return keeper.waitForLine((l) => l.event === "pass" && keeper.lines.filter((p) => p.event === "pass" && keeper.lines.indexOf(p) > keeper.lines.indexOf(after)).indexOf(l) === n - 1);
}

/** The keeper's own transactions mined in blocks (from, to], with their receipts. */
async function keeperReceipts(node: Node, keeper: string, from: number, to: number): Promise<TransactionReceipt[]> {
  const receipts: TransactionReceipt[] = [];
  for (let b = from + 1; b <= to; b++) {
    const block = await node.provider.getBlock(b, true);
    for (const tx of block!.prefetchedTransactions) if (tx.from.toLowerCase() === keeper) receipts.push((await node.provider.getTransactionReceipt(tx.hash))!);
  }
  return receipts;
}

describe("keeper metrics, health and readiness (end to end)", function () {
  this.timeout(300_000);
  let node!: Node;
  useSharedNode((started) => (node = started));

  it("/metrics after a scripted run matches the chain (charges by plan, failures by reason, gas, balance, indexed block); /readyz goes 503 when the RPC goes away and 200 when it returns", async () => {
    // A USDC plan with three customers, one of whom revokes the allowance (the re-check skips it), and a
    // plan on a token with a block list, with two customers and one the token refuses (ChargeFailed).
    const s = await setUp(node, { planCount: 1, perPlan: 3, storePath: storePath() });
    const usdcPlan = s.plans[0]!;
    const revoked = s.subscribers.get(lower(usdcPlan))![0]!;
    await (await (s.token.connect(s.wallets.get(revoked)!) as Contract).getFunction("approve")(lower(usdcPlan), 0n)).wait();
    const blockToken = await deploy("BlocklistToken", s.deployer);
    const blockPlan = await createPlan(s, String(blockToken.target));
    for (let i = 0; i < 2; i++) await eoaSubscriber(node, s, blockToken, blockPlan);
    const refused = await eoaSubscriber(node, s, blockToken, blockPlan);
    await (await blockToken.getFunction("setBlocked")(refused, true)).wait();
    await node.mineAt((await node.latestTimestamp()) + PERIOD);
    const startBlock = await node.provider.getBlockNumber();
    const balanceBefore = await node.provider.getBalance(s.keeperAddress);

    const proxy = await startSwitchProxy(node.port);
    try {
      const keeper = startKeeper(["run"], s.env({ RECUR_RPC_URL: proxy.url, RECUR_POLL_INTERVAL: "1", RECUR_METRICS_PORT: "0", RECUR_RPC_TIMEOUT_MS: "2000" }));
      const listening = await keeper.waitForLine((l) => l.event === "http_listening");
      expect(listening).to.include({ host: "127.0.0.1" });
      const base = `http://127.0.0.1:${Number(listening.port)}`;
      const charging = await keeper.waitForLine((l) => l.event === "pass" && l.charged === 4);
      expect(charging.failed).to.deep.equal({ TransferFailed: 1 });
      expect(charging.skipped).to.deep.equal({ AllowanceTooLow: 1 });
      // The next pass indexes the charges' blocks; once the one after it has started, the figures read
      // after the first (the balance) are in too, and nothing moves on the chain any more.
      await passAfter(keeper, charging, 2);

      const { samples, text, type } = await scrape(base);
      expect(type).to.equal("text/plain; version=0.0.4; charset=utf-8");
      const head = await node.provider.getBlockNumber();
      const receipts = await keeperReceipts(node, s.keeperAddress, startBlock, head);
      expect(receipts).to.have.length(2);

      // Charges and failures, as the chain's events in the keeper's own transactions say.
      const charged = new Map<string, number>();
      const failedBy = new Map<string, number>();
      for (const r of receipts) {
        for (const l of r.logs) {
          const e = planInterface.parseLog(l);
          if (e?.name === "Charged") charged.set(l.address.toLowerCase(), (charged.get(l.address.toLowerCase()) ?? 0) + 1);
          if (e?.name === "ChargeFailed") failedBy.set(reasonName(e.args.reason as bigint), (failedBy.get(reasonName(e.args.reason as bigint)) ?? 0) + 1);
        }
      }
      expect(Object.fromEntries(charged)).to.deep.equal({ [lower(usdcPlan)]: 2, [lower(blockPlan)]: 2 });
      for (const [plan, n] of charged) expect(value(samples, "recur_charges_total", { plan, result: "charged" }), plan).to.equal(n);
      expect(Object.fromEntries(failedBy)).to.deep.equal({ TransferFailed: 1 });
      expect(value(samples, "recur_charge_failures_total", { reason: "TransferFailed" })).to.equal(1);
      expect(value(samples, "recur_charge_failures_total", { reason: "BalanceTooLow" })).to.equal(0);
      expect(value(samples, "recur_charges_total", { plan: lower(blockPlan), result: "failed" })).to.equal(1);
      expect(value(samples, "recur_charges_total", { plan: lower(usdcPlan), result: "skipped" })).to.be.at.least(1);
      expect(value(samples, "recur_charges_skipped_total", { reason: "AllowanceTooLow" })).to.be.at.least(1);

      // Gas and fees: the receipts' sums; the fees are what the keeper's balance lost.
      const gasUsed = receipts.reduce((sum, r) => sum + r.gasUsed, 0n);
      const fees = receipts.reduce((sum, r) => sum + r.gasUsed * r.gasPrice, 0n);
      expect(value(samples, "recur_gas_used_total")).to.equal(Number(gasUsed));
      expect(value(samples, "recur_fees_paid_wei_total")).to.equal(Number(fees));
      const balance = await node.provider.getBalance(s.keeperAddress);
      expect(balanceBefore - balance).to.equal(fees);
      expect(value(samples, "recur_keeper_balance_wei")).to.equal(Number(balance));
      expect(value(samples, "recur_transactions_total", { status: "success" })).to.equal(2);
      expect(value(samples, "recur_rpc_requests_total", { method: "eth_sendRawTransaction", outcome: "ok" })).to.equal(2);

      // Batches: one per plan, 2 + 3 subscribers sent (the revoked one never); every charge's lag seen.
      expect(value(samples, "recur_batch_size_count")).to.equal(2);
      expect(value(samples, "recur_batch_size_sum")).to.equal(5);
      expect(value(samples, "recur_charge_lag_seconds_count")).to.equal(4);

      // The index and the head, as the store and the node say.
      const status = JSON.parse((await runKeeper(["status", "--json"], s.env())).stdout) as { head: string; indexedTo: string; dueNow: number };
      expect(status.indexedTo).to.equal(String(head));
      expect(value(samples, "recur_last_indexed_block")).to.equal(head);
      expect(value(samples, "recur_last_confirmed_block")).to.equal(head);
      expect(value(samples, "recur_head_block")).to.equal(head);
      // Still due: the revoked one (skipped) and the refused one (waiting for its retry).
      expect(status.dueNow).to.equal(2);
      expect(value(samples, "recur_due_subscriptions")).to.equal(2);
      expect(value(samples, "recur_plans_held", { kind: "quarantine" })).to.equal(0);
      expect(value(samples, "recur_passes_total", { result: "ok" })).to.be.at.least(3);
      expect(value(samples, "recur_keeper_info", { chain_id: "31337", shard: "0/1", keeper: s.keeperAddress })).to.equal(1);
      // Default process metrics, and no outbox gauges while no webhook worker runs.
      expect(samples.has(sampleKey("process_cpu_user_seconds_total"))).to.equal(true);
      expect(text).to.include("# HELP nodejs_heap_size_used_bytes");
      expect(text).not.to.include("recur_webhook_outbox");

      // Health: alive, no RPC needed. Readiness: every check passes.
      const health = await fetch(`${base}/healthz`);
      expect([health.status, await health.json()]).to.deep.equal([200, { status: "ok" }]);
      const ready = await readyz(base);
      expect(ready.status, JSON.stringify(ready.body)).to.equal(200);
      expect(ready.body.status).to.equal("ready");
      expect(Object.fromEntries(Object.entries(ready.body.checks).map(([k, c]) => [k, c.status]))).to.deep.equal({ rpc: "ok", head: "ok", store: "ok", balance: "ok" });
      expect((await fetch(`${base}/nope`)).status).to.equal(404);
      expect((await fetch(`${base}/metrics`, { method: "POST" })).status).to.equal(405);

      // The RPC goes away: not ready, and the reason names it; still alive.
      await proxy.close();
      const down = await readyz(base);
      expect(down.status, JSON.stringify(down.body)).to.equal(503);
      expect(down.body).to.include({ status: "not_ready" });
      expect(down.body.failing).to.deep.equal(["rpc"]);
      expect(down.body.reason).to.match(/^rpc: eth_getBlockByNumber: /);
      expect(down.body.checks.head!.status).to.equal("skipped");
      expect(down.body.checks.store!.status).to.equal("ok");
      expect((await fetch(`${base}/healthz`)).status).to.equal(200);
      expect(value((await scrape(base)).samples, "recur_rpc_requests_total", { method: "eth_getBlockByNumber", outcome: "transport" })).to.be.at.least(1);

      // It comes back: ready again.
      await proxy.open();
      const back = await poll("/readyz 200 again", async () => ((await readyz(base)).status === 200 ? true : undefined));
      expect(back).to.equal(true);

      // SIGTERM stops the daemon and its listener.
      keeper.kill("SIGTERM");
      const result = await keeper.waitForExit(30_000);
      expect(result.code, result.stdout.slice(-3000) + result.stderr).to.equal(0);
      expect(result.lines.at(-1)).to.include({ event: "stop" });
      let refused = false;
      await fetch(`${base}/healthz`).catch(() => (refused = true));
      expect(refused, "the listener is closed").to.equal(true);
    } finally {
      await proxy.close();
    }
  });

  it("/readyz is 503 naming the balance when RECUR_MIN_BALANCE is above the keeper's balance; run --once never listens", async () => {
    const s = await setUp(node, { planCount: 1, perPlan: 1, storePath: storePath() });
    const keeper = startKeeper(["run", "--dry-run"], s.env({ RECUR_POLL_INTERVAL: "1", RECUR_METRICS_PORT: "0", RECUR_MIN_BALANCE: "1000000" }));
    const listening = await keeper.waitForLine((l) => l.event === "http_listening");
    const base = `http://127.0.0.1:${Number(listening.port)}`;
    const balance = await node.provider.getBalance(s.keeperAddress);
    const { status, body } = await readyz(base);
    expect(status, JSON.stringify(body)).to.equal(503);
    expect(body.failing).to.deep.equal(["balance"]);
    expect(body.reason).to.equal(`balance: ${balance} wei, not above the floor of ${10n ** 24n} wei (RECUR_MIN_BALANCE)`);
    expect(body.checks.rpc!.status).to.equal("ok");
    keeper.kill("SIGTERM");
    expect((await keeper.waitForExit(30_000)).code).to.equal(0);

    const once = await runKeeper(["run", "--once"], s.env({ RECUR_METRICS_PORT: "0" }));
    expect(once.code, once.stderr).to.equal(0);
    expect(once.lines.some((l) => l.event === "http_listening")).to.equal(false);
  });

  it("with webhooks, /metrics counts each delivery attempt by result and shows the outbox gauges; /readyz goes 503 naming the outbox while the receiver answers 500, and 200 once it answers 2xx again", async () => {
    const dir = tmp();
    const receiver = await startReceiver();
    try {
      const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: path.join(dir, "keeper.sqlite") });
      const plan = s.plans[0]!;
      // Sign-ups only (no time events); a failed delivery is tried again every second, far from dead.
      const webhooks = writeConfig(dir, {
        endpoints: [{ url: receiver.url, secrets: [OLD_SECRET] }],
        upcomingLead: "0s", trialWillEndLead: "0s", retrySchedule: Array(30).fill("1s"), timeout: "5s", interval: "50ms",
      });
      const keeper = startKeeper(["run"], s.env({ RECUR_WEBHOOKS: webhooks, RECUR_POLL_INTERVAL: "1", RECUR_METRICS_PORT: "0", RECUR_READY_MAX_OUTBOX_AGE: "1s" }));
      const listening = await keeper.waitForLine((l) => l.event === "http_listening");
      const base = `http://127.0.0.1:${Number(listening.port)}`;
      const answered = (kind: "ok" | number) => receiver.requests.filter((r) => r.answered === kind).length;
      const deliveries = (samples: Map<string, number>, result: string) => samples.get(sampleKey("recur_webhook_deliveries_total", { result })) ?? 0;

      // Two sign-ups: a subscription.created and a charge.succeeded each (a block more: confirmed).
      for (let i = 0; i < 2; i++) await subscribeNew(node, s.token, s.deployer, plan);
      await node.mineAt(Number(await node.latestTimestamp()) + 1);
      await poll("4 events delivered, none pending", async () => {
        const { samples } = await scrape(base);
        return receiver.delivered().size === 4 && samples.get(sampleKey("recur_webhook_outbox_depth")) === 0 ? true : undefined;
      }, 60_000, 100);
      const first = await scrape(base);
      expect(receiver.requests.length).to.equal(4);
      expect(value(first.samples, "recur_webhook_deliveries_total", { result: "delivered" }), "delivered attempts, as the receiver counts its requests").to.equal(receiver.requests.length);
      for (const result of ["failed", "timeout", "gone", "dead"]) expect(deliveries(first.samples, result), result).to.equal(0);
      expect(value(first.samples, "recur_webhook_outbox_depth")).to.equal(0);
      expect(value(first.samples, "recur_webhook_outbox_oldest_age_seconds")).to.equal(0);
      expect(first.text).to.include("# TYPE recur_webhook_outbox_depth gauge");
      expect(first.text).to.include("# TYPE recur_webhook_outbox_oldest_age_seconds gauge");
      const ready = await readyz(base);
      expect(ready.status, JSON.stringify(ready.body)).to.equal(200);
      expect(Object.fromEntries(Object.entries(ready.body.checks).map(([k, c]) => [k, c.status]))).to.deep.equal({ rpc: "ok", head: "ok", store: "ok", balance: "ok", outbox: "ok" });
      expect(ready.body.checks.outbox!.detail).to.equal("0 undelivered");

      // The receiver refuses: one more sign-up's two events stay pending, older than RECUR_READY_MAX_OUTBOX_AGE.
      receiver.mode = { kind: "status", status: 500 };
      await subscribeNew(node, s.token, s.deployer, plan);
      await node.mineAt(Number(await node.latestTimestamp()) + 1);
      const down = await poll("/readyz 503", async () => {
        const r = await readyz(base);
        return r.status === 503 ? r : undefined;
      }, 60_000, 100);
      expect(down.body).to.include({ status: "not_ready" });
      expect(down.body.failing, JSON.stringify(down.body)).to.deep.equal(["outbox"]);
      expect(down.body.checks.outbox!.status).to.equal("fail");
      expect(down.body.reason).to.match(/^outbox: 2 undelivered, the oldest \d+ s old, older than 1 s \(RECUR_READY_MAX_OUTBOX_AGE\)$/);
      expect(answered(500), "the receiver was asked and said no").to.be.greaterThan(0);
      // Between two retries (a second apart) the counter has caught up with the receiver's answers.
      const refusing = await poll("the failed attempts counted", async () => {
        const r = await scrape(base);
        return deliveries(r.samples, "failed") === answered(500) ? r : undefined;
      }, 30_000, 50);
      expect(value(refusing.samples, "recur_webhook_deliveries_total", { result: "failed" })).to.be.greaterThan(0);
      expect(value(refusing.samples, "recur_webhook_deliveries_total", { result: "delivered" })).to.equal(4);
      expect(value(refusing.samples, "recur_webhook_outbox_depth")).to.equal(2);
      expect(value(refusing.samples, "recur_webhook_outbox_oldest_age_seconds")).to.be.greaterThan(1);
      expect((await fetch(`${base}/healthz`)).status, "still alive").to.equal(200);

      // It answers 2xx again: the retries deliver, the outbox empties, ready again.
      receiver.mode = { kind: "ok" };
      const back = await poll("/readyz 200 again", async () => {
        const r = await readyz(base);
        return r.status === 200 ? r : undefined;
      }, 60_000, 100);
      expect(back.body.checks.outbox).to.deep.equal({ status: "ok", detail: "0 undelivered" });
      expect(receiver.delivered().size).to.equal(6);
      const last = await scrape(base);
      expect(value(last.samples, "recur_webhook_deliveries_total", { result: "delivered" })).to.equal(answered("ok"));
      expect(answered("ok")).to.equal(6);
      expect(value(last.samples, "recur_webhook_deliveries_total", { result: "failed" })).to.equal(answered(500));
      expect(answered("ok") + answered(500)).to.equal(receiver.requests.length);
      expect(value(last.samples, "recur_webhook_outbox_depth")).to.equal(0);
      expect(value(last.samples, "recur_webhook_outbox_oldest_age_seconds")).to.equal(0);

      keeper.kill("SIGTERM");
      const result = await keeper.waitForExit(30_000);
      expect(result.code, result.stdout.slice(-3000) + result.stderr).to.equal(0);
    } finally {
      await receiver.stop();
    }
  });
});

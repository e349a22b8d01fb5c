// The indexer against a provider's limits on eth_getLogs (issue 10 §4): a real hardhat node behind a
// proxy that refuses wide block ranges with Infura's error and large answers with Alchemy's, and the
// keeper configured with a far wider RECUR_LOG_RANGE than the proxy allows. The pass still indexes
// every event and charges every due subscription exactly once; the range shrinks on each refusal and
// grows back over light pages. Plus the classification of the providers' messages, one by one.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { logLimitOf } from "../../src/index/indexer.ts";
import { KeeperError } from "../../src/errors.ts";
import { RpcError } from "../../src/chain/rpc.ts";
import { runKeeper, useNodePerTest } from "./support/chain.ts";
import { startLogCapProxy } from "./support/log-cap-proxy.ts";
import type { LogCapProxy } from "./support/log-cap-proxy.ts";
import { allKeys, expectChargedOnce, ledger, PERIOD, setUp } from "./support/scenario.ts";

describe("logLimitOf: a provider's refusal of an eth_getLogs request for its size", () => {
  const table: [provider: string, code: number, message: string, data: unknown, expected: "results" | "range" | undefined][] = [
    ["Infura (documented)", -32005, "query returned more than 10000 results", undefined, "results"],
    ["Infura (live API)", -32602, "range 1000000 exceeds limit of 10000", undefined, "range"],
    ["Alchemy", -32602, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters, this block range should work: [0x1, 0x7d0]", undefined, "results"],
    ["QuickNode", -32614, "eth_getLogs is limited to a 10,000 range", undefined, "range"],
    ["Ankr", -32600, "block range is too wide", undefined, "range"],
    ["Base", -32000, "block range too large", undefined, "range"],
    ["Optimism", -32000, "Block range is too large", undefined, "range"],
    ["BSC nodes", -32000, "exceed maximum block range: 5000", undefined, "range"],
    ["Hyperliquid", -32000, "query exceeds max block range 1000", undefined, "range"],
    ["PublicNode", -32000, "maximum block range: 50000", undefined, "range"],
    ["Chainstack", -32000, "Block range limit exceeded.", undefined, "range"],
    ["Tenderly (reason in data)", -32602, "invalid params", { payload: "range 9009594 is bigger than range limit 2000" }, "range"],
    ["zkSync", -32602, "Query returned more than 10000 results. Try with this block range [0x118dc91, 0x1198cc3].", undefined, "results"],
    ["Arbitrum (Nitro)", -32000, "logs matched by query exceeds limit of 10000", undefined, "results"],
    ["LlamaRPC", -32000, "query exceeds max results 20000, retry with the range 1-2", undefined, "results"],
    ["Optimism (response)", -32000, "backend response too large", undefined, "results"],
    ["a bare limit-exceeded code", -32005, "limit exceeded", undefined, "results"],
    ["a bad filter", -32602, "invalid argument 0: hex string without 0x prefix", undefined, undefined],
    ["a missing block", -32000, "header not found", undefined, undefined],
    ["a revert", 3, "execution reverted", "0x", undefined],
  ];
  for (const [provider, code, message, data, expected] of table) {
    it(`${provider}: ${JSON.stringify(message).slice(0, 60)} → ${expected ?? "not a size limit"}`, () => {
      expect(logLimitOf(new RpcError("eth_getLogs", code, message, data))).to.equal(expected);
    });
  }

  it("a transport fault or a timeout is not a size limit (the RPC client retries those itself)", () => {
    expect(logLimitOf(new KeeperError("RPC_TIMEOUT", "eth_getLogs: no answer in 10000 ms", { retryable: true }))).to.equal(undefined);
    expect(logLimitOf(new Error("query returned more than 10000 results"))).to.equal(undefined);
  });
});

describe("keeper behind a provider's eth_getLogs limits (end to end)", function () {
  this.timeout(300_000);
  const nodes = useNodePerTest();
  let proxy: LogCapProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it("shrinks the block range on each refusal, grows it back, indexes everything and charges every due subscription once", async () => {
    const { node } = nodes;
    const store = path.join(mkdtempSync(path.join(tmpdir(), "recur-")), "keeper.sqlite");
    // 2 plans × 4 subscribers: each subscription is 4 blocks (fund, mint, approve, subscribe) and 2
    // plan logs (Subscribed, Charged), so any range over two subscriptions holds more than 3 logs.
    const s = await setUp(node, { planCount: 2, perPlan: 4, storePath: store });
    // A long quiet stretch after them, where light pages let the range grow back.
    await node.send("hardhat_mine", ["0x12c"]);
    await node.mineAt((await node.latestTimestamp()) + PERIOD);
    const before = await ledger(s);
    proxy = await startLogCapProxy(node.url, { maxRange: 8n, maxResults: 3 });

    // Batches of 2, so that the keeper's own charges (read back by the next pass) are 2 logs a block.
    const env = s.env({ RECUR_RPC_URL: proxy.url, RECUR_LOG_RANGE: "100000", RECUR_BATCH_SIZE: "2" });
    const run = await runKeeper(["run", "--once"], env);
    expect(run.code, run.stderr + run.stdout.slice(-3000)).to.equal(0);
    const pass = run.lines.find((l) => l.event === "pass")!;
    expect(pass.charged).to.equal(8);
    expect(pass.errors).to.deep.equal([]);
    await expectChargedOnce(s, before, allKeys(s));

    // The proxy refused both ways, and every answer it let through was within its caps.
    const outcomes = new Set(proxy.getLogs.map((g) => g.outcome));
    expect([...outcomes].sort()).to.deep.equal(["answered", "range_refused", "results_refused"]);
    for (const g of proxy.getLogs.filter((r) => r.outcome === "answered")) {
      expect(g.toBlock - g.fromBlock + 1n).to.be.at.most(8n);
      expect(g.logs).to.be.at.most(3);
    }

    // The log shows each change: shrunk on Infura's and on Alchemy's refusal, grown over light pages.
    const changes = run.lines.filter((l) => l.event === "log_range");
    const reasons = new Set(changes.map((l) => l.reason));
    expect(reasons.has("range_refused"), JSON.stringify(changes)).to.equal(true);
    expect(reasons.has("results_refused"), JSON.stringify(changes)).to.equal(true);
    const shrunk = changes.filter((l) => BigInt(String(l.new)) < BigInt(String(l.old)));
    const grown = changes.filter((l) => l.reason === "light_pages" && BigInt(String(l.new)) > BigInt(String(l.old)));
    expect(shrunk.length).to.be.greaterThan(0);
    expect(grown.length).to.be.greaterThan(0);
    // It grows back after a shrink: an answered request after the narrowest one spans the cap again.
    const answered = proxy.getLogs.filter((g) => g.outcome === "answered");
    const span = (g: { fromBlock: bigint; toBlock: bigint }) => g.toBlock - g.fromBlock + 1n;
    const narrowest = answered.reduce((k, g, i) => (span(g) < span(answered[k]!) ? i : k), 0);
    expect(answered.slice(narrowest + 1).some((g) => span(g) === 8n), "an 8-block page after the narrowest").to.equal(true);
    const sync = run.lines.find((l) => l.event === "sync")!;
    expect(sync.rangeChanges).to.equal(changes.length);

    // The index is complete: status (read from the store) has both plans, all eight subscriptions live,
    // nothing left due, and the index up to the pass's block.
    const status = await runKeeper(["status", "--json"], s.env({ RECUR_RPC_URL: proxy.url }));
    expect(status.code, status.stderr).to.equal(0);
    const report = JSON.parse(status.stdout.trim()) as Record<string, unknown>;
    expect(report.plans).to.equal(2);
    expect(report.subscriptions).to.deep.equal({ live: 8 });
    expect(report.dueNow).to.equal(0);
    expect(BigInt(String(report.indexedTo))).to.equal(BigInt(String(pass.block)));

    // A second pass indexes the keeper's own charges through the same caps and charges nobody again.
    const again = await runKeeper(["run", "--once"], env);
    expect(again.code, again.stderr + again.stdout.slice(-3000)).to.equal(0);
    expect(again.lines.find((l) => l.event === "pass")!.charged).to.equal(0);
    await expectChargedOnce(s, before, allKeys(s));
  });

  it("fails the pass with one clear line when the provider refuses even a single block's logs", async () => {
    const { node } = nodes;
    const store = path.join(mkdtempSync(path.join(tmpdir(), "recur-")), "keeper.sqlite");
    const s = await setUp(node, { planCount: 1, perPlan: 1, storePath: store });
    await node.mineAt((await node.latestTimestamp()) + PERIOD);
    const before = await ledger(s);
    // The subscription's block alone holds 2 plan logs: more than this provider will ever answer.
    proxy = await startLogCapProxy(node.url, { maxRange: 16n, maxResults: 1 });

    const run = await runKeeper(["run", "--once"], s.env({ RECUR_RPC_URL: proxy.url }));
    expect(run.code, run.stdout.slice(-3000)).to.equal(2);
    const failed = run.lines.find((l) => l.event === "pass_failed")!;
    expect(String(failed.error)).to.match(/refuses the logs of block \d+ alone .*Log response size exceeded/);
    expect(run.lines.some((l) => l.event === "charged")).to.equal(false);
    await expectChargedOnce(s, before, []);
  });
});

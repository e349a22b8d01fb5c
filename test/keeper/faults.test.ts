// The keeper under faults, end to end on a real hardhat node: killed between broadcast and receipt, a
// transaction dropped from the mempool, a reorg under the indexer, an allowance revoked between
// discovery and charge, and an RPC endpoint that loses and stalls requests. After each, the chain says:
// every due subscription was charged exactly once, nothing else was touched, the payee got exactly
// price × due.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import type { Contract, NonceManager } from "ethers";

import { planInterface } from "../../src/chain/abi.ts";
import { poll, runKeeper, startKeeper, useSharedNode } from "./support/chain.ts";
import type { Node, RunResult } from "./support/chain.ts";
import { startFlakyProxy } from "./support/proxy.ts";
import { allKeys, expectChargedOnce, ledger, PERIOD, setUp, subscribeNew } from "./support/scenario.ts";
import type { Scenario } from "./support/scenario.ts";

const storePath = () => path.join(mkdtempSync(path.join(tmpdir(), "recur-faults-")), "keeper.sqlite");
const planKey = (plan: Contract) => String(plan.target).toLowerCase();

function ok(result: RunResult): RunResult {
  expect(result.code, `exit ${result.code ?? result.signal}\n${result.stdout}${result.stderr}`).to.equal(0);
  return result;
}

function summary(result: RunResult): Record<string, unknown> {
  const pass = result.lines.filter((l) => l.event === "pass");
  expect(pass, "one pass line").to.have.length(1);
  return pass[0]!;
}

describe("keeper faults (end to end)", function () {
  this.timeout(300_000);
  let node!: Node;
  useSharedNode((started) => (node = started));
  afterEach(async () => {
    // Whatever a test did to the node, the next one finds it mining again with an empty mempool.
    await node.send("evm_setAutomine", [true]);
    await node.send("evm_mine", []);
  });

  const dueNow = async () => node.mineAt((await node.latestTimestamp()) + PERIOD);
  const keeperNonce = (s: Scenario) => node.provider.getTransactionCount(s.keeperAddress, "latest");

  /** A scenario of 2 plans × 2 subscribers, indexed by one keeper pass while nothing is due. */
  async function indexedScenario(): Promise<Scenario> {
    const s = await setUp(node, { planCount: 2, perPlan: 2, storePath: storePath() });
    const idle = ok(await runKeeper(["run", "--once"], s.env()));
    expect(summary(idle).charged).to.equal(0);
    return s;
  }

  describe("killed between broadcast and receipt", () => {
    it("SIGKILL after the broadcast: the restart finds the receipt, charges the rest, repeats nothing", async () => {
      const s = await indexedScenario();
      await dueNow();
      const before = await ledger(s);
      const nonce = await keeperNonce(s);

      await node.send("evm_setAutomine", [false]);
      const first = startKeeper(["run", "--once"], s.env());
      const sent = await first.waitForLine((l) => l.event === "tx_sent");
      // Kill only once the node holds the transaction: then it is truly between broadcast and receipt.
      await poll("the transaction in the node's mempool", async () => ((await node.send("eth_getTransactionByHash", [sent.hash])) as unknown) ?? undefined);
      first.kill("SIGKILL");
      expect((await first.waitForExit()).signal).to.equal("SIGKILL");

      await node.send("evm_mine", []);
      await node.send("evm_setAutomine", [true]);
      expect((await node.provider.getTransactionReceipt(String(sent.hash)))?.status).to.equal(1);

      const second = ok(await runKeeper(["run", "--once"], s.env()));
      const recovered = second.lines.find((l) => l.event === "recover_pending");
      expect(recovered?.hashes).to.deep.equal([sent.hash]);
      expect(summary(second).charged).to.equal(4);
      await expectChargedOnce(s, before, allKeys(s));
      // One chargeMany per plan: nothing was sent twice.
      expect(await keeperNonce(s)).to.equal(nonce + 2);
    });

    it("SIGKILL right at the tx_sent line (broadcast or not yet): the restart settles it either way", async () => {
      const s = await indexedScenario();
      await dueNow();
      const before = await ledger(s);
      const nonce = await keeperNonce(s);

      await node.send("evm_setAutomine", [false]);
      const first = await runKeeper(["run", "--once"], s.env(), { killAfterLine: (l) => l.event === "tx_sent" });
      expect(first.signal).to.equal("SIGKILL");
      await node.send("evm_mine", []);
      await node.send("evm_setAutomine", [true]);

      const second = ok(await runKeeper(["run", "--once"], s.env()));
      expect(second.lines.some((l) => l.event === "recover_pending")).to.equal(true);
      await expectChargedOnce(s, before, allKeys(s));
      expect(await keeperNonce(s)).to.equal(nonce + 2);
    });

    it("a journalled transaction dropped from the mempool is broadcast again, the same bytes, once", async () => {
      const s = await indexedScenario();
      await dueNow();
      const before = await ledger(s);
      const nonce = await keeperNonce(s);

      await node.send("evm_setAutomine", [false]);
      const first = startKeeper(["run", "--once"], s.env());
      const sent = await first.waitForLine((l) => l.event === "tx_sent");
      await poll("the transaction in the node's mempool", async () => ((await node.send("eth_getTransactionByHash", [sent.hash])) as unknown) ?? undefined);
      first.kill("SIGKILL");
      await first.waitForExit();

      expect(await node.send("hardhat_dropTransaction", [sent.hash])).to.equal(true);
      expect(await node.send("eth_getTransactionByHash", [sent.hash])).to.equal(null);
      await node.send("evm_setAutomine", [true]);

      const second = ok(await runKeeper(["run", "--once"], s.env()));
      expect(second.lines.find((l) => l.event === "recover_pending")?.hashes).to.deep.equal([sent.hash]);
      // The journalled bytes themselves were mined: same hash, same nonce.
      const receipt = await node.provider.getTransactionReceipt(String(sent.hash));
      expect(receipt?.status).to.equal(1);
      expect(BigInt((await node.provider.getTransaction(String(sent.hash)))!.nonce)).to.equal(BigInt(String(sent.nonce)));
      expect(summary(second).charged).to.equal(4);
      await expectChargedOnce(s, before, allKeys(s));
      expect(await keeperNonce(s)).to.equal(nonce + 2);
    });
  });

  describe("a reorg under the indexer", () => {
    for (const shape of [
      { title: "the new branch is longer", ghosts: 1 },
      { title: "the new branch is shorter than the indexed one", ghosts: 2 },
    ]) {
      it(`${shape.title}: the reorg is seen, the reverted subscriber forgotten, the rest charged once`, async () => {
        const s = await indexedScenario();
        const [plan0, plan1] = s.plans as [Contract, Contract];
        const snapshot = await node.send("evm_snapshot", []);

        // On the branch about to vanish: new subscribers (4 blocks each), indexed by a keeper pass.
        const ghosts: string[] = [];
        for (let i = 0; i < shape.ghosts; i++) ghosts.push((await subscribeNew(node, s.token, s.deployer, plan0)).address.toLowerCase());
        ok(await runKeeper(["run", "--once"], s.env()));
        const seen = JSON.parse(ok(await runKeeper(["status", "--json"], s.env())).stdout) as { subscriptions: Record<string, number> };
        expect(seen.subscriptions).to.deep.equal({ live: 4 + shape.ghosts });

        expect(await node.send("evm_revert", [snapshot])).to.equal(true);
        (s.deployer as NonceManager).reset();
        // The other branch: another subscriber on the other plan, then everyone is due (5 blocks).
        const other = (await subscribeNew(node, s.token, s.deployer, plan1)).address.toLowerCase();
        await dueNow();
        const otherKey = `${planKey(plan1)}:${other}`;
        const ghostKeys = ghosts.map((g) => `${planKey(plan0)}:${g}`);
        const before = await ledger(s, [otherKey, ...ghostKeys]);

        const run = ok(await runKeeper(["run", "--once"], s.env()));
        expect(run.lines.some((l) => l.event === "reorg"), run.stdout).to.equal(true);
        for (const ghost of ghosts) expect(run.stdout, "the reverted subscriber is never looked at").not.to.include(ghost.slice(2));
        expect(summary(run).charged).to.equal(5);
        expect(summary(run).skipped).to.deep.equal({});
        await expectChargedOnce(s, before, [...allKeys(s), otherKey], [otherKey, ...ghostKeys]);

        const after = JSON.parse(ok(await runKeeper(["status", "--json"], s.env())).stdout) as { subscriptions: Record<string, number> };
        expect(after.subscriptions).to.deep.equal({ live: 5 });
      });
    }
  });

  it("an allowance revoked between discovery and charge: that subscriber is skipped, never sent", async () => {
    const s = await indexedScenario();
    await dueNow();
    const plan0 = planKey(s.plans[0]!);
    const victim = s.subscribers.get(plan0)![0]!;
    await (await (s.token.connect(s.wallets.get(victim)!) as Contract).getFunction("approve")(plan0, 0n)).wait();
    const before = await ledger(s);

    const run = ok(await runKeeper(["run", "--once"], s.env()));
    const skips = run.lines.filter((l) => l.event === "skip");
    expect(skips.map((l) => [l.subscriber, l.reason])).to.deep.equal([[victim, "AllowanceTooLow"]]);
    expect(summary(run).skipped).to.deep.equal({ AllowanceTooLow: 1 });
    expect(summary(run).charged).to.equal(3);

    // Nothing in any transaction for the victim; everybody else in exactly one.
    const sent: string[] = [];
    for (const line of run.lines.filter((l) => l.event === "tx_sent")) {
      const tx = await node.provider.getTransaction(String(line.hash));
      const [subscribers] = planInterface.decodeFunctionData("chargeMany", tx!.data);
      sent.push(...(subscribers as string[]).map((a) => a.toLowerCase()));
    }
    expect(sent).not.to.include(victim);
    expect([...sent].sort()).to.deep.equal([...s.subscribers.values()].flat().filter((w) => w !== victim).sort());
    await expectChargedOnce(s, before, allKeys(s).filter((k) => !k.endsWith(victim)));

    const status = JSON.parse(ok(await runKeeper(["status", "--json"], s.env())).stdout) as { lastReasons: Record<string, number> };
    expect(status.lastReasons).to.deep.equal({ AllowanceTooLow: 1 });
  });

  it("a flaky RPC endpoint (lost answers, stalled requests): the pass still charges everything once", async () => {
    const s = await setUp(node, { planCount: 2, perPlan: 2, storePath: storePath() });
    await dueNow();
    const before = await ledger(s);
    const nonce = await keeperNonce(s);
    const proxy = await startFlakyProxy(node.url, { failEvery: 3 });
    try {
      const run = ok(await runKeeper(["run", "--once"], s.env({ RECUR_RPC_URL: proxy.url, RECUR_RPC_TIMEOUT_MS: "500" })));
      expect(summary(run).charged).to.equal(4);
      // The faults did happen: every method stalled once, answers were lost, one of them a broadcast's.
      expect(proxy.faults.hung).to.equal(proxy.requests.size);
      expect(proxy.faults.failed).to.be.greaterThan(3);
      for (const method of ["eth_chainId", "eth_getLogs", "eth_call", "eth_estimateGas", "eth_sendRawTransaction", "eth_getTransactionReceipt"]) {
        expect(proxy.requests.get(method) ?? 0, method).to.be.greaterThan(1);
      }
      expect(run.lines.some((l) => l.event === "tx_already_mined"), "a broadcast whose answer was lost").to.equal(true);
    } finally {
      await proxy.close();
    }
    await expectChargedOnce(s, before, allKeys(s));
    expect(await keeperNonce(s)).to.equal(nonce + 2);
  });
});

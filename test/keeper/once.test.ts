// The keeper end to end: a real hardhat node, customers on several plans, time moved forward, and
// `recur run --once` as a child process. Every due subscription is charged once, on-chain.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import type { Contract } from "ethers";

import { runKeeper, startKeeper, useNodePerTest } from "./support/chain.ts";
import { PERIOD, setUp } from "./support/scenario.ts";

describe("keeper run --once (end to end)", function () {
  this.timeout(300_000);
  const nodes = useNodePerTest();

  it("charges every due subscription exactly once and touches none that is not due", async () => {
    const { node } = nodes;
    const store = path.join(mkdtempSync(path.join(tmpdir(), "recur-")), "keeper.sqlite");
    const s = await setUp(node, { planCount: 2, perPlan: 3, storePath: store });
    const periodsPaid = async (plan: Contract, who: string) => ((await plan.getFunction("subscriptionOf")(who)) as { periodsPaid: bigint }).periodsPaid;

    // Nothing is due yet: a pass charges nothing.
    const idle = await runKeeper(["run", "--once"], s.env());
    expect(idle.code, idle.stderr + idle.stdout).to.equal(0);
    const idleSummary = idle.lines.find((l) => l.event === "pass")!;
    expect(idleSummary.charged).to.equal(0);

    // One period later every subscriber is due.
    await node.mineAt((await node.latestTimestamp()) + PERIOD);
    const run = await runKeeper(["run", "--once"], s.env());
    expect(run.code, run.stderr + run.stdout).to.equal(0);
    expect(run.lines.find((l) => l.event === "pass")!.charged).to.equal(6);
    for (const plan of s.plans) {
      for (const who of s.subscribers.get(String(plan.target).toLowerCase())!) expect(await periodsPaid(plan, who)).to.equal(2n);
    }

    // The store took the confirmed charges in at once: nothing is reported due any more.
    const status = await runKeeper(["status", "--json"], s.env());
    expect(JSON.parse(status.stdout.trim()).dueNow).to.equal(0);

    // A second pass in the same period charges nobody again.
    const again = await runKeeper(["run", "--once"], s.env());
    expect(again.code).to.equal(0);
    expect(again.lines.find((l) => l.event === "pass")!.charged).to.equal(0);
    for (const plan of s.plans) {
      for (const who of s.subscribers.get(String(plan.target).toLowerCase())!) expect(await periodsPaid(plan, who)).to.equal(2n);
    }
  });

  it("with two confirmations, waits for a block on top of its charges before it counts them final", async () => {
    const { node } = nodes;
    const store = path.join(mkdtempSync(path.join(tmpdir(), "recur-")), "keeper.sqlite");
    const s = await setUp(node, { planCount: 1, perPlan: 2, storePath: store });
    await node.send("evm_mine"); // so that the subscriptions are two blocks deep
    await node.mineAt((await node.latestTimestamp()) + PERIOD);
    await node.send("evm_mine");
    const keeper = startKeeper(["run", "--once"], s.env({ RECUR_CONFIRMATIONS: "2" }));
    await keeper.waitForLine((l) => l.event === "charged");
    // Automine put the charge in a block of its own; the keeper waits for one more.
    expect(keeper.lines.some((l) => l.event === "pass")).to.equal(false);
    await node.send("evm_mine");
    const done = await keeper.waitForExit(60_000);
    expect(done.code, done.stderr + done.stdout).to.equal(0);
    expect(done.lines.find((l) => l.event === "pass")!.charged).to.equal(2);
    const plan = s.plans[0]!;
    for (const who of s.subscribers.get(String(plan.target).toLowerCase())!) {
      expect(((await plan.getFunction("subscriptionOf")(who)) as { periodsPaid: bigint }).periodsPaid).to.equal(2n);
    }
  });
});

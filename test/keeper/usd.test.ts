// The keeper on a USD-priced plan: a stale feed answer is a reason (PriceStale), not an error; nothing is
// sent for it, the pass succeeds, and once the feed is fresh the next pass charges the converted amount.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import type { Contract } from "ethers";

import { at, deploy, runKeeper, useNodePerTest } from "./support/chain.ts";
import { fundedWallet, PERIOD, PRICE, setUp, terms } from "./support/scenario.ts";

describe("keeper on a USD-priced plan (end to end)", function () {
  this.timeout(300_000);
  const nodes = useNodePerTest();

  it("skips a due subscription while the feed is stale (PriceStale), then charges the converted amount once it is fresh", async () => {
    const { node } = nodes;
    const store = path.join(mkdtempSync(path.join(tmpdir(), "recur-")), "keeper.sqlite");
    const s = await setUp(node, { planCount: 0, perPlan: 0, storePath: store });
    const deployer = s.deployer;
    const feed = await deploy("MockAggregator", deployer, [8, 100_000_000n]);
    const usd = { price: 1_000_000_000n, priceFeed: String(feed.target), maxPriceAge: 3_600n }; // $10.00 a month
    const created = await (await (s.factory.connect(s.merchant) as Contract).getFunction("createPlan")(terms(String(s.token.target), await s.merchant.getAddress(), usd))).wait();
    const event = created.logs.map((l: { topics: string[]; data: string }) => s.factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
    const plan = at("FixedPricePlan", event.args.plan as string, s.merchant);
    const customer = await fundedWallet(node, s.token, deployer);
    await (await (s.token.connect(customer) as Contract).getFunction("approve")(String(plan.target), 12n * PRICE)).wait();
    await (await (plan.connect(customer) as Contract).getFunction("subscribe")(PRICE)).wait();
    const periodsPaid = async () => ((await plan.getFunction("subscriptionOf")(customer.address)) as { periodsPaid: bigint }).periodsPaid;

    // Due, but the feed's answer is a month old: the keeper's re-check says PriceStale; nothing is sent.
    await node.mineAt((await node.latestTimestamp()) + PERIOD);
    const stale = await runKeeper(["run", "--once"], s.env());
    expect(stale.code, stale.stderr + stale.stdout).to.equal(0);
    const skip = stale.lines.find((l) => l.event === "skip");
    expect(skip?.reason).to.equal("PriceStale");
    expect(stale.lines.some((l) => l.event === "tx_sent")).to.equal(false);
    expect(await periodsPaid()).to.equal(1n);

    // The feed is updated ($1.00): the next pass charges $10.00 worth, 10 tokens, once.
    await (await (feed.connect(deployer) as Contract).getFunction("setAnswer")(100_000_000n)).wait();
    const fresh = await runKeeper(["run", "--once"], s.env());
    expect(fresh.code, fresh.stderr + fresh.stdout).to.equal(0);
    const charged = fresh.lines.filter((l) => l.event === "charged");
    expect(charged).to.have.length(1);
    expect(charged[0]!.amount).to.equal("10000000");
    expect(await periodsPaid()).to.equal(2n);
  });
});

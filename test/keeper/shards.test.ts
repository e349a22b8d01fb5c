// Several keepers side by side, sharded by subscriber: each charges only its shard, with its own key
// and nonce, and together they charge every due subscription exactly once.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet } from "ethers";
import type { Contract } from "ethers";

import { shardKey } from "../../src/index/store.ts";
import { accountKey, runKeeper, useNodePerTest } from "./support/chain.ts";
import { PERIOD, PRICE, setUp } from "./support/scenario.ts";

describe("keepers sharded by subscriber (end to end)", function () {
  this.timeout(300_000);
  const nodes = useNodePerTest();

  it("two instances with shards 0/2 and 1/2 run at once and charge every due subscription exactly once", async () => {
    const { node } = nodes;
    const dir = mkdtempSync(path.join(tmpdir(), "recur-shards-"));
    const s = await setUp(node, { planCount: 2, perPlan: 4, storePath: path.join(dir, "unused.sqlite") });
    const payee = await s.merchant.getAddress();
    const before = (await s.token.getFunction("balanceOf")(payee)) as bigint;
    await node.mineAt((await node.latestTimestamp()) + PERIOD);

    const instance = (index: number) =>
      runKeeper(["run", "--once"], s.env({ RECUR_SHARD: `${index}/2`, RECUR_PRIVATE_KEY: accountKey(6 + index), RECUR_STORE: path.join(dir, `shard-${index}.sqlite`) }));
    const runs = await Promise.all([instance(0), instance(1)]);

    let charged = 0;
    for (const [index, run] of runs.entries()) {
      expect(run.code, run.stderr + run.stdout).to.equal(0);
      const lines = run.lines.filter((l) => l.event === "charged");
      charged += lines.length;
      for (const l of lines) expect(shardKey(String(l.subscriber)) % 2, `shard ${index} charged outside its shard`).to.equal(index);
      expect(new Wallet(accountKey(6 + index)).address.toLowerCase()).to.equal(String(run.lines.find((l) => l.event === "start")!.keeper));
    }
    expect(charged).to.equal(8);
    for (const plan of s.plans) {
      for (const who of s.subscribers.get(String(plan.target).toLowerCase())!) {
        expect(((await (plan as Contract).getFunction("subscriptionOf")(who)) as { periodsPaid: bigint }).periodsPaid).to.equal(2n);
      }
    }
    expect(((await s.token.getFunction("balanceOf")(payee)) as bigint) - before).to.equal(8n * PRICE);
  });
});

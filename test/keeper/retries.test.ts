// Retries that pay gas for nothing (issue 10, finding 3), end to end on a real hardhat node: the chain's
// views say Ok for a subscriber the token refuses (blocklisted) and while the token is paused, so each
// failed charge costs the keeper a transaction. The keeper retries a refused subscriber on its retry
// schedule inside the grace window, and backs off a plan whose every charge fails alike; these tests
// run a pass every 3 hours through a whole grace window and count the keeper's transactions.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { deploy, runKeeper, useNodePerTest } from "./support/chain.ts";
import type { Node, RunResult } from "./support/chain.ts";
import { createPlan, eoaSubscriber, periodsPaid } from "./support/hostile.ts";
import { GRACE, PERIOD, setUp } from "./support/scenario.ts";
import type { Scenario } from "./support/scenario.ts";

const HOUR = 3_600n;
const STEP = 3n * HOUR;
const storePath = () => path.join(mkdtempSync(path.join(tmpdir(), "recur-retries-")), "keeper.sqlite");
function ok(result: RunResult): RunResult {
  expect(result.code, `exit ${result.code ?? result.signal}\n${result.stdout.slice(-4000)}${result.stderr}`).to.equal(0);
  return result;
}

/** Runs a pass every STEP of chain time from `start` to the end of the grace window (and one step
 * beyond); returns the offsets from `start`, in seconds, of the passes that sent a transaction, and the
 * last pass's output. */
async function passesThroughGrace(node: Node, s: Scenario, start: bigint): Promise<{ sentAt: bigint[]; runs: RunResult[] }> {
  const sentAt: bigint[] = [];
  const runs: RunResult[] = [];
  for (let at = start; at <= start + GRACE + STEP; at += STEP) {
    await node.mineAt(at);
    const run = ok(await runKeeper(["run", "--once"], s.env()));
    runs.push(run);
    if (run.lines.some((l) => l.event === "tx_sent")) sentAt.push(at - start);
  }
  return { sentAt, runs };
}

describe("keeper retries on a schedule (end to end)", function () {
  this.timeout(600_000);
  const nodes = useNodePerTest();

  it("retries a subscriber the token refuses at 1h, 6h, 1d and 2d after the first failure: 5 transactions in the grace window, not one per pass", async () => {
    const { node } = nodes;
    const s = await setUp(node, { planCount: 0, perPlan: 0, storePath: storePath() });
    const token = await deploy("BlocklistToken", s.deployer);
    const plan = await createPlan(s, String(token.target));
    const blocked = await eoaSubscriber(node, s, token, plan);
    const honest = [await eoaSubscriber(node, s, token, plan), await eoaSubscriber(node, s, token, plan)];
    await (await token.getFunction("setBlocked")(blocked, true)).wait();

    const start = (await node.latestTimestamp()) + PERIOD;
    const nonce = await node.provider.getTransactionCount(s.keeperAddress, "latest");
    const { sentAt, runs } = await passesThroughGrace(node, s, start);

    // The first pass charged the two honest customers and failed the blocked one in one batch; then the
    // blocked one alone, at the first pass on or after each delay of the schedule.
    expect(sentAt).to.deep.equal([0n, 3n * HOUR, 6n * HOUR, 24n * HOUR, 48n * HOUR]);
    expect(await node.provider.getTransactionCount(s.keeperAddress, "latest")).to.equal(nonce + 5);
    for (const who of honest) expect(await periodsPaid(plan, who)).to.equal(2n);
    expect(await periodsPaid(plan, blocked)).to.equal(1n);
    const failed = runs.flatMap((r) => r.lines.filter((l) => l.event === "charge_failed"));
    expect(failed).to.have.length(5);
    for (const line of failed) expect([line.subscriber, line.reason]).to.deep.equal([blocked, "TransferFailed"]);
    // Between tries the subscriber waits; status counts it, and after the last try it waits no more.
    expect(runs[3]!.lines.find((l) => l.event === "pass")!.skipped).to.deep.include({ RetryLater: 1 });
    const status = JSON.parse((await runKeeper(["status", "--json"], s.env())).stdout.trim()) as { retries: { waiting: number; exhausted: number } };
    expect(status.retries).to.deep.equal({ waiting: 0, exhausted: 1 });
  });

  it("backs off a plan whose every charge fails alike (the token is paused) as a whole, says so, and charges it once the token works again", async () => {
    const { node } = nodes;
    const s = await setUp(node, { planCount: 0, perPlan: 0, storePath: storePath() });
    const token = await deploy("PausableToken", s.deployer);
    const plan = await createPlan(s, String(token.target));
    const first = [await eoaSubscriber(node, s, token, plan), await eoaSubscriber(node, s, token, plan), await eoaSubscriber(node, s, token, plan)];
    // A fourth customer comes due 12 hours after the others, while the plan is backed off.
    const subscribedAt = await node.latestTimestamp();
    await node.mineAt(subscribedAt + 12n * HOUR);
    const late = await eoaSubscriber(node, s, token, plan);
    await (await token.getFunction("pause")()).wait();

    const start = subscribedAt + PERIOD + 60n;
    const nonce = await node.provider.getTransactionCount(s.keeperAddress, "latest");
    const { sentAt, runs } = await passesThroughGrace(node, s, start);
    // One transaction per try of the plan's schedule (the late customer's due time included in it), and
    // one more before 90% of the first customers' grace window has passed.
    expect(sentAt).to.deep.equal([0n, 3n * HOUR, 6n * HOUR, 24n * HOUR, 48n * HOUR, 66n * HOUR]);
    expect(await node.provider.getTransactionCount(s.keeperAddress, "latest")).to.equal(nonce + 6);
    const backoff = runs[0]!.lines.find((l) => l.event === "plan_backoff");
    expect(backoff?.plan).to.equal(String(plan.target).toLowerCase());
    expect(backoff?.reason).to.equal("TransferFailed");
    expect(runs[2]!.lines.some((l) => l.event === "plan_held" && l.plan === String(plan.target).toLowerCase())).to.equal(false);
    expect(runs.some((r) => r.lines.some((l) => l.event === "plan_held" && l.kind === "backoff"))).to.equal(true);
    const status = JSON.parse((await runKeeper(["status", "--json"], s.env())).stdout.trim()) as { heldPlans: { plan: string; kind: string; reason: string; held: boolean }[] };
    expect(status.heldPlans).to.have.length(1);
    expect(status.heldPlans[0]).to.deep.include({ plan: String(plan.target).toLowerCase(), kind: "backoff", reason: "TransferFailed", held: true });

    // The token works again: the first three lapsed unpaid, but the late customer's last try inside its
    // own window (90% of it) comes, and charges it.
    await (await token.getFunction("unpause")()).wait();
    for (const who of [...first, late]) expect(await periodsPaid(plan, who)).to.equal(1n);
    await node.mineAt(start + 78n * HOUR);
    const recovered = ok(await runKeeper(["run", "--once"], s.env()));
    expect(recovered.lines.find((l) => l.event === "pass")!.charged).to.equal(1);
    expect(await periodsPaid(plan, late)).to.equal(2n);
    for (const who of first) expect(await periodsPaid(plan, who)).to.equal(1n);
    expect(recovered.lines.some((l) => l.event === "plan_recovered")).to.equal(true);
  });
});

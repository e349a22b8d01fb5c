// The keeper as an operator runs it, end to end on a real hardhat node: `run` as a daemon that charges
// what comes due and stops cleanly on SIGTERM, `run --dry-run` that sends nothing, and `status`.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { runKeeper, startKeeper, useSharedNode } from "./support/chain.ts";
import type { Node, RunResult } from "./support/chain.ts";
import { allKeys, DAY, expectChargedOnce, ledger, PERIOD, setUp } from "./support/scenario.ts";
import type { Scenario } from "./support/scenario.ts";

const storePath = () => path.join(mkdtempSync(path.join(tmpdir(), "recur-daemon-")), "keeper.sqlite");

function ok(result: RunResult): RunResult {
  expect(result.code, `exit ${result.code ?? result.signal}\n${result.stdout}${result.stderr}`).to.equal(0);
  return result;
}

interface StatusReport {
  chainId: string;
  head: string;
  indexedTo: string | null;
  plans: number;
  subscriptions: Record<string, number>;
  dueNow: number;
  dueNext24h: number;
  lastReasons: Record<string, number>;
  lastPass: { at: string; due: number; charged: number; errors: string[] } | null;
}

describe("keeper daemon, dry run and status (end to end)", function () {
  this.timeout(300_000);
  let node!: Node;
  useSharedNode((started) => (node = started));

  const moveTime = async (seconds: bigint) => node.mineAt((await node.latestTimestamp()) + seconds);
  const keeperNonce = (s: Scenario) => node.provider.getTransactionCount(s.keeperAddress, "latest");

  it("run (daemon): charges what is due on each pass, then on SIGTERM logs stop and exits 0", async () => {
    const s = await setUp(node, { planCount: 2, perPlan: 2, storePath: storePath() });
    await moveTime(PERIOD);
    const before = await ledger(s);

    const keeper = startKeeper(["run"], s.env({ RECUR_POLL_INTERVAL: "1" }));
    const passes = () => keeper.lines.filter((l) => l.event === "pass");
    await keeper.waitForLine((l) => l.event === "pass" && l.charged === 4);
    // It keeps polling: a later pass finds nothing more to do in this period.
    await keeper.waitForLine((l) => l.event === "pass" && l.charged === 0);
    await expectChargedOnce(s, before, allKeys(s));

    // The next period comes due while it runs: the daemon charges it without being restarted.
    const seen = passes().length;
    await moveTime(PERIOD);
    const middle = await ledger(s);
    await keeper.waitForLine((l) => l.event === "pass" && passes().indexOf(l) >= seen && l.charged === 4);
    await expectChargedOnce(s, middle, allKeys(s));

    keeper.kill("SIGTERM");
    const result = await keeper.waitForExit(15_000);
    expect(result.code, result.stdout + result.stderr).to.equal(0);
    expect(result.lines.at(-1)).to.include({ event: "stop", reason: "signal" });
    expect(result.stderr).to.equal("");
    // The key never reaches a log line.
    expect(result.stdout).not.to.include(s.keeperKey.slice(2));
  });

  it("run (daemon): SIGTERM while idle between passes stops it at once, with nothing pending", async () => {
    const s = await setUp(node, { planCount: 1, perPlan: 1, storePath: storePath() });
    const keeper = startKeeper(["run"], s.env({ RECUR_POLL_INTERVAL: "3600" }));
    await keeper.waitForLine((l) => l.event === "pass");
    keeper.kill("SIGTERM");
    const result = await keeper.waitForExit(15_000);
    expect(result.code).to.equal(0);
    expect(result.lines.at(-1)).to.include({ event: "stop" });
    expect(result.lines.filter((l) => l.event === "pass")).to.have.length(1);
  });

  it("run --dry-run: logs would_charge and sends nothing", async () => {
    const s = await setUp(node, { planCount: 2, perPlan: 2, storePath: storePath() });
    await moveTime(PERIOD);
    const before = await ledger(s);
    const nonce = await keeperNonce(s);

    const { RECUR_PRIVATE_KEY: _key, ...keyless } = s.env();
    // With the keeper's key, and without any key (a dry run signs nothing).
    for (const env of [s.env(), keyless]) {
      const run = ok(await runKeeper(["run", "--once", "--dry-run"], env));
      const would = run.lines.filter((l) => l.event === "would_charge");
      expect(would.map((l) => l.plan).sort()).to.deep.equal(s.plans.map((p) => String(p.target).toLowerCase()).sort());
      expect(would.reduce((n, l) => n + Number(l.subscribers), 0)).to.equal(4);
      expect(run.lines.some((l) => l.event === "tx_sent")).to.equal(false);
      expect(run.lines.find((l) => l.event === "start")).to.include({ dryRun: true });
    }
    await expectChargedOnce(s, before, []);
    expect(await keeperNonce(s)).to.equal(nonce);
  });

  it("status (human and --json): plans, subscriptions, due now, due in 24 h, last pass", async () => {
    const s = await setUp(node, { planCount: 2, perPlan: 3, storePath: storePath() });
    const status = async () => JSON.parse(ok(await runKeeper(["status", "--json"], s.env())).stdout) as StatusReport;
    const human = async () => ok(await runKeeper(["status"], s.env())).stdout;

    // Before any pass: nothing indexed, no pass.
    const fresh = await status();
    expect(fresh).to.include({ chainId: "31337", indexedTo: null, plans: 0, dueNow: 0, dueNext24h: 0, lastPass: null });
    expect(await human()).to.match(/indexed to \(not yet\)[\s\S]*last pass: never/);

    ok(await runKeeper(["run", "--once"], s.env()));
    const idle = await status();
    expect(idle).to.deep.include({ plans: 2, subscriptions: { live: 6 }, dueNow: 0, dueNext24h: 0, lastReasons: {} });
    expect(idle.indexedTo).to.equal(idle.head);
    expect(idle.lastPass).to.include({ due: 0, charged: 0 });

    // Half a day before the due time: due within 24 h, not yet due now (status reads the head's time).
    await moveTime(PERIOD - DAY / 2n);
    expect(await status()).to.include({ dueNow: 0, dueNext24h: 6 });
    await moveTime(DAY);
    expect(await status()).to.include({ dueNow: 6, dueNext24h: 6 });

    const charging = ok(await runKeeper(["run", "--once"], s.env()));
    expect(charging.lines.find((l) => l.event === "pass")).to.include({ due: 6, charged: 6 });
    expect((await status()).lastPass).to.include({ due: 6, charged: 6 });
    // The store learns the new schedule from the Charged events, once they are final: at the next pass.
    ok(await runKeeper(["run", "--once"], s.env()));
    const after = await status();
    expect(after).to.include({ plans: 2, dueNow: 0, dueNext24h: 0 });
    expect(after.lastPass).to.include({ due: 0, charged: 0 });
    expect(after.lastPass!.errors).to.deep.equal([]);

    const text = await human();
    expect(text).to.include("plans: 2\n");
    expect(text).to.include("subscriptions: 6 live\n");
    expect(text).to.include("due now: 0; due in the next 24 h: 0\n");
    expect(text).to.match(/^chain 31337, head \d+, indexed to \d+\n/);
    expect(text).to.match(/last pass: \S+, 0 due, 0 charged\n$/);
  });
});

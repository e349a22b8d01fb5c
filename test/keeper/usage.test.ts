// `recur usage` end to end: a real hardhat node, a metered plan created through the factory, a
// merchant's usage file, and the keeper binary as a child process. What the chain holds afterwards
// (balances, credits, schedules, events, the reporter's nonce) is the proof; nothing is mocked.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { encodeBytes32String, getAddress, Wallet, ZeroHash } from "ethers";
import type { Contract, EventLog, HDNodeWallet } from "ethers";

import { accountKey, runKeeper, startKeeper, useNodePerTest } from "./support/chain.ts";
import type { Node, RunResult } from "./support/chain.ts";
import { createMeteredPlan, PERIOD, setUp, subscribeMetered } from "./support/scenario.ts";
import type { Scenario } from "./support/scenario.ts";

const CAP = 100_000_000n; // meteredTerms' perCycleCap
const CREDITS = 5_000_000n;
const REPORTER_KEY = accountKey(6);
const REPORTER = new Wallet(REPORTER_KEY).address;
const STRANGER_KEY = accountKey(7);
const HEX_REF = `0x${"ab".repeat(32)}`;

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "recur-usage-"));
}

function write(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The environment of `usage`: no RECUR_FACTORY (it needs none), the reporter's key by default. */
function usageEnv(node: { url: string }, dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    RECUR_RPC_URL: node.url,
    RECUR_CHAIN_ID: "31337",
    RECUR_PRIVATE_KEY: REPORTER_KEY,
    RECUR_CONFIRMATIONS: "1",
    RECUR_TX_TIMEOUT: "30",
    RECUR_USAGE_JOURNAL: path.join(dir, "usage-journal.sqlite"),
    ...extra,
  };
}

const detail = (r: RunResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
/** stderr's human lines (the `recur: …` ones), without the JSON log lines. */
const errorLines = (r: RunResult) => r.stderr.split("\n").filter((l) => l.startsWith("recur: "));

interface Metered {
  s: Scenario;
  plan: Contract;
  planAddress: string;
  /** Subscribed one period + 1 s before the checks: their first cycle has ended. */
  due: HDNodeWallet[];
}

/** A factory (with one fixed plan and one subscriber, from `setUp`), a metered plan with free credits and
 * a reporter, and `count` subscribers whose first cycle has ended. */
async function meteredSetUp(node: Node, dir: string, count: number): Promise<Metered> {
  const s = await setUp(node, { planCount: 1, perPlan: 1, storePath: path.join(dir, "keeper.sqlite") });
  const plan = await createMeteredPlan(s, { freeCredits: CREDITS });
  await (await plan.getFunction("setReporter")(REPORTER, true)).wait();
  const due: HDNodeWallet[] = [];
  for (let i = 0; i < count; i++) due.push(await subscribeMetered(node, s, plan, { maxAmount: CAP, allowance: 10n * CAP }));
  await node.mineAt((await node.latestTimestamp()) + PERIOD + 1n);
  return { s, plan, planAddress: String(plan.target), due };
}

/** What the chain says about `who` on the metered plan: token balance, credits left, schedule. */
async function snapshot(m: Metered, who: string[]) {
  const out = new Map<string, { balance: bigint; credits: bigint; nextChargeAt: bigint; periodsPaid: bigint }>();
  for (const w of who) {
    const sub = (await m.plan.getFunction("subscriptionOf")(w)) as { nextChargeAt: bigint; periodsPaid: bigint };
    out.set(w, {
      balance: (await m.s.token.getFunction("balanceOf")(w)) as bigint,
      credits: (await m.plan.getFunction("creditsOf")(w)) as bigint,
      nextChargeAt: sub.nextChargeAt,
      periodsPaid: sub.periodsPaid,
    });
  }
  return out;
}

const nonceOf = (node: Node, who: string) => node.provider.getTransactionCount(who, "latest");

describe("keeper usage (end to end)", function () {
  this.timeout(300_000);
  const nodes = useNodePerTest();

  it("bills every row of a CSV once: balances and credits change exactly, UsageCharged carries each usageRef", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 3);
    const [a, b, c] = m.due.map((w) => w.address) as [string, string, string];
    const payee = await m.s.merchant.getAddress();
    const before = await snapshot(m, [a, b, c]);
    const payeeBefore = (await m.s.token.getFunction("balanceOf")(payee)) as bigint;
    const fromBlock = await node.provider.getBlockNumber();
    // a: inside the credits; b: credits then 15.000000 pulled; c: a zero usage closes the cycle. A blank
    // line and a quoted text reference with a comma in it are fine.
    const file = write(dir, "usage.csv", `subscriber,usage,usageRef\n${a},3000000,inv-001\n\n${b},20000000,${HEX_REF}\n${c},0,"march, 2026"\n`);

    const result = await runKeeper(["usage", "--plan", m.planAddress, "--file", file, "--yes"], usageEnv(node, dir));
    expect(result.code, detail(result)).to.equal(0);
    expect(errorLines(result), detail(result)).to.deep.equal([]);
    expect(result.stdout).to.include("billed 3 of 3 rows: usage 23000000, from credits 8000000, pulled 15000000");
    expect(result.stdout).to.match(/3 rows checked at block \d+ .* with 7 eth_call/);

    const after = await snapshot(m, [a, b, c]);
    expect(after.get(a)).to.deep.equal({ ...before.get(a)!, credits: CREDITS - 3_000_000n, nextChargeAt: before.get(a)!.nextChargeAt + PERIOD, periodsPaid: 1n });
    expect(after.get(b)).to.deep.equal({ ...before.get(b)!, balance: before.get(b)!.balance - 15_000_000n, credits: 0n, nextChargeAt: before.get(b)!.nextChargeAt + PERIOD, periodsPaid: 1n });
    expect(after.get(c)).to.deep.equal({ ...before.get(c)!, nextChargeAt: before.get(c)!.nextChargeAt + PERIOD, periodsPaid: 1n });
    expect(await m.s.token.getFunction("balanceOf")(payee)).to.equal(payeeBefore + 15_000_000n);

    const charged = await m.plan.queryFilter(m.plan.filters.UsageCharged!(), fromBlock + 1);
    const bySubscriber = new Map(
      charged.map((e) => {
        const args = (e as EventLog).args.toObject() as Record<string, unknown>;
        return [String(args.subscriber), args];
      }),
    );
    expect(bySubscriber.size).to.equal(3);
    expect(bySubscriber.get(a)).to.include({ usage: 3_000_000n, fromCredits: 3_000_000n, pulled: 0n, usageRef: encodeBytes32String("inv-001"), cycleIndex: 0n });
    expect(bySubscriber.get(b)).to.include({ usage: 20_000_000n, fromCredits: CREDITS, pulled: 15_000_000n, usageRef: HEX_REF });
    expect(bySubscriber.get(c)).to.include({ usage: 0n, fromCredits: 0n, pulled: 0n, usageRef: encodeBytes32String("march, 2026") });
    // One transaction, from the reporter.
    expect(await nonceOf(node, REPORTER)).to.equal(1);
  });

  it("shows what it will bill and asks first: without --yes nothing is sent unless the answer is yes", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 1);
    const [a] = m.due.map((w) => w.address) as [string];
    const file = write(dir, "usage.csv", `subscriber,usage\n${a},3000000\n`);
    for (const answer of [undefined, "n\n"]) {
      const refused = await runKeeper(["usage", "--plan", m.planAddress, "--file", file], usageEnv(node, dir), answer === undefined ? {} : { stdin: answer });
      expect(refused.code, detail(refused)).to.equal(1);
      expect(refused.stderr).to.include(`bill 1 row of ${file} on plan`);
      expect(refused.stderr).to.include("usage 3000000, from credits 3000000, pulled from the subscribers 0");
      expect(errorLines(refused)).to.deep.equal(["recur: not sent"]);
    }
    // --json is for programs: it never waits for an answer.
    const json = await runKeeper(["usage", "--plan", m.planAddress, "--file", file, "--json"], usageEnv(node, dir), { stdin: "y\n" });
    expect(json.code, detail(json)).to.equal(1);
    expect(errorLines(json)).to.deep.equal(["recur: not sent: pass --yes to send without asking"]);
    expect(await nonceOf(node, REPORTER)).to.equal(0);
    const yes = await runKeeper(["usage", "--plan", m.planAddress, "--file", file], usageEnv(node, dir), { stdin: "y\n" });
    expect(yes.code, detail(yes)).to.equal(0);
    expect(yes.stdout).to.include("billed 1 of 1 rows");
    expect(await nonceOf(node, REPORTER)).to.equal(1);
  });

  it("refuses a file with an unknown subscriber, a row over the cap and a cycle not ended: each row reported, nothing sent", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 2);
    const [good, overCap] = m.due.map((w) => w.address) as [string, string];
    const fresh = (await subscribeMetered(node, m.s, m.plan, { maxAmount: CAP, allowance: 10n * CAP })).address;
    const stranger = Wallet.createRandom().address;
    const freshEnd = ((await m.plan.getFunction("subscriptionOf")(fresh)) as { nextChargeAt: bigint }).nextChargeAt;
    const file = write(dir, "usage.csv", `subscriber,usage\n${good},1000\n${stranger},2000\n${overCap},${CAP + 1n}\n${fresh},3000\n`);
    const who = [good, overCap, fresh];
    const before = await snapshot(m, who);
    const block = await node.provider.getBlockNumber();

    const result = await runKeeper(["usage", "--plan", m.planAddress, "--file", file, "--yes"], usageEnv(node, dir));
    expect(result.code, detail(result)).to.equal(1);
    expect(errorLines(result), detail(result)).to.deep.equal([
      `recur: ${file}:3: ${stranger} usage 2000: NotSubscribed (unknown subscriber: no subscription on this plan)`,
      `recur: ${file}:4: ${overCap} usage ${CAP + 1n}: UsageAboveCap (cap is ${CAP})`,
      `recur: ${file}:5: ${fresh} usage 3000: NotDue (cycle ends at ${new Date(Number(freshEnd) * 1000).toISOString()})`,
      `recur: ${file}: 3 of 4 rows cannot be billed now; nothing was sent`,
    ]);
    // 4 rows: the plan's billingMode, isReporter, token, perCycleCap; one usageChargeability per row; one
    // subscriptionOf for the NotDue row's hint.
    expect(result.stdout, detail(result)).to.include("4 rows checked at block");
    expect(result.stdout).to.include("with 9 eth_call");

    // Nothing sent: no transaction from the reporter, no block, no money or schedule moved.
    expect(await nonceOf(node, REPORTER)).to.equal(0);
    expect(await node.provider.getBlockNumber()).to.equal(block);
    expect(await snapshot(m, who)).to.deep.equal(before);
  });

  it("--dry-run checks every row and prints what would be sent, and sends nothing", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 2);
    const [a, b] = m.due.map((w) => w.address) as [string, string];
    const file = write(dir, "usage.csv", `subscriber,usage,usageRef\n${a},7000000,r1\n${b},1000000,\n`);
    const before = await snapshot(m, [a, b]);
    const block = await node.provider.getBlockNumber();

    const result = await runKeeper(["usage", "--plan", m.planAddress, "--file", file, "--dry-run"], usageEnv(node, dir));
    expect(result.code, detail(result)).to.equal(0);
    expect(result.stdout).to.match(/would bill 2 rows in 1 chargeUsageMany transaction \(\d+ gas estimated\): usage 8000000, from credits 6000000, pulled 2000000/);
    expect(result.stdout).to.include(`${file}:2: ${a} usage 7000000: from credits ${CREDITS}, pulled 2000000, usageRef ${encodeBytes32String("r1")}`);
    expect(result.stdout).to.include(`${file}:3: ${b} usage 1000000: from credits 1000000, pulled 0, usageRef ${ZeroHash}`);
    expect(result.stdout).to.include("dry run: nothing was sent");
    expect(await nonceOf(node, REPORTER)).to.equal(0);
    expect(await node.provider.getBlockNumber()).to.equal(block);
    expect(await snapshot(m, [a, b])).to.deep.equal(before);
    expect(existsSync(path.join(dir, "usage-journal.sqlite")), "a dry run opens no journal").to.equal(false);
  });

  it("re-running a billed file sends nothing: every row is reported NotDue, already billed", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 2);
    const [a, b] = m.due.map((w) => w.address) as [string, string];
    const file = write(dir, "usage.csv", `subscriber,usage\n${a},6000000\n${b},2000000\n`);
    const first = await runKeeper(["usage", "--plan", m.planAddress, "--file", file, "--yes"], usageEnv(node, dir));
    expect(first.code, detail(first)).to.equal(0);
    const billed = await snapshot(m, [a, b]);
    const nonce = await nonceOf(node, REPORTER);

    const again = await runKeeper(["usage", "--plan", m.planAddress, "--file", file, "--yes"], usageEnv(node, dir));
    expect(again.code, detail(again)).to.equal(1);
    const lines = errorLines(again);
    expect(lines, detail(again)).to.have.length(3);
    for (const [i, who] of [a, b].entries()) {
      const end = new Date(Number(billed.get(who)!.nextChargeAt) * 1000).toISOString();
      expect(lines[i]).to.match(new RegExp(`^recur: ${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:${i + 2}: ${who} usage \\d+: NotDue \\(cycle ends at ${end}; 1 cycle billed so far\\)$`));
    }
    expect(lines[2]).to.equal(`recur: ${file}: 2 of 2 rows cannot be billed now; nothing was sent`);
    expect(await nonceOf(node, REPORTER)).to.equal(nonce);
    expect(await snapshot(m, [a, b])).to.deep.equal(billed);
  });

  it("bills a JSON file (usage as a string or a number) and prints the report as JSON with --json", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 2);
    const [a, b] = m.due.map((w) => w.address) as [string, string];
    const file = write(dir, "usage.json", JSON.stringify([{ subscriber: a, usage: "12000000", usageRef: "order-7" }, { subscriber: b.toLowerCase(), usage: 4000000 }]));
    const before = await snapshot(m, [a, b]);

    const result = await runKeeper(["usage", "--plan", m.planAddress, "--file", file, "--json", "--yes"], usageEnv(node, dir));
    expect(result.code, detail(result)).to.equal(0);
    const report = JSON.parse(result.stdout.trim()) as {
      exitCode: number;
      check: { ethCalls: number };
      billed: { at: string; subscriber: string; usage: string; fromCredits: string; pulled: string; usageRef: string }[];
      notBilled: unknown[];
      totals: { usage: string; fromCredits: string; pulled: string };
      transactions: { status: number; rows: number }[];
    };
    expect(report.exitCode).to.equal(0);
    expect(report.check.ethCalls).to.equal(4 + 2);
    expect(report.notBilled).to.deep.equal([]);
    expect(report.totals).to.deep.equal({ usage: "16000000", fromCredits: "9000000", pulled: "7000000" });
    expect(report.transactions).to.have.length(1);
    expect(report.transactions[0]).to.include({ status: 1, rows: 2 });
    expect(report.billed.map((r) => [r.at, r.subscriber, r.usage, r.fromCredits, r.pulled, r.usageRef])).to.deep.equal([
      [`${file}[0]`, a, "12000000", CREDITS.toString(), "7000000", encodeBytes32String("order-7")],
      [`${file}[1]`, b, "4000000", "4000000", "0", ZeroHash],
    ]);
    const after = await snapshot(m, [a, b]);
    expect(after.get(a)!.balance).to.equal(before.get(a)!.balance - 7_000_000n);
    expect(after.get(b)!.balance).to.equal(before.get(b)!.balance);
    expect(after.get(b)!.credits).to.equal(CREDITS - 4_000_000n);
  });

  it("a key that is neither the owner nor a reporter is refused before anything is sent", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 1);
    const file = write(dir, "usage.csv", `subscriber,usage\n${m.due[0]!.address},1000\n`);
    const stranger = new Wallet(STRANGER_KEY).address;
    const before = await snapshot(m, [m.due[0]!.address]);
    const result = await runKeeper(["usage", "--plan", m.planAddress, "--file", file, "--yes"], usageEnv(node, dir, { RECUR_PRIVATE_KEY: STRANGER_KEY }));
    expect(result.code, detail(result)).to.equal(1);
    expect(result.stderr, detail(result)).to.equal(
      `recur: RECUR_PRIVATE_KEY: expected the key of the plan's owner or of a reporter it authorized (setReporter), got the key of ${stranger}, which may not bill usage on ${m.planAddress}\n`,
    );
    expect(result.stdout + result.stderr).not.to.include(STRANGER_KEY.slice(2));
    expect(await nonceOf(node, stranger)).to.equal(0);
    expect(await snapshot(m, [m.due[0]!.address])).to.deep.equal(before);
  });

  it("a fixed plan's address (or an account that is no plan) is refused with one line naming --plan", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 1);
    const file = write(dir, "usage.csv", `subscriber,usage\n${m.due[0]!.address},1000\n`);
    const fixed = String(m.s.plans[0]!.target);
    const result = await runKeeper(["usage", "--plan", fixed, "--file", file, "--yes"], usageEnv(node, dir));
    expect(result.code, detail(result)).to.equal(1);
    expect(result.stderr).to.equal(
      `recur: --plan: expected a metered plan (billingMode() = 1), got ${fixed}, a fixed-price plan (billingMode() = 0; the keeper's run charges it)\n`,
    );
    const account = Wallet.createRandom().address;
    const none = await runKeeper(["usage", "--plan", account, "--file", file, "--yes"], usageEnv(node, dir));
    expect(none.code, detail(none)).to.equal(1);
    expect(none.stderr).to.equal(`recur: --plan: expected a metered plan (billingMode() = 1), got ${account}, which does not answer billingMode() (not a Recur plan on this chain?)\n`);
    expect(await nonceOf(node, REPORTER)).to.equal(0);
  });

  it("a row that fails between the check and its block (allowance revoked) is reported with its reason, exit 2", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 2);
    const [a, b] = m.due as [HDNodeWallet, HDNodeWallet];
    const file = write(dir, "usage.csv", `subscriber,usage\n${a.address},9000000\n${b.address},9000000\n`);
    const before = await snapshot(m, [a.address, b.address]);
    await node.send("evm_setAutomine", [false]);
    try {
      const keeper = startKeeper(["usage", "--plan", m.planAddress, "--file", file, "--yes"], usageEnv(node, dir));
      // Once the keeper's transaction waits in the mempool, b revokes its allowance with a higher tip, so
      // its transaction goes first in the block.
      const pending = async () => ((await node.send("eth_getBlockByNumber", ["pending", false])) as { transactions: string[] }).transactions.length;
      const deadline = Date.now() + 60_000;
      while ((await pending()) === 0) {
        if (Date.now() > deadline) throw new Error(`the keeper sent nothing:\n${keeper.lines.map((l) => JSON.stringify(l)).join("\n")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await (b.connect(node.provider) as HDNodeWallet).sendTransaction({
        to: String(m.s.token.target),
        data: m.s.token.interface.encodeFunctionData("approve", [m.planAddress, 0n]),
        maxPriorityFeePerGas: 50_000_000_000n,
        maxFeePerGas: 90_000_000_000n,
        gasLimit: 100_000n,
      });
      await node.send("evm_mine");
      const result = await keeper.waitForExit(60_000);
      expect(result.code, detail(result)).to.equal(2);
      expect(result.stdout).to.include("billed 1 of 2 rows: usage 9000000, from credits 5000000, pulled 4000000");
      const lines = errorLines(result);
      expect(lines[0], detail(result)).to.match(new RegExp(`^recur: .*usage\\.csv:3: ${b.address} usage 9000000: not billed, AllowanceTooLow in 0x[0-9a-f]{64}$`));
      expect(lines[1]).to.equal(`recur: ${file}: 1 of 2 rows not billed`);
    } finally {
      await node.send("evm_setAutomine", [true]);
    }
    const after = await snapshot(m, [a.address, b.address]);
    expect(after.get(a.address)!.balance).to.equal(before.get(a.address)!.balance - 4_000_000n);
    expect(after.get(b.address)).to.deep.equal(before.get(b.address));
  });

  it("a keeper pass over the factory leaves a due metered subscription alone: no chargeUsage, no index entry", async () => {
    const { node } = nodes;
    const dir = tmp();
    const m = await meteredSetUp(node, dir, 1);
    const metered = m.due[0]!.address;
    // Even as a reporter of the metered plan, the keeper never bills it.
    await (await m.plan.getFunction("setReporter")(m.s.keeperAddress, true)).wait();
    const before = await snapshot(m, [metered]);
    expect(await m.plan.getFunction("isDue")(metered)).to.equal(true);

    const run = await runKeeper(["run", "--once"], m.s.env());
    expect(run.code, detail(run)).to.equal(0);
    const pass = run.lines.find((l) => l.event === "pass")!;
    expect(pass).to.include({ due: 1, charged: 1, transactions: 1 });
    expect(await snapshot(m, [metered])).to.deep.equal(before);
    // The keeper's only transaction is the fixed plan's chargeMany.
    expect(await nonceOf(node, m.s.keeperAddress)).to.equal(1);
    const block = await node.provider.getBlock("latest", true);
    const tx = block!.prefetchedTransactions.find((t) => t.from.toLowerCase() === m.s.keeperAddress);
    expect(tx?.to).to.equal(String(m.s.plans[0]!.target));
    const status = JSON.parse((await runKeeper(["status", "--json"], m.s.env())).stdout.trim()) as { plans: number; subscriptions: Record<string, number> };
    expect(status.plans).to.equal(1);
    expect(status.subscriptions).to.deep.equal({ live: 1 });
  });
});

describe("keeper usage: a malformed file (binary, no node needed)", function () {
  this.timeout(60_000);
  // Parsing comes before any RPC call: the URL points nowhere.
  const nowhere = { url: "http://127.0.0.1:9" };
  const PLAN = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
  const A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  const B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

  async function refused(name: string, text: string): Promise<{ file: string; lines: string[] }> {
    const dir = tmp();
    const file = write(dir, name, text);
    const result = await runKeeper(["usage", "--plan", PLAN, "--file", file, "--yes"], usageEnv(nowhere, dir));
    expect(result.code, detail(result)).to.equal(1);
    expect(result.stdout, detail(result)).to.equal("");
    expect(result.stderr.endsWith("\n")).to.equal(true);
    return { file, lines: result.stderr.slice(0, -1).split("\n") };
  }

  it("CSV: one line per bad row, naming file:line and the field (blank lines counted)", async () => {
    // A different subscriber on each row, so that each line has one problem.
    const [s1, s2, s3, s4, s5, s6, s7, s8] = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => getAddress(`0x${i.toString(16).padStart(40, "0")}`));
    const { file, lines } = await refused(
      "usage.csv",
      [
        "subscriber,usage,usageRef",
        `${A.slice(0, 20)},100,`,
        `${s1},1.5,`,
        "",
        `${s2},-3,`,
        `${s3!.toLowerCase()},12,${"x".repeat(32)}`,
        `${s4},7,0x1234`,
        `${A},8,"unclosed`,
        `${s5},9,a,b`,
        `${s6},1e6,`,
        `${s7},`,
        `${s8},100,"quoted, with a comma"`,
      ].join("\r\n") + "\r\n",
    );
    expect(lines).to.deep.equal([
      `recur: ${file}:2: subscriber: expected a 0x-prefixed 20-byte address (mixed case only with a valid checksum), got "${A.slice(0, 20)}"`,
      `recur: ${file}:3: usage: expected a whole number of token base units (digits only: no sign, decimals or exponent), got "1.5"`,
      `recur: ${file}:5: usage: expected a whole number of token base units (digits only: no sign, decimals or exponent), got "-3"`,
      `recur: ${file}:6: usageRef: expected a 0x-prefixed 32-byte hex (64 digits) or a text of at most 31 bytes, got "${"x".repeat(32)}" (32 bytes)`,
      `recur: ${file}:7: usageRef: expected a 0x-prefixed 32-byte hex (64 digits) or a text of at most 31 bytes, got "0x1234"`,
      `recur: ${file}:8: row: expected comma-separated fields (a quoted one closed by a quote), got "${A},8,\\"unclosed"`,
      `recur: ${file}:9: row: expected at most 3 fields (subscriber,usage,usageRef), got 4`,
      `recur: ${file}:10: usage: expected a whole number of token base units (digits only: no sign, decimals or exponent), got "1e6"`,
      `recur: ${file}:11: usage: expected a whole number of token base units (digits only: no sign, decimals or exponent), got ""`,
    ]);
  });

  it("CSV: a repeated subscriber, a bad header and an empty file are refused", async () => {
    const dup = await refused("usage.csv", `subscriber,usage\n${A},1\n${B},2\n${A.toLowerCase()},3\n`);
    expect(dup.lines).to.deep.equal([`recur: ${dup.file}:4: subscriber: expected each subscriber once per file, got ${A} again (first at ${dup.file}:2)`]);
    const header = await refused("usage.csv", `address,amount\n${A},1\n`);
    expect(header.lines).to.deep.equal([`recur: ${header.file}:1: header: expected the header "subscriber,usage,usageRef" (usageRef optional), got "address,amount"`]);
    const empty = await refused("usage.csv", "subscriber,usage,usageRef\n\n");
    expect(empty.lines).to.deep.equal([`recur: ${empty.file}: expected at least one row after the header, got none`]);
  });

  it("JSON: one line per bad row, naming file[index] and the field", async () => {
    const { file, lines } = await refused(
      "usage.json",
      JSON.stringify([
        { subscriber: A, usage: "1" },
        { subscriber: B, usage: 1.5 },
        { subscriber: A.toLowerCase(), usage: "2" },
        { subscriber: B, usage: "3", usageref: "x" },
        "not a row",
        { subscriber: "0x12", usage: 2 ** 60, usageRef: 7 },
      ]),
    );
    expect(lines).to.deep.equal([
      `recur: ${file}[1]: usage: expected a whole number of token base units (digits only: no sign, decimals or exponent), got 1.5`,
      `recur: ${file}[2]: subscriber: expected each subscriber once per file, got ${A} again (first at ${file}[0])`,
      `recur: ${file}[3]: usageref: expected only the fields subscriber, usage and usageRef, got "usageref"`,
      `recur: ${file}[4]: row: expected an object {subscriber, usage, usageRef}, got "not a row"`,
      `recur: ${file}[5]: subscriber: expected a 0x-prefixed 20-byte address (mixed case only with a valid checksum), got "0x12"`,
      `recur: ${file}[5]: usage: expected a whole number of token base units (digits only: no sign, decimals or exponent) (write amounts above 2^53 as strings), got 1152921504606847000`,
      `recur: ${file}[5]: usageRef: expected a 0x-prefixed 32-byte hex (64 digits) or a text of at most 31 bytes, got 7`,
    ]);
    const broken = await refused("usage.json", `[{"subscriber": "${A}", "usage": "1"`);
    expect(broken.lines).to.have.length(1);
    expect(broken.lines[0]).to.match(new RegExp(`^recur: .*usage\\.json: expected a JSON array of \\{subscriber, usage, usageRef\\} objects, got invalid JSON \\(.+\\)$`));
  });

  it("missing --plan or --file, or a file of another kind: one line naming the flag", async () => {
    const dir = tmp();
    const file = write(dir, "usage.csv", `subscriber,usage\n${A},1\n`);
    const env = usageEnv(nowhere, dir);
    const cases: [string[], string][] = [
      [["usage", "--file", file], `recur: --plan: expected the metered plan's 0x-prefixed 20-byte address, got nothing`],
      [["usage", "--plan", "0x1234", "--file", file], `recur: --plan: expected the metered plan's 0x-prefixed 20-byte address, got "0x1234"`],
      [["usage", "--plan", PLAN], `recur: --file: expected an existing .csv or .json usage file, got nothing`],
      [["usage", "--plan", PLAN, "--file", path.join(dir, "missing.csv")], `recur: --file: expected an existing .csv or .json usage file, got "${path.join(dir, "missing.csv")}"`],
      [["usage", "--plan", PLAN, "--file", write(dir, "usage.txt", "")], `recur: --file: expected a file named *.csv or *.json (the name says the format), got "${path.join(dir, "usage.txt")}"`],
      [["run", "--once", "--plan", PLAN], `recur: arguments: expected --plan only with the usage command, got "--plan"`],
    ];
    for (const [args, line] of cases) {
      const result = await runKeeper(args, { ...env, RECUR_FACTORY: PLAN, RECUR_FACTORY_BLOCK: "0" });
      expect(result.code, detail(result)).to.equal(1);
      expect(result.stderr).to.equal(`${line}\n`);
    }
  });
});

// The merchant reports end to end: a real hardhat node, plans of every kind (fixed, USD-priced, metered),
// customers with refs, a failed charge recovered inside grace, a cancellation, the keeper's pass, then
// `recur subscribers`, `charges` and `revenue` (JSON and CSV) checked against what the chain says:
// receipts' tx hashes and log indexes, amounts, statusOf, chargeabilityMany. And a reorg between two
// reports: the second one shows the canonical branch.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { encodeBytes32String, Interface } from "ethers";
import type { Contract, Log } from "ethers";

import { at, deploy, runKeeper, useNodePerTest } from "../keeper/support/chain.ts";
import type { Node } from "../keeper/support/chain.ts";
import { createMeteredPlan, DAY, fundedWallet, GRACE, PERIOD, PRICE, setUp, subscribeMetered, terms } from "../keeper/support/scenario.ts";
import type { Scenario } from "../keeper/support/scenario.ts";

const STATUS = ["None", "Trialing", "Active", "PastDue", "Paused", "Cancelled", "Expired"];
const REASONS = ["Ok", "NotSubscribed", "NotDue", "Paused", "Cancelled", "Expired", "PlanRetired", "MaxAmountExceeded", "AllowanceTooLow", "BalanceTooLow", "TransferFailed", "PriceStale", "UsageAboveCap"];
const USD_PRICE = 1_000_000_000n; // $10.00, 8 decimals

/** RFC 4180 as the reports write it (CRLF, quoted fields with doubled quotes), parsed into records. */
function parseCsv(text: string): Record<string, string>[] {
  expect(text.endsWith("\r\n"), "CSV ends with CRLF").to.equal(true);
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") record.push(field), (field = "");
    else if (ch === "\r" && text[i + 1] === "\n") record.push(field), records.push(record), (field = ""), (record = []), i++;
    else field += ch;
  }
  const [header, ...rows] = records;
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i] ?? ""])));
}

interface Json {
  [key: string]: unknown;
}

async function report(s: Scenario, args: string[]): Promise<Json> {
  const run = await runKeeper(args, s.env());
  expect(run.code, `recur ${args.join(" ")}: ${run.stderr}${run.stdout}`).to.equal(0);
  return JSON.parse(run.stdout) as Json;
}

async function csv(s: Scenario, args: string[]): Promise<Record<string, string>[]> {
  const run = await runKeeper([...args, "--csv"], s.env());
  expect(run.code, `recur ${args.join(" ")} --csv: ${run.stderr}${run.stdout}`).to.equal(0);
  return parseCsv(run.stdout);
}

/** Every Charged / ChargeFailed / UsageCharged / UsageChargeFailed log of `plans`, from the node. */
async function chargeLogs(node: Node, plans: Contract[]): Promise<{ log: Log; name: string; args: Record<string, unknown> }[]> {
  const out = [];
  for (const plan of plans) {
    const iface = plan.interface as Interface;
    for (const log of await node.provider.getLogs({ address: String(plan.target), fromBlock: 0, toBlock: "latest" })) {
      const parsed = iface.parseLog(log);
      if (parsed !== null && ["Charged", "ChargeFailed", "UsageCharged", "UsageChargeFailed"].includes(parsed.name)) {
        out.push({ log, name: parsed.name, args: parsed.args.toObject() });
      }
    }
  }
  return out.sort((a, b) => a.log.blockNumber - b.log.blockNumber || a.log.index - b.log.index);
}

describe("merchant reports (end to end)", function () {
  this.timeout(600_000);
  const nodes = useNodePerTest();

  async function build(node: Node) {
    const store = path.join(mkdtempSync(path.join(tmpdir(), "recur-")), "keeper.sqlite");
    const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: store });
    const fixed = s.plans[0]!;
    const feed = await deploy("MockAggregator", s.deployer, [8, 100_000_000n]);
    const created = await (await (s.factory.connect(s.merchant) as Contract).getFunction("createPlan")(
      terms(String(s.token.target), await s.merchant.getAddress(), { price: USD_PRICE, priceFeed: String(feed.target), maxPriceAge: 3_600n }),
    )).wait();
    const event = created.logs.map((l: { topics: string[]; data: string }) => s.factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
    const usd = at("FixedPricePlan", event.args.plan as string, s.merchant);
    const metered = await createMeteredPlan(s);
    const join = async (plan: Contract, ref: string | null) => {
      const wallet = await fundedWallet(node, s.token, s.deployer);
      await (await (s.token.connect(wallet) as Contract).getFunction("approve")(String(plan.target), 12n * PRICE)).wait();
      const p = plan.connect(wallet) as Contract;
      await (await (ref === null ? p.getFunction("subscribe")(PRICE) : p.getFunction("subscribeWithRef")(PRICE, encodeBytes32String(ref)))).wait();
      return wallet;
    };
    const alice = await join(fixed, "order-1");
    const bob = await join(fixed, "order-2");
    const carol = await join(fixed, null);
    const dave = await join(usd, "usd-7");
    const meg = await subscribeMetered(node, s, metered, { maxAmount: 50_000_000n, allowance: 100_000_000n });
    return { s, fixed, usd, metered, feed, alice, bob, carol, dave, meg };
  }

  it("subscribers, charges and revenue match the chain: statuses, predictions, tx hashes, amounts, recovery inside grace", async () => {
    const { node } = nodes;
    const { s, fixed, usd, metered, feed, alice, bob, carol, dave, meg } = await build(node);
    const fixedAddress = String(fixed.target).toLowerCase();
    const start = await node.latestTimestamp();

    // Carol cancels; Bob's allowance is taken away; a period later the feed is fresh again.
    await (await (fixed.connect(carol) as Contract).getFunction("cancel")()).wait();
    await (await (s.token.connect(bob) as Contract).getFunction("approve")(String(fixed.target), 0n)).wait();
    await node.mineAt(start + PERIOD + 60n);
    await (await (feed.connect(s.deployer) as Contract).getFunction("setAnswer")(100_000_000n)).wait();
    // Anyone may charge this plan: a direct chargeMany of Bob records his failure (AllowanceTooLow).
    await (await (fixed.connect(s.deployer) as Contract).getFunction("chargeMany")([bob.address])).wait();
    // The keeper charges Alice and Dave (the USD plan), skips Bob (the chain says he cannot pay).
    const pass = await runKeeper(["run", "--once"], s.env());
    expect(pass.code, pass.stderr + pass.stdout).to.equal(0);
    // The metered cycle has ended: the owner bills 5.000000 of usage.
    await (await metered.getFunction("chargeUsage")(meg.address, 5_000_000n, encodeBytes32String("usage-1"))).wait();

    // subscribers: status as statusOf says, predictions as chargeabilityMany says.
    const subs = (await report(s, ["subscribers", "--plan", fixedAddress, "--json"])).subscribers as Json[];
    expect(subs).to.have.length(3);
    const chainReasons = (await fixed.getFunction("chargeabilityMany")([alice.address, bob.address, carol.address])) as bigint[];
    for (const [i, who] of [alice, bob, carol].entries()) {
      const row = subs.find((r) => r.subscriber === who.address.toLowerCase())!;
      expect(row.status, who.address).to.equal(STATUS[Number(await fixed.getFunction("statusOf")(who.address))]);
      const sub = (await fixed.getFunction("subscriptionOf")(who.address)) as { periodsPaid: bigint; nextChargeAt: bigint };
      expect(row.periodsPaid).to.equal(Number(sub.periodsPaid));
      if (row.status === "Cancelled") expect(row.prediction).to.equal(null);
      else expect(row.prediction).to.equal(REASONS[Number(chainReasons[i])]);
    }
    const bobRow = subs.find((r) => r.subscriber === bob.address.toLowerCase())!;
    expect(bobRow).to.include({ status: "PastDue", ref: "order-2", prediction: "AllowanceTooLow", outcome: "AllowanceTooLow: ask to approve more", lastFailure: "AllowanceTooLow" });
    const aliceRow = subs.find((r) => r.subscriber === alice.address.toLowerCase())!;
    expect(aliceRow).to.include({ status: "Active", ref: "order-1", outcome: "will succeed", periodsPaid: 2, totalPaid: "20", totalPaidBaseUnits: (2n * PRICE).toString() });
    expect(subs.find((r) => r.subscriber === carol.address.toLowerCase())).to.include({ status: "Cancelled", ref: null, outcome: null });
    // --status and --ref filter; a bad status is one line naming it and the allowed ones.
    const pastDue = (await report(s, ["subscribers", "--plan", fixedAddress, "--status", "PastDue", "--json"])).subscribers as Json[];
    expect(pastDue.map((r) => r.subscriber)).to.deep.equal([bob.address.toLowerCase()]);
    const byRef = (await report(s, ["subscribers", "--plan", fixedAddress, "--ref", "order-1", "--json"])).subscribers as Json[];
    expect(byRef.map((r) => r.subscriber)).to.deep.equal([alice.address.toLowerCase()]);
    const byHex = (await report(s, ["subscribers", "--plan", fixedAddress, "--ref", encodeBytes32String("order-1"), "--json"])).subscribers as Json[];
    expect(byHex.map((r) => r.subscriber)).to.deep.equal([alice.address.toLowerCase()]);
    const bad = await runKeeper(["subscribers", "--plan", fixedAddress, "--status", "Active,Late"], s.env());
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim().split("\n")).to.deep.equal(['recur: --status: expected one or more of Trialing, Active, PastDue, Paused, Cancelled, Expired, comma-separated, got "Late"']);
    const table = await runKeeper(["subscribers", "--plan", fixedAddress], s.env());
    expect(table.code, table.stderr).to.equal(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).to.match(new RegExp(`^plan ${fixedAddress}: 3 subscriber\\(s\\), at block \\d+ `));
    expect(lines[1]).to.match(/^subscriber\s+status\s+ref\s+started_at/);
    expect(lines.find((l) => l.startsWith(bob.address.toLowerCase()))).to.match(/PastDue\s+order-2 .*AllowanceTooLow: ask to approve more$/);
    const subsCsv = await csv(s, ["subscribers", "--plan", fixedAddress]);
    expect(subsCsv.find((r) => r.subscriber === bob.address.toLowerCase())).to.include({ chain_id: "31337", status: "PastDue", ref: "order-2", prediction: "AllowanceTooLow" });

    // plans: every kind, terms in human units, subscribers by status as statusOf counts them.
    const plans = (await report(s, ["plans", "--owner", await s.merchant.getAddress(), "--json"])).plans as Json[];
    expect(plans.map((p) => [p.plan, p.kind, p.status, p.terms])).to.deep.equal([
      [fixedAddress, "fixed", "Active", "10 tUSDC"],
      [String(usd.target).toLowerCase(), "fixed", "Active", "$10 (paid in tUSDC)"],
      [String(metered.target).toLowerCase(), "metered", "Active", "usage, up to 100 tUSDC a cycle"],
    ]);
    expect(plans[0]!.subscriptions).to.deep.include({ Active: 1, PastDue: 1, Cancelled: 1, Trialing: 0 });
    expect(plans[2]).to.include({ perCycleCap: "100", perCycleCapBaseUnits: "100000000", period: "30 days" });
    const plansCsv = await csv(s, ["plans"]);
    expect(plansCsv.map((r) => [r.plan, r.past_due, r.cancelled])).to.deep.include([fixedAddress, "1", "1"]);

    // Bob approves again and the keeper collects inside grace: the failure shows as recovered.
    await (await (s.token.connect(bob) as Contract).getFunction("approve")(String(fixed.target), 12n * PRICE)).wait();
    await node.mineAt(start + PERIOD + DAY);
    const recovery = await runKeeper(["run", "--once"], s.env());
    expect(recovery.code, recovery.stderr + recovery.stdout).to.equal(0);
    // Alice empties her wallet: her next charge (due within 30 days) is at risk.
    await (await (s.token.connect(alice) as Contract).getFunction("transfer")(await s.deployer.getAddress(), await s.token.getFunction("balanceOf")(alice.address))).wait();

    // charges: one row per event the chain logged, same tx hash, log index and amount.
    const all = [fixed, usd, metered];
    const logs = await chargeLogs(node, all);
    const charges = (await report(s, ["charges", "--json"])).charges as Json[];
    expect(charges).to.have.length(logs.length);
    logs.forEach(({ log, name, args }, i) => {
      const row = charges[i]!;
      expect(row.txHash, `${name} #${i}`).to.equal(log.transactionHash);
      expect(row.logIndex).to.equal(log.index);
      expect(row.plan).to.equal(log.address.toLowerCase());
      expect(row.subscriber).to.equal(String(args.subscriber).toLowerCase());
      const amount = name === "Charged" ? args.amount : name === "UsageCharged" ? args.pulled : null;
      expect(row.amountBaseUnits).to.equal(amount === null ? null : String(amount));
      if (name === "ChargeFailed") expect(row.reason).to.equal(REASONS[Number(args.reason)]);
    });
    const failure = charges.find((c) => c.event === "charge_failed")!;
    const recoveredBy = charges.find((c) => c.event === "charged" && c.subscriber === bob.address.toLowerCase() && c.periodIndex === 1)!;
    expect(failure).to.include({ subscriber: bob.address.toLowerCase(), reason: "AllowanceTooLow", recoveredAt: recoveredBy.time, recovery: `recovered at ${String(recoveredBy.time)}` });
    expect(new Date(String(recoveredBy.time)).getTime() / 1000).to.be.at.most(Number(start + PERIOD + 60n + GRACE));
    const usdCharges = charges.filter((c) => c.plan === String(usd.target).toLowerCase() && c.event === "charged");
    expect(usdCharges.map((c) => c.usd)).to.deep.equal(["10", "10"]);
    const usage = charges.find((c) => c.event === "usage_charged")!;
    expect(usage).to.include({ subscriber: meg.address.toLowerCase(), amount: "5", amountBaseUnits: "5000000", kind: "metered" });
    // --plan, --subscriber and --since/--until narrow it; the CSV carries the same rows.
    const bobOnly = (await report(s, ["charges", "--plan", fixedAddress, "--subscriber", bob.address, "--json"])).charges as Json[];
    expect(bobOnly.map((c) => c.event)).to.deep.equal(["charged", "charge_failed", "charged"]);
    const since = new Date(Number(start + PERIOD) * 1000).toISOString().replace(".000Z", "Z");
    const late = (await report(s, ["charges", "--since", since, "--json"])).charges as Json[];
    expect(late.every((c) => String(c.time) >= since)).to.equal(true);
    expect(late.length).to.be.below(charges.length);
    const chargesCsv = await csv(s, ["charges"]);
    expect(chargesCsv.map((r) => [r.tx_hash, r.log_index, r.amount_base_units])).to.deep.equal(charges.map((c) => [c.txHash, String(c.logIndex), c.amountBaseUnits === null ? "" : String(c.amountBaseUnits)]));
    expect(chargesCsv.find((r) => r.event === "charge_failed")).to.include({ chain_id: "31337", reason: "AllowanceTooLow", recovered_at: String(recoveredBy.time) });
    const badDate = await runKeeper(["charges", "--since", "2027-13-01"], s.env());
    expect(badDate.code).to.equal(1);
    expect(badDate.stderr.trim()).to.equal('recur: --since: expected a date "YYYY-MM-DD" (UTC) or an ISO-8601 time "2027-01-01T00:00:00Z", got "2027-13-01"');

    // revenue over everything: collected = the chain's Charged + UsageCharged amounts; MRR of the live
    // fixed subscriptions; one failure, recovered; Alice's 10.000000 at risk (BalanceTooLow).
    const revenue = await report(s, ["revenue", "--since", "2000-01-01", "--by", "month", "--at-risk-days", "30", "--json"]);
    const pulled = logs.reduce((sum, l) => sum + (l.name === "Charged" ? (l.args.amount as bigint) : l.name === "UsageCharged" ? (l.args.pulled as bigint) : 0n), 0n);
    const collected = (revenue.collected as { tokens: Json[]; usd: Json | null }[]).flatMap((b) => b.tokens).reduce((sum, t) => sum + BigInt(String(t.amountBaseUnits)), 0n);
    expect(collected).to.equal(pulled);
    const usdCollected = (revenue.collected as { usd: Json | null }[]).reduce((sum, b) => sum + BigInt(String(b.usd?.amountBaseUnits ?? 0)), 0n);
    expect(usdCollected).to.equal(2n * USD_PRICE);
    const mrr = revenue.mrr as Json[];
    expect(mrr.find((m) => m.currency === String(s.token.target).toLowerCase())).to.include({ amountBaseUnits: (2n * PRICE).toString(), count: 2 });
    expect(mrr.find((m) => m.currency === "USD")).to.include({ amount: "10", count: 1 });
    expect(revenue.subscriptions).to.deep.include({ new: 5, cancelled: 1, expired: 0 });
    expect(revenue.failedCharges).to.deep.equal({ failed: 1, recoveredInGrace: 1, recoveryRate: 1 });
    // At risk: Alice (BalanceTooLow, 10 tokens) and Dave, whose USD plan's feed answer is older than its
    // hour by now (PriceStale, $10.00): the chain's own predictions.
    const risk = revenue.atRisk as { totals: Json[]; subscriptions: Json[] };
    expect(risk.subscriptions.map((r) => `${String(r.subscriber)} ${String(r.reason)}`).sort()).to.deep.equal(
      [`${alice.address.toLowerCase()} BalanceTooLow`, `${dave.address.toLowerCase()} PriceStale`].sort(),
    );
    expect(REASONS[Number(((await fixed.getFunction("chargeabilityMany")([alice.address])) as bigint[])[0])]).to.equal("BalanceTooLow");
    expect(REASONS[Number(((await usd.getFunction("chargeabilityMany")([dave.address])) as bigint[])[0])]).to.equal("PriceStale");
    expect(risk.totals.find((t) => t.currency === String(s.token.target).toLowerCase())).to.include({ amountBaseUnits: PRICE.toString(), count: 1 });
    expect(risk.totals.find((t) => t.currency === "USD")).to.include({ amount: "10", amountBaseUnits: USD_PRICE.toString(), count: 1 });
    const revenueCsv = await csv(s, ["revenue", "--since", "2000-01-01", "--at-risk-days", "30"]);
    expect(revenueCsv.find((r) => r.metric === "at_risk" && r.symbol !== "USD")).to.include({ amount: "10", amount_base_units: PRICE.toString(), count: "1" });
    expect(revenueCsv.find((r) => r.metric === "recovered_in_grace")).to.include({ count: "1", detail: "100.0% recovered" });
  });

  it("a reorg between two reports: the second shows the canonical branch's charges and revenue", async () => {
    const { node } = nodes;
    const { s, fixed, alice, bob } = await build(node);
    const fixedAddress = String(fixed.target).toLowerCase();
    const start = await node.latestTimestamp();
    await node.mineAt(start + PERIOD + 60n);
    const snapshot = await node.send("evm_snapshot");

    // Branch 1: the keeper charges all three (Alice, Bob, Carol).
    const pass = await runKeeper(["run", "--once"], s.env());
    expect(pass.code, pass.stderr + pass.stdout).to.equal(0);
    const before = (await report(s, ["charges", "--plan", fixedAddress, "--json"])).charges as Json[];
    expect(before.filter((c) => c.event === "charged")).to.have.length(6);
    const revenueBefore = await report(s, ["revenue", "--plan", fixedAddress, "--since", "2000-01-01", "--json"]);

    // Branch 2 (longer, canonical): Bob cancels instead and only Alice is charged, by a direct call.
    // (Carol stays due, inside grace.)
    await node.send("evm_revert", [snapshot]);
    (s.deployer as unknown as { reset(): void }).reset();
    await (await (fixed.connect(bob) as Contract).getFunction("cancel")()).wait();
    await (await (fixed.connect(s.deployer) as Contract).getFunction("chargeMany")([alice.address])).wait();
    for (let i = 0; i < 3; i++) await node.send("evm_mine");
    const after = (await report(s, ["charges", "--plan", fixedAddress, "--json"])).charges as Json[];
    const logs = await chargeLogs(node, [fixed]);
    expect(after.map((c) => [c.txHash, c.logIndex])).to.deep.equal(logs.map((l) => [l.log.transactionHash, l.log.index]));
    expect(after.filter((c) => c.event === "charged")).to.have.length(4);
    const revenueAfter = await report(s, ["revenue", "--plan", fixedAddress, "--since", "2000-01-01", "--json"]);
    const total = (r: Json) => (r.collected as { tokens: Json[] }[]).flatMap((b) => b.tokens).reduce((sum, t) => sum + BigInt(String(t.amountBaseUnits)), 0n);
    expect(total(revenueBefore)).to.equal(6n * PRICE);
    expect(total(revenueAfter)).to.equal(4n * PRICE);
    expect(revenueAfter.subscriptions).to.deep.include({ cancelled: 1 });
    const subs = (await report(s, ["subscribers", "--plan", fixedAddress, "--json"])).subscribers as Json[];
    expect(subs.find((r) => r.subscriber === bob.address.toLowerCase())).to.include({ status: "Cancelled" });
  });
});

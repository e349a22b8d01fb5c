// Webhooks end to end on a real hardhat node, the keeper run as a process (`recur run --once` with
// RECUR_WEBHOOKS) and a real receiver on 127.0.0.1: every event kind arrives, signed (verified with the
// spec's own library, with either of two secrets: rotation), with the payload the chain says.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

import { expect } from "chai";
import { encodeBytes32String } from "ethers";
import type { Contract, Signer } from "ethers";

import { ROOT, runKeeper, useSharedNode } from "../keeper/support/chain.ts";
import type { Node } from "../keeper/support/chain.ts";
import { createMeteredPlan, DAY, fundedWallet, GRACE, PERIOD, PRICE, setUp, subscribeMetered, subscribeNew, terms } from "../keeper/support/scenario.ts";
import { at } from "../keeper/support/chain.ts";
import { EVENT_TYPES } from "../../src/webhooks/events.ts";
import { NEW_SECRET, ok, OLD_SECRET, tmp, writeConfig } from "./support/helpers.ts";
import { startReceiver } from "./support/receiver.ts";
import type { Receiver } from "./support/receiver.ts";

async function send(contract: Contract, signer: Signer, method: string, ...args: unknown[]) {
  const receipt = await (await (contract.connect(signer) as Contract).getFunction(method)(...args)).wait();
  expect(receipt.status).to.equal(1);
  return receipt as { hash: string; blockNumber: number };
}

async function createPlan(s: Awaited<ReturnType<typeof setUp>>, overrides: Record<string, unknown>): Promise<Contract> {
  const receipt = await (await (s.factory.connect(s.merchant) as Contract).getFunction("createPlan")(terms(String(s.token.target), await s.merchant.getAddress(), overrides))).wait();
  const event = receipt.logs.map((l: { topics: string[]; data: string }) => s.factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
  return at("FixedPricePlan", event.args.plan as string, s.merchant);
}

const lower = (a: unknown) => String(a).toLowerCase();

/** Every key path of a JSON value ("data.token.symbol"), sorted. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix === "" ? k : `${prefix}.${k}`)).sort();
}

/** docs/WEBHOOKS.md shows each type's body as the keeper sends it: each example's keys are the keys of a
 * body delivered here (RECUR_WEBHOOK_EXAMPLES=file writes those bodies, to regenerate the examples). */
function checkDocs(byType: Map<string, { type: string; timestamp: string; data: Record<string, unknown> }[]>): void {
  const samples = Object.fromEntries([...EVENT_TYPES].map((t) => [t, byType.get(t)![0]!]));
  if (process.env.RECUR_WEBHOOK_EXAMPLES !== undefined) writeFileSync(process.env.RECUR_WEBHOOK_EXAMPLES, JSON.stringify(samples, null, 2));
  const docs = readFileSync(path.join(ROOT, "docs/WEBHOOKS.md"), "utf8");
  for (const type of EVENT_TYPES) {
    const match = new RegExp("### `" + type.replace(".", "\\.") + "`[\\s\\S]*?```json\\n([\\s\\S]*?)```").exec(docs);
    expect(match, `docs/WEBHOOKS.md has an example of ${type}`).to.not.equal(null);
    expect(keyPaths(JSON.parse(match![1]!)), `docs/WEBHOOKS.md's ${type} example has the keys the keeper sends`).to.deep.equal(keyPaths(samples[type]));
  }
}

describe("webhooks: every event kind, end to end", function () {
  this.timeout(600_000);
  let node!: Node;
  let receiver!: Receiver;
  useSharedNode((started) => (node = started));
  before(async () => {
    receiver = await startReceiver();
  });
  after(async () => receiver?.stop());

  it("delivers every event kind, signed with both secrets, with the chain's ids, amounts, refs, predictions and links", async () => {
    const dir = tmp();
    const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: path.join(dir, "keeper.sqlite") });
    const fixed = s.plans[0]!;
    const trialPlan = await createPlan(s, { trialPeriod: 7n * DAY });
    const other = await createPlan(s, {});
    const metered = await createMeteredPlan(s);
    const webhooks = writeConfig(dir, {
      endpoints: [{ url: receiver.url, secrets: [OLD_SECRET, NEW_SECRET] }],
      upcomingLead: "5d", trialWillEndLead: "5d", pastDueAfter: "0s", retrySchedule: ["100ms", "200ms"], timeout: "5s",
      checkoutUrl: "https://pay.example/checkout.html", portalUrl: "https://pay.example/manage.html",
    });
    const env = s.env({ RECUR_WEBHOOKS: webhooks });
    const once = async () => ok(await runKeeper(["run", "--once"], env));
    await once();

    // Chain events: sign-ups (one with a ref), max amount, pause, resume, cancel, plan status and payee.
    const a = await subscribeNew(node, s.token, s.deployer, fixed);
    await send(fixed, a, "setMaxAmount", 2n * PRICE);
    await send(fixed, a, "pause");
    await send(fixed, a, "resume");
    const b = await subscribeNew(node, s.token, s.deployer, fixed);
    await send(fixed, b, "cancel");
    const c = await fundedWallet(node, s.token, s.deployer);
    await send(s.token, c, "approve", await fixed.getAddress(), PRICE);
    const subscribeC = await send(fixed, c, "subscribeWithRef", PRICE, encodeBytes32String("order-42"));
    const d = await fundedWallet(node, s.token, s.deployer);
    await send(s.token, d, "approve", await trialPlan.getAddress(), 12n * PRICE);
    await send(trialPlan, d, "subscribe", PRICE);
    const e = await subscribeMetered(node, s, metered, { maxAmount: 50_000_000n, allowance: 100_000_000n });
    await send(other, s.merchant, "setStatus", 1);
    await send(other, s.merchant, "setPayee", await s.deployer.getAddress());
    const t0 = Number(await node.latestTimestamp());
    await node.mineAt(t0 + 1);
    await once();

    // Time events: the trial's end and its charge coming; then the fixed plan's charges coming (C's will
    // fail: its allowance was spent on the first period).
    await node.mineAt(t0 + 3 * Number(DAY));
    await once();
    await node.mineAt(t0 + Number(PERIOD) - 4 * Number(DAY));
    await once();
    // Due: the keeper charges A; C's charge fails (anyone may try: chargeMany records ChargeFailed); C is
    // past due; the metered cycle is billed once and the duplicate item fails.
    await node.mineAt(t0 + Number(PERIOD) + 60);
    await once();
    await send(fixed, s.deployer, "chargeMany", [c.address]);
    await send(metered, s.merchant, "chargeUsageMany", [e.address, e.address], [5_000_000n, 1n], [encodeBytes32String("inv-1"), encodeBytes32String("inv-2")]);
    await node.mineAt(Number(await node.latestTimestamp()) + 1);
    await once();
    // Grace over: C expired.
    await node.mineAt(t0 + Number(PERIOD + GRACE) + 2 * Number(DAY));
    await once();

    const delivered = receiver.delivered();
    const byType = new Map<string, { type: string; timestamp: string; data: Record<string, unknown> }[]>();
    for (const { json } of delivered.values()) byType.set(json.type, [...(byType.get(json.type) ?? []), json]);
    expect([...EVENT_TYPES].filter((t) => !byType.has(t)), "event kinds never delivered").to.deep.equal([]);
    for (const r of receiver.requests) {
      expect(receiver.verifies(r, [OLD_SECRET]), `${r.id} verifies with the old secret`).to.equal(true);
      expect(receiver.verifies(r, [NEW_SECRET]), `${r.id} verifies with the new secret`).to.equal(true);
      expect(r.signature.split(" ")).to.have.length(2);
    }
    const one = (type: string, who: string) => {
      const found = (byType.get(type) ?? []).filter((x) => x.data.subscriber === lower(who));
      expect(found, `${type} for ${who}`).to.have.length(1);
      return found[0]!.data;
    };
    const created = one("subscription.created", c.address);
    expect(created).to.include({ plan: lower(fixed.target), ref: "order-42", txHash: subscribeC.hash, maxAmount: PRICE.toString(), maxAmountDecimal: "10" });
    expect(created.token).to.deep.equal({ address: lower(s.token.target), symbol: "tUSDC", decimals: 6 });
    expect(created.links).to.deep.equal({
      checkout: `https://pay.example/checkout.html?plan=${lower(fixed.target)}`,
      portal: `https://pay.example/manage.html?plan=${lower(fixed.target)}&subscriber=${lower(c.address)}`,
    });
    const charges = (byType.get("charge.succeeded") ?? []).filter((x) => x.data.subscriber === lower(a.address));
    expect(charges.map((x) => x.data.periodIndex)).to.deep.equal([0, 1]);
    expect(charges[0]!.data).to.include({ amount: PRICE.toString(), amountDecimal: "10" });
    expect(one("subscription.cancelled", b.address)).to.include({ cancelledBy: "subscriber", by: lower(b.address) });
    expect(one("subscription.max_amount_updated", a.address)).to.include({ oldMaxAmount: PRICE.toString(), newMaxAmount: (2n * PRICE).toString(), newMaxAmountDecimal: "20" });
    const upcomingC = one("charge.upcoming", c.address);
    expect(upcomingC.prediction).to.deep.include({ willSucceed: false, reason: "AllowanceTooLow" });
    expect(upcomingC.ref).to.equal("order-42");
    expect(one("charge.upcoming", a.address).prediction).to.deep.include({ willSucceed: true });
    expect(one("charge.failed", c.address)).to.include({ reason: "AllowanceTooLow" });
    expect(one("subscription.past_due", c.address)).to.include({ dueAt: upcomingC.dueAt });
    const expired = one("subscription.expired", c.address);
    expect(expired.dueAt).to.equal(upcomingC.dueAt);
    expect(one("subscription.trial_will_end", d.address)).to.have.property("trialEndsAt");
    const billed = one("usage.billed", e.address);
    expect(billed).to.include({ amount: "5000000", amountDecimal: "5", usage: "5000000", usageRef: "inv-1" });
    expect(one("usage.failed", e.address)).to.include({ reason: "NotDue", usageRef: "inv-2" });
    const status = (byType.get("plan.status_changed") ?? []).find((x) => x.data.plan === lower(other.target))!;
    expect(status.data).to.include({ oldStatus: "Active", newStatus: "OnHold" });
    expect(status.data.links, "a plan's own event carries no subscriber link").to.equal(undefined);
    expect((byType.get("plan.payee_changed") ?? []).find((x) => x.data.plan === lower(other.target))!.data).to.include({ newPayee: lower(await s.deployer.getAddress()) });
    for (const { json } of delivered.values()) expect(json.timestamp).to.match(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    // One id per fact: no two delivered ids carry the same fact.
    checkDocs(byType);
    const facts = [...delivered.values()].map(({ json }) => `${json.type}|${String(json.data.txHash ?? "")}|${String(json.data.logIndex ?? "")}|${String(json.data.subscriber)}|${String(json.data.dueAt ?? "")}`);
    expect(new Set(facts).size).to.equal(facts.length);
  });
});

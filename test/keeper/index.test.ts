// The index, end to end on a real hardhat node: every plan kind and every plan event lands in the
// store (plans with all their terms, subscriptions with their life so far, one activity row per event
// with the chain's transaction hash, block time and log index), a reorg leaves only the canonical
// branch, a store written by an older schema is rebuilt, and the keeper still never touches the
// metered plan.
import { mkdtempSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { encodeBytes32String, id, ZeroHash } from "ethers";
import type { Contract, NonceManager, Signer } from "ethers";

import { factoryInterface, PLAN_EVENT_TOPICS } from "../../src/chain/abi.ts";
import { SCHEMA_VERSION, Store } from "../../src/index/store.ts";
import type { ActivityRow } from "../../src/index/store.ts";
import { statusAt } from "../../src/reports/status.ts";
import { accounts, at, runKeeper, useSharedNode } from "./support/chain.ts";
import type { Node, RunResult } from "./support/chain.ts";
import { createMeteredPlan, fundedWallet, PERIOD, PRICE, setUp, subscribeMetered, terms } from "./support/scenario.ts";
import type { Scenario } from "./support/scenario.ts";

const storePath = () => path.join(mkdtempSync(path.join(tmpdir(), "recur-index-")), "keeper.sqlite");
const lower = (a: unknown) => String(a).toLowerCase();
const PLAN_CREATED = factoryInterface.getEvent("PlanCreated")!.topicHash;
const CAP = 50_000_000n;
const CREDITS = 1_000_000n;

function ok(result: RunResult): RunResult {
  expect(result.code, `exit ${result.code ?? result.signal}\n${result.stdout}${result.stderr}`).to.equal(0);
  return result;
}

async function send(contract: Contract, signer: Signer, method: string, ...args: unknown[]) {
  const receipt = await (await (contract.connect(signer) as Contract).getFunction(method)(...args)).wait();
  expect(receipt.status).to.equal(1);
  return receipt as { hash: string; blockNumber: number };
}

/** A fixed plan created by the merchant through the scenario's factory. */
async function createFixedPlan(s: Scenario, overrides: Record<string, unknown> = {}): Promise<Contract> {
  const receipt = await (await (s.factory.connect(s.merchant) as Contract).getFunction("createPlan")(terms(String(s.token.target), await s.merchant.getAddress(), overrides))).wait();
  const event = receipt.logs.map((l: { topics: string[]; data: string }) => s.factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
  return at("FixedPricePlan", event.args.plan as string, s.merchant);
}

/** Every event the index should hold, as the node answers eth_getLogs: the factory's PlanCreated and
 * every plan event of `plans`, with each block's timestamp. */
async function chainEvents(node: Node, s: Scenario, plans: string[]) {
  const logs = [
    ...(await node.provider.getLogs({ address: String(s.factory.target), topics: [PLAN_CREATED], fromBlock: Number(s.factoryBlock) })),
    // Less the plan constructors' OwnershipTransferred from the zero address: PlanCreated names the owner.
    ...(await node.provider.getLogs({ address: plans, topics: [PLAN_EVENT_TOPICS], fromBlock: Number(s.factoryBlock) })).filter(
      (l) => !(l.topics[0] === OWNERSHIP_TRANSFERRED && BigInt(l.topics[1]!) === 0n),
    ),
  ].sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
  const times = new Map<number, number>();
  for (const l of logs) if (!times.has(l.blockNumber)) times.set(l.blockNumber, (await node.provider.getBlock(l.blockNumber))!.timestamp);
  return logs.map((l) => ({
    block: BigInt(l.blockNumber),
    logIndex: l.index,
    txHash: l.transactionHash,
    time: times.get(l.blockNumber)!,
    plan: l.topics[0] === PLAN_CREATED ? lower("0x" + l.topics[1]!.slice(26)) : lower(l.address),
  }));
}

const OWNERSHIP_TRANSFERRED = id("OwnershipTransferred(address,address)");
/** `SubscriptionStatus` by its index (contracts/interfaces/PlanTypes.sol). */
const STATUSES_BY_INDEX = ["None", "Trialing", "Active", "PastDue", "Paused", "Cancelled", "Expired"];
const position = (r: ActivityRow) => ({ block: r.block, logIndex: r.logIndex, txHash: r.txHash, time: r.time, plan: r.plan });

describe("the index: every plan kind and every plan event (end to end)", function () {
  this.timeout(300_000);
  let node!: Node;
  useSharedNode((started) => (node = started));

  it("holds the plans' terms, the subscriptions' lives and one activity row per event, as the chain says; the keeper never calls the metered plan", async () => {
    const file = storePath();
    const s = await setUp(node, { planCount: 0, perPlan: 0, storePath: file });
    const [, , newPayee] = accounts(node.provider, 3);
    const merchant = lower(await s.merchant.getAddress());
    const fixed = await createFixedPlan(s, { keeperFeeBps: 100n, trialPeriod: 0n });
    const metered = await createMeteredPlan(s, { freeCredits: CREDITS });
    const fixedAddress = lower(fixed.target);
    const meteredAddress = lower(metered.target);

    // Fixed plan: alice signs up with a ref and enough allowance; bob can pay his first period only;
    // carol pauses, resumes, raises her max amount and cancels; dave is blocked before subscribing.
    const REF = encodeBytes32String("invoice-42");
    const alice = await fundedWallet(node, s.token, s.deployer);
    await send(s.token, alice, "approve", fixedAddress, 12n * PRICE);
    const aliceSub = await send(fixed, alice, "subscribeWithRef", PRICE, REF);
    const bob = await fundedWallet(node, s.token, s.deployer);
    await send(s.token, bob, "approve", fixedAddress, PRICE);
    await send(fixed, bob, "subscribe", PRICE);
    const carol = await fundedWallet(node, s.token, s.deployer);
    await send(s.token, carol, "approve", fixedAddress, 12n * PRICE);
    await send(fixed, carol, "subscribe", PRICE);
    await send(fixed, carol, "pause");
    await send(fixed, carol, "resume");
    await send(fixed, carol, "setMaxAmount", 2n * PRICE);
    const carolCancel = await send(fixed, carol, "cancel");
    const dave = await fundedWallet(node, s.token, s.deployer);
    await send(fixed, s.merchant, "setBlocked", dave.address, true);
    await send(fixed, s.merchant, "setBlocked", carol.address, true);
    // Metered plan: mallory subscribes (nothing moves until her first cycle ends).
    const mallory = await subscribeMetered(node, s, metered, { maxAmount: CAP, allowance: 10n * CAP });

    // A period later: bob's charge fails (a direct chargeMany), the keeper charges alice, the owner
    // bills mallory's usage.
    await node.mineAt((await node.latestTimestamp()) + PERIOD + 1n);
    await send(fixed, s.deployer, "chargeMany", [bob.address]);
    ok(await runKeeper(["run", "--once"], s.env()));
    const USAGE_REF = encodeBytes32String("usage-7");
    const usage = await send(metered, s.merchant, "chargeUsage", mallory.address, 3n * CREDITS, USAGE_REF);
    await send(fixed, s.merchant, "setPayee", await newPayee!.getAddress());
    await send(fixed, s.merchant, "setStatus", 1);
    // The merchant hands the fixed plan over (two steps): the index follows its owner.
    await send(fixed, s.merchant, "transferOwnership", await newPayee!.getAddress());
    await send(fixed, newPayee!, "acceptOwnership");
    ok(await runKeeper(["run", "--once"], s.env()));

    const store = new Store(file);
    try {
      expect(store.getMeta("schemaVersion")).to.equal(SCHEMA_VERSION);
      // Plans: both kinds, every term.
      const plans = store.plans();
      expect(plans.map((p) => p.address)).to.deep.equal([fixedAddress, meteredAddress]);
      const [f, m] = plans as [(typeof plans)[0], (typeof plans)[0]];
      const fixedCreated = await node.provider.getBlock(Number(f.createdBlock));
      expect(f).to.deep.include({
        owner: lower(await newPayee!.getAddress()), token: lower(s.token.target), price: PRICE, period: Number(PERIOD), keeperFeeBps: 100, keeperRestricted: false,
        status: 1, billingMode: 0, payee: lower(await newPayee!.getAddress()), trial: 0, priceFeed: lower(ZeroHash.slice(0, 42)),
        maxPriceAge: 0, allowanceBufferBps: 0, perCycleCap: 0n, freeCredits: 0n, createdAt: fixedCreated!.timestamp,
      });
      expect(m).to.deep.include({ billingMode: 1, price: 0n, perCycleCap: 100_000_000n, freeCredits: CREDITS, payee: merchant, status: 0 });

      // Subscriptions.
      const subs = new Map(store.subscriptionsOf(fixedAddress).map((r) => [r.subscriber, r]));
      expect([...subs.keys()].sort()).to.deep.equal([alice, bob, carol].map((w) => lower(w.address)).sort());
      const onChain = async (plan: Contract, who: string) => (await plan.getFunction("subscriptionOf")(who)) as { startedAt: bigint; nextChargeAt: bigint; periodsPaid: bigint };
      const a = subs.get(lower(alice.address))!;
      const aliceChain = await onChain(fixed, alice.address);
      expect(a).to.deep.include({
        state: "live", ref: REF, trial: false, totalPaid: 2n * PRICE, periodsPaid: 2, startedAt: Number(aliceChain.startedAt),
        nextChargeAt: Number(aliceChain.nextChargeAt), pausedAt: 0, cancelledBy: null, endedAt: 0, blocked: false,
      });
      expect(subs.get(lower(bob.address))).to.deep.include({ state: "live", ref: ZeroHash, totalPaid: PRICE, periodsPaid: 1, lastReason: "AllowanceTooLow", blocked: false });
      const carolEnd = await node.provider.getBlock(carolCancel.blockNumber);
      expect(subs.get(lower(carol.address))).to.deep.include({
        state: "cancelled", totalPaid: PRICE, maxAmount: 2n * PRICE, pausedAt: 0, cancelledBy: lower(carol.address), endedAt: carolEnd!.timestamp, blocked: true,
      });
      const [mal] = store.subscriptionsOf(meteredAddress);
      const malloryChain = await onChain(metered, mallory.address);
      expect(mal).to.deep.include({
        subscriber: lower(mallory.address), state: "live", totalPaid: 2n * CREDITS, periodsPaid: 1, nextChargeAt: Number(malloryChain.nextChargeAt),
        startedAt: Number(malloryChain.startedAt), maxAmount: CAP,
      });

      // Activity: exactly the chain's events, in chain order, with its tx hashes, block times, log indexes.
      const rows = [...store.activity({})];
      expect(rows.map(position)).to.deep.equal(await chainEvents(node, s, [fixedAddress, meteredAddress]));
      const kinds = new Set(rows.map((r) => r.kind));
      for (const kind of [
        "plan_created", "subscribed", "charged", "charge_failed", "cancelled", "paused", "resumed", "max_amount_updated", "plan_status_changed",
        "payee_changed", "subscriber_blocked", "keeper_fee_paid", "usage_charged", "credits_granted",
      ]) expect(kinds.has(kind as ActivityRow["kind"]), kind).to.equal(true);
      const subscribed = rows.find((r) => r.kind === "subscribed" && r.subscriber === lower(alice.address))!;
      expect(subscribed).to.deep.include({ txHash: aliceSub.hash, plan: fixedAddress, ref: REF });
      expect(subscribed.data).to.deep.equal({ maxAmount: PRICE.toString(), startedAt: aliceChain.startedAt.toString(), nextChargeAt: subscribed.data!.nextChargeAt, trial: "false" });
      const aliceCharges = [...store.activity({ plans: [fixedAddress], subscriber: alice.address, kinds: ["charged"] })];
      expect(aliceCharges.map((r) => [r.periodIndex, r.amount])).to.deep.equal([[0, PRICE], [1, PRICE]]);
      const fees = [...store.activity({ plans: [fixedAddress], kinds: ["keeper_fee_paid"] })];
      expect(fees.map((r) => [r.subscriber, r.amount, r.data?.keeper])).to.deep.include([lower(alice.address), PRICE / 100n, s.keeperAddress]);
      expect(rows.find((r) => r.kind === "charge_failed")).to.deep.include({ subscriber: lower(bob.address), reason: "AllowanceTooLow" });
      expect(rows.find((r) => r.kind === "cancelled")!.data).to.deep.equal({ by: lower(carol.address), paidThrough: subs.get(lower(carol.address))!.nextChargeAt.toString() });
      expect(rows.find((r) => r.kind === "plan_status_changed")).to.deep.include({ subscriber: null, data: { oldStatus: "0", newStatus: "1" } });
      expect(rows.filter((r) => r.kind === "owner_changed").map((r) => [r.plan, r.data])).to.deep.equal([[fixedAddress, { previousOwner: merchant, newOwner: lower(await newPayee!.getAddress()) }]]);
      expect(rows.find((r) => r.kind === "payee_changed")!.data).to.deep.equal({ oldPayee: merchant, newPayee: lower(await newPayee!.getAddress()) });
      expect(rows.filter((r) => r.kind === "subscriber_blocked").map((r) => r.subscriber)).to.deep.equal([lower(dave.address), lower(carol.address)]);
      const billed = rows.find((r) => r.kind === "usage_charged")!;
      expect(billed).to.deep.include({
        txHash: usage.hash, plan: meteredAddress, subscriber: lower(mallory.address), amount: 2n * CREDITS, usage: 3n * CREDITS, fromCredits: CREDITS,
        periodIndex: 0, ref: USAGE_REF,
      });
      expect(rows.find((r) => r.kind === "credits_granted")!.data).to.deep.equal({ credits: CREDITS.toString() });

      // Filters: by plan, kind and block-time window (since inclusive, until exclusive).
      expect([...store.activity({ plans: [meteredAddress] })].every((r) => r.plan === meteredAddress)).to.equal(true);
      const t = billed.time;
      expect([...store.activity({ since: t, until: t + 1 })].map(position)).to.deep.equal(rows.filter((r) => r.time === t).map(position));
      expect([...store.activity({ until: rows[0]!.time })]).to.deep.equal([]);
      expect([...store.activity({ plans: [] })]).to.deep.equal([]);

      // The keeper's view: fixed plans only.
      expect(store.counts(Number(await node.latestTimestamp()), 0).plans).to.equal(1);
    } finally {
      store.close();
    }

    // The keeper's transactions all went to the fixed plan, never to the metered one.
    const head = await node.provider.getBlockNumber();
    const keeperTxs: string[] = [];
    for (let b = Number(s.factoryBlock); b <= head; b++) {
      for (const tx of (await node.provider.getBlock(b, true))!.prefetchedTransactions) if (lower(tx.from) === s.keeperAddress) keeperTxs.push(lower(tx.to));
    }
    expect(keeperTxs).to.not.be.empty;
    expect(keeperTxs.every((to) => to === fixedAddress)).to.equal(true);
  });

  it("a metered cycle paused across the plan's retirement: the index marks it as the chain does, and the status it derives is statusOf's", async () => {
    const file = storePath();
    const s = await setUp(node, { planCount: 0, perPlan: 0, storePath: file });
    const metered = await createMeteredPlan(s);
    const meteredAddress = lower(metered.target);
    const mallory = await subscribeMetered(node, s, metered, { maxAmount: CAP, allowance: 10n * CAP });
    const trent = await subscribeMetered(node, s, metered, { maxAmount: CAP, allowance: 10n * CAP });
    // Mallory pauses before the retirement and resumes two periods after it; trent never pauses.
    await send(metered, mallory, "pause");
    await send(metered, s.merchant, "setStatus", 2);
    await node.mineAt((await node.latestTimestamp()) + 2n * PERIOD);
    await send(metered, mallory, "resume");
    const derived = async () => {
      ok(await runKeeper(["run", "--once"], s.env()));
      const store = new Store(file);
      try {
        const now = Number(await node.latestTimestamp());
        const p = store.plan(meteredAddress)!;
        const retiredAt = store.retiredAt(meteredAddress);
        const out: Record<string, { status: string; beforeRetirement: boolean; chain: string }> = {};
        for (const [name, who] of [["mallory", mallory.address], ["trent", trent.address]] as const) {
          const row = store.subscription(meteredAddress, lower(who))!;
          const chain = STATUSES_BY_INDEX[Number(await metered.getFunction("statusOf")(who))]!;
          out[name] = { status: statusAt({ ...p, retiredAt }, row, now), beforeRetirement: row.beforeRetirement, chain };
        }
        return out;
      } finally {
        store.close();
      }
    };
    expect(await derived()).to.deep.equal({
      mallory: { status: "Active", beforeRetirement: true, chain: "Active" },
      trent: { status: "Expired", beforeRetirement: false, chain: "Expired" },
    });
    // Her cycle ends and is billed: the next one started after the retirement, so she is Expired.
    const end = BigInt((await metered.getFunction("subscriptionOf")(mallory.address)).nextChargeAt);
    await node.mineAt(end);
    await send(metered, s.merchant, "chargeUsage", mallory.address, 0n, ZeroHash);
    expect((await derived()).mallory).to.deep.equal({ status: "Expired", beforeRetirement: false, chain: "Expired" });
  });

  it("after a reorg, the activity and subscriptions follow the canonical branch", async () => {
    const file = storePath();
    const s = await setUp(node, { planCount: 1, perPlan: 1, storePath: file });
    const plan = s.plans[0]!;
    const planAddress = lower(plan.target);
    ok(await runKeeper(["run", "--once"], s.env()));
    const snapshot = await node.send("evm_snapshot", []);

    // The branch about to vanish: a subscriber with one ref, indexed.
    const ghost = await fundedWallet(node, s.token, s.deployer);
    await send(s.token, ghost, "approve", planAddress, 12n * PRICE);
    await send(plan, ghost, "subscribeWithRef", PRICE, encodeBytes32String("ghost"));
    ok(await runKeeper(["run", "--once"], s.env()));
    const before = new Store(file);
    expect(before.subscriptionsOf(planAddress).map((r) => r.subscriber)).to.include(lower(ghost.address));
    before.close();

    expect(await node.send("evm_revert", [snapshot])).to.equal(true);
    (s.deployer as NonceManager).reset();
    // The canonical branch: someone else, and a few more blocks.
    const other = await fundedWallet(node, s.token, s.deployer);
    await send(s.token, other, "approve", planAddress, 12n * PRICE);
    const otherSub = await send(plan, other, "subscribeWithRef", PRICE, encodeBytes32String("canonical"));
    for (let i = 0; i < 3; i++) await node.send("evm_mine", []);
    const run = ok(await runKeeper(["run", "--once"], s.env()));
    expect(run.lines.some((l) => l.event === "reorg")).to.equal(true);

    const store = new Store(file);
    try {
      const subs = store.subscriptionsOf(planAddress);
      expect(subs.map((r) => r.subscriber).sort()).to.deep.equal([...s.subscribers.get(planAddress)!, lower(other.address)].sort());
      expect(subs.find((r) => r.subscriber === lower(other.address))).to.deep.include({ ref: encodeBytes32String("canonical"), totalPaid: PRICE });
      const rows = [...store.activity({})];
      expect(rows.map(position)).to.deep.equal(await chainEvents(node, s, [planAddress]));
      expect(rows.some((r) => r.subscriber === lower(ghost.address))).to.equal(false);
      expect(rows.find((r) => r.kind === "subscribed" && r.subscriber === lower(other.address))?.txHash).to.equal(otherSub.hash);
    } finally {
      store.close();
    }
  });

  it("a store written by the previous schema is rebuilt from the factory's block; its journal, plan health and retries are kept", async () => {
    const file = storePath();
    const s = await setUp(node, { planCount: 1, perPlan: 2, storePath: file });
    const planAddress = lower(s.plans[0]!.target);
    // The version-1 layout (no schemaVersion, no tx hashes or block times), holding a stale index.
    const old = new DatabaseSync(file);
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE checkpoints (block INTEGER PRIMARY KEY, hash TEXT NOT NULL);
      CREATE TABLE logs (block INTEGER NOT NULL, log_index INTEGER NOT NULL, block_hash TEXT NOT NULL, address TEXT NOT NULL, topics TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (block, log_index));
      CREATE TABLE plans (address TEXT PRIMARY KEY, owner TEXT NOT NULL, token TEXT NOT NULL, price TEXT NOT NULL, period INTEGER NOT NULL, grace INTEGER NOT NULL, keeper_fee_bps INTEGER NOT NULL, keeper_restricted INTEGER NOT NULL, status INTEGER NOT NULL, created_block INTEGER NOT NULL);
      CREATE TABLE subscriptions (plan TEXT NOT NULL, subscriber TEXT NOT NULL, state TEXT NOT NULL, next_charge_at INTEGER NOT NULL, max_amount TEXT NOT NULL, periods_paid INTEGER NOT NULL, last_reason TEXT, shard_key INTEGER NOT NULL, PRIMARY KEY (plan, subscriber));
      CREATE TABLE txs (id INTEGER PRIMARY KEY AUTOINCREMENT, nonce INTEGER NOT NULL, hash TEXT NOT NULL, raw TEXT NOT NULL, plan TEXT NOT NULL, subscribers TEXT NOT NULL, status TEXT NOT NULL, max_fee TEXT NOT NULL, sent_at INTEGER NOT NULL);
      CREATE TABLE plan_health (plan TEXT PRIMARY KEY, kind TEXT NOT NULL, reason TEXT NOT NULL, failures INTEGER NOT NULL, since INTEGER NOT NULL, until INTEGER NOT NULL);
      CREATE TABLE retries (plan TEXT NOT NULL, subscriber TEXT NOT NULL, due_at INTEGER NOT NULL, attempts INTEGER NOT NULL, first_failed_at INTEGER NOT NULL, next_try_at INTEGER, reason TEXT NOT NULL, PRIMARY KEY (plan, subscriber));
      INSERT INTO meta VALUES ('logRange', '4');
      INSERT INTO checkpoints VALUES (${Number(await node.provider.getBlockNumber())}, '0x${"ab".repeat(32)}');
      INSERT INTO plans VALUES ('0x${"11".repeat(20)}', '0x${"22".repeat(20)}', '0x${"33".repeat(20)}', '1', 1, 1, 0, 0, 0, 1);
      INSERT INTO txs (nonce, hash, raw, plan, subscribers, status, max_fee, sent_at) VALUES (0, '0x${"44".repeat(32)}', '0x', '${planAddress}', '[]', 'mined', '1', 1);
      INSERT INTO plan_health VALUES ('0x${"55".repeat(20)}', 'backoff', 'BalanceTooLow', 1, 1, 2);
      INSERT INTO retries VALUES ('0x${"55".repeat(20)}', '0x${"66".repeat(20)}', 1, 1, 1, NULL, 'BalanceTooLow');
    `);
    old.close();

    const run = ok(await runKeeper(["run", "--once"], s.env()));
    expect(run.lines.some((l) => l.event === "reorg"), "the stale checkpoint was dropped, not taken for a reorg").to.equal(false);
    const store = new Store(file);
    try {
      expect(store.getMeta("schemaVersion")).to.equal(SCHEMA_VERSION);
      expect(store.plans().map((p) => p.address)).to.deep.equal([planAddress]);
      expect(store.subscriptionsOf(planAddress).map((r) => r.subscriber).sort()).to.deep.equal([...s.subscribers.get(planAddress)!].sort());
      expect([...store.activity({})].map(position)).to.deep.equal(await chainEvents(node, s, [planAddress]));
      expect([...store.logs()].every((l) => l.transactionHash.startsWith("0x") && l.blockTime > 0)).to.equal(true);
      expect(store.planHealth().has("0x" + "55".repeat(20))).to.equal(true);
      expect(store.retries().size).to.equal(1);
      const db = new DatabaseSync(file);
      expect((db.prepare("SELECT COUNT(*) AS n FROM txs").get() as { n: number }).n).to.equal(1);
      db.close();
    } finally {
      store.close();
    }
    // Opening it again keeps the rebuilt index.
    const again = new Store(file);
    expect(again.lastCheckpoint()).to.not.equal(undefined);
    again.close();
  });
});

// Hostile tokens and feeds (outside review, findings 1 and 2). The factory is permissionless, so anyone can
// create a plan on a token or a price feed built to hurt whoever calls the plan.
// 1. Views no token or feed can break: a token that answers its views with nothing, with one byte, with 31
//    bytes, with a revert, by burning all its gas or with a huge payload, and a feed that answers with
//    garbage of every kind, leave every view the keeper and the wallets rely on (chargeability,
//    chargeabilityMany, usageChargeability, isDue, amountDue, statusOf, hasAccess) answering, with the
//    reason (TransferFailed for the token, PriceStale for the feed), and within a bounded gas.
// 2. One subscriber cannot make every batch revert: a subscriber contract whose ERC-777-style sender hook
//    reverts with a huge payload or burns its gas fails alone (ChargeFailed / UsageChargeFailed, schedule
//    unchanged) at any gas limit that gives each pull its budget; a caller who leaves less gets
//    BatchOutOfGas and nothing changes; and no gas limit turns an honest item into a recorded failure.
import { expect } from "chai";
import { encodeBytes32String, Wallet } from "ethers";
import { network } from "hardhat";

import {
  ChargeReason,
  createMeteredPlan,
  createPlan,
  deployFactory,
  fixedTerms,
  meteredTerms,
} from "../scripts/lib/plans.js";
import type { FixedPricePlan, HookedSubscriber, HostileToken, MeteredPlan, TestUSDC } from "../typechain-types/index.js";
import {
  actors,
  balances,
  fund,
  FUNDS,
  planEvents,
  PRICE,
  revertName,
  stored,
  subscribe,
  UNDER_COVERAGE,
} from "./helpers/stack.js";

// Gas is estimated as an Ethereum node estimates it (the smallest limit at which the transaction succeeds),
// not with Hardhat's stricter default that refuses any estimate once an inner call runs out of gas: the
// point here is that a hostile token's inner call does, and the batch still succeeds.
const { ethers, networkHelpers } = await network.create({ override: { gasEstimationMode: "topLevelSuccess" } });
const { time } = networkHelpers;

/** TokenCalls' budgets (contracts/libraries/TokenCalls.sol). */
const VIEW_GAS = 50_000;
const FEED_GAS = 100_000;
const PULL_GAS = 200_000;
const PULL_GAS_NEEDED = PULL_GAS + Math.floor(PULL_GAS / 63) + 3_000;

/** HostileToken.Behaviour */
const Token = { Normal: 0, Empty: 1, OneByte: 2, ShortWord: 3, Revert: 4, BurnGas: 5, Huge: 6 } as const;
/** HostileFeed.Behaviour */
const Feed = { Normal: 0, Raw: 1, Empty: 2, Short: 3, Revert: 4, BurnGas: 5, Huge: 6 } as const;
/** HookedSubscriber.Hook */
const Hook = { Pass: 0, RevertHuge: 1, BurnGas: 2 } as const;

/** Metered terms: a cap of 100.000000 per cycle, 5.000000 of free credits; subscribers' max amount; a usage
 * above the credits, of which USAGE - CREDITS is pulled. */
const CAP = 100_000_000n;
const CREDITS = 5_000_000n;
const MAX = 50_000_000n;
const USAGE = 20_000_000n;
const REF = encodeBytes32String("inv-2026-11");

/** A USD-priced plan: $10.00 (8 decimals) at a feed answering $1.00 (8 decimals) is 10.000000 tokens. */
const USD_PRICE = 1_000_000_000n;
const FEED_ANSWER = 100_000_000n;
const USD_AMOUNT = 10_000_000n;
const MAX_AGE = 3_600n;

const TF = BigInt(ChargeReason.TransferFailed);
const STALE = BigInt(ChargeReason.PriceStale);

// ------------------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------------------

/** A fixed plan on a HostileToken (behaving normally for now): alice and bob subscribed and due at `due`,
 * carol subscribed a day before it (not due), stranger never subscribed. */
async function fixedHostileFixture() {
  const who = await actors(ethers);
  const hostile = (await ethers.deployContract("HostileToken")) as unknown as HostileToken;
  const tokenAddress = await hostile.getAddress();
  const token = await ethers.getContractAt("TestUSDC", tokenAddress);
  const factory = await deployFactory(ethers);
  const { plan } = await createPlan(ethers, factory, who.merchant, fixedTerms(tokenAddress, who.payee.address));
  const planAddress = await plan.getAddress();
  for (const account of [who.alice, who.bob, who.carol]) await fund(token, account, planAddress);
  await subscribe(plan, who.alice);
  const due = (await subscribe(plan, who.bob)).nextChargeAt;
  await time.increaseTo(due - 86_400n);
  await subscribe(plan, who.carol);
  await time.increaseTo(due);
  const subscribers = [who.alice.address, who.bob.address, who.carol.address, who.stranger.address];
  return { ...who, hostile, token, tokenAddress, plan, planAddress, due, subscribers };
}

/** A metered plan on a HostileToken (normal for now): alice and bob subscribed with MAX and their first
 * cycle over (billable), carol subscribed a day before (cycle running), stranger never subscribed. */
async function meteredHostileFixture() {
  const who = await actors(ethers);
  const hostile = (await ethers.deployContract("HostileToken")) as unknown as HostileToken;
  const tokenAddress = await hostile.getAddress();
  const token = await ethers.getContractAt("TestUSDC", tokenAddress);
  const factory = await deployFactory(ethers);
  const { plan } = await createMeteredPlan(
    ethers,
    factory,
    who.merchant,
    meteredTerms(tokenAddress, who.payee.address, { perCycleCap: CAP, freeCredits: CREDITS }),
  );
  const planAddress = await plan.getAddress();
  for (const account of [who.alice, who.bob, who.carol]) await fund(token, account, planAddress);
  await (await plan.connect(who.alice).subscribe(MAX)).wait();
  await (await plan.connect(who.bob).subscribe(MAX)).wait();
  const due = (await plan.subscriptionOf(who.bob.address)).nextChargeAt;
  await time.increaseTo(due - 86_400n);
  await (await plan.connect(who.carol).subscribe(MAX)).wait();
  await time.increaseTo(due);
  const subscribers = [who.alice.address, who.bob.address, who.carol.address, who.stranger.address];
  return { ...who, hostile, token, tokenAddress, plan, planAddress, due, subscribers };
}

/** A USD-priced fixed plan on TestUSDC with a HostileFeed (sound for now): subscribers as in
 * `fixedHostileFixture`. */
async function usdHostileFeedFixture() {
  const who = await actors(ethers);
  const token = (await ethers.deployContract("TestUSDC")) as unknown as TestUSDC;
  const tokenAddress = await token.getAddress();
  const feed = await ethers.deployContract("HostileFeed", [8, FEED_ANSWER]);
  const factory = await deployFactory(ethers);
  const { plan } = await createPlan(
    ethers,
    factory,
    who.merchant,
    fixedTerms(tokenAddress, who.payee.address, { price: USD_PRICE, priceFeed: await feed.getAddress(), maxPriceAge: MAX_AGE }),
  );
  const planAddress = await plan.getAddress();
  for (const account of [who.alice, who.bob, who.carol]) await fund(token, account, planAddress);
  await subscribe(plan, who.alice, USD_AMOUNT);
  const due = (await subscribe(plan, who.bob, USD_AMOUNT)).nextChargeAt;
  await time.increaseTo(due - 86_400n);
  await subscribe(plan, who.carol, USD_AMOUNT);
  await time.increaseTo(due);
  const subscribers = [who.alice.address, who.bob.address, who.carol.address, who.stranger.address];
  return { ...who, token, feed, plan, planAddress, due, subscribers };
}

/** A USD-priced fixed plan on a HostileToken with a HostileFeed (both sound for now), with 50 subscribers
 * (fresh wallets), all due. */
async function fiftySubscribersFixture() {
  const who = await actors(ethers);
  const hostile = (await ethers.deployContract("HostileToken")) as unknown as HostileToken;
  const tokenAddress = await hostile.getAddress();
  const token = await ethers.getContractAt("TestUSDC", tokenAddress);
  const feed = await ethers.deployContract("HostileFeed", [8, FEED_ANSWER]);
  const factory = await deployFactory(ethers);
  const { plan } = await createPlan(
    ethers,
    factory,
    who.merchant,
    fixedTerms(tokenAddress, who.payee.address, { price: USD_PRICE, priceFeed: await feed.getAddress(), maxPriceAge: MAX_AGE }),
  );
  const planAddress = await plan.getAddress();
  const subscribers: string[] = [];
  for (let i = 0; i < 50; i++) {
    const wallet = Wallet.createRandom(ethers.provider);
    await networkHelpers.setBalance(wallet.address, 10n ** 18n);
    await token.mint(wallet.address, FUNDS);
    await (await token.connect(wallet).approve(planAddress, FUNDS)).wait();
    await (await plan.connect(wallet).subscribe(USD_AMOUNT)).wait();
    subscribers.push(wallet.address);
  }
  await time.increaseTo((await plan.subscriptionOf(subscribers[49]!)).nextChargeAt);
  return { ...who, hostile, token, feed, plan, planAddress, subscribers };
}

/** A HookedSubscriber holding FUNDS of `token`, approved to `planAddress`, its hook registered (passing). */
async function hookedSubscriber(token: TestUSDC, planAddress: string): Promise<HookedSubscriber> {
  const hooked = (await ethers.deployContract("HookedSubscriber")) as unknown as HookedSubscriber;
  const address = await hooked.getAddress();
  await token.mint(address, FUNDS);
  await hooked.approve(await token.getAddress(), planAddress, FUNDS);
  await hooked.registerHook(await token.getAddress(), true);
  return hooked;
}

/**
 * A plan (fixed or metered) on a SenderHookToken; in this order alice (EOA), the attacker (a
 * HookedSubscriber), honest (a HookedSubscriber whose hook lets every transfer through) and bob (EOA) are
 * funded, approved and subscribed, the attacker and honest with their hooks registered; `due` is when all
 * four are due (bob's time). The attacker's hook passes until a test arms it.
 */
async function hookStack(mode: "fixed" | "metered") {
  const who = await actors(ethers);
  const tokenAddress = await (await ethers.deployContract("SenderHookToken")).getAddress();
  const token = await ethers.getContractAt("TestUSDC", tokenAddress);
  const factory = await deployFactory(ethers);
  const plan =
    mode === "fixed"
      ? (await createPlan(ethers, factory, who.merchant, fixedTerms(tokenAddress, who.payee.address))).plan
      : (
          await createMeteredPlan(
            ethers,
            factory,
            who.merchant,
            meteredTerms(tokenAddress, who.payee.address, { perCycleCap: CAP, freeCredits: CREDITS }),
          )
        ).plan;
  const planAddress = await plan.getAddress();
  const maxAmount = mode === "fixed" ? PRICE : MAX;
  await fund(token, who.alice, planAddress);
  await fund(token, who.bob, planAddress);
  const attacker = await hookedSubscriber(token, planAddress);
  const honest = await hookedSubscriber(token, planAddress);
  await (await plan.connect(who.alice).subscribe(maxAmount)).wait();
  await (await attacker.subscribe(planAddress, maxAmount)).wait();
  await (await honest.subscribe(planAddress, maxAmount)).wait();
  await (await plan.connect(who.bob).subscribe(maxAmount)).wait();
  const attackerAddress = await attacker.getAddress();
  const honestAddress = await honest.getAddress();
  const due = (await plan.subscriptionOf(who.bob.address)).nextChargeAt;
  const list = [who.alice.address, attackerAddress, honestAddress, who.bob.address];
  return { ...who, token, tokenAddress, plan, planAddress, attacker, attackerAddress, honestAddress, due, list };
}

const fixedHookFixture = async () => {
  const stack = await hookStack("fixed");
  return { ...stack, plan: stack.plan as FixedPricePlan };
};
const meteredHookFixture = async () => {
  const stack = await hookStack("metered");
  return { ...stack, plan: stack.plan as MeteredPlan };
};
/** The fixed stack with the attacker's hook reverting with a huge payload, everyone due. */
const fixedArmedFixture = async () => {
  const stack = await fixedHookFixture();
  await stack.attacker.setHook(Hook.RevertHuge);
  await time.increaseTo(stack.due);
  return stack;
};
/** The metered stack with the attacker's hook reverting with a huge payload, every first cycle over. */
const meteredArmedFixture = async () => {
  const stack = await meteredHookFixture();
  await stack.attacker.setHook(Hook.RevertHuge);
  await time.increaseTo(stack.due);
  return stack;
};

// ------------------------------------------------------------------------------------------------------
// Readers
// ------------------------------------------------------------------------------------------------------

/** Every view of a fixed plan the keeper or a wallet relies on, for each of `subscribers`, as plain values
 * (each call must answer: a revert fails the test here). */
async function fixedViews(plan: FixedPricePlan, subscribers: string[]) {
  const each = <T>(f: (s: string) => Promise<T>) => Promise.all(subscribers.map(f));
  return {
    chargeability: await each(async (s) => [...(await plan.chargeability(s))]),
    chargeabilityMany: [...(await plan.chargeabilityMany(subscribers))],
    isDue: await each((s) => plan.isDue(s)),
    amountDue: await each((s) => plan.amountDue(s)),
    statusOf: await each((s) => plan.statusOf(s)),
    hasAccess: await each((s) => plan.hasAccess(s)),
  };
}

/** The same for a metered plan, with `usageChargeability` for a bill of USAGE. */
async function meteredViews(plan: MeteredPlan, subscribers: string[]) {
  const each = <T>(f: (s: string) => Promise<T>) => Promise.all(subscribers.map(f));
  return {
    usageChargeability: await each(async (s) => [...(await plan.usageChargeability(s, USAGE))]),
    chargeability: await each(async (s) => [...(await plan.chargeability(s))]),
    chargeabilityMany: [...(await plan.chargeabilityMany(subscribers))],
    isDue: await each((s) => plan.isDue(s)),
    amountDue: await each((s) => plan.amountDue(s)),
    statusOf: await each((s) => plan.statusOf(s)),
    hasAccess: await each((s) => plan.hasAccess(s)),
  };
}

/** A failed call's custom error (name and arguments) decoded through `iface`; "OutOfGas" for no data. */
function decodedRevert(
  iface: { parseError(data: string): { name: string; args: ArrayLike<unknown> } | null },
  error: unknown,
): { name: string; args: unknown[] } {
  const found: string[] = [];
  const visit = (value: unknown, depth: number) => {
    if (depth > 4 || value === null || typeof value !== "object") return;
    for (const key of ["data", "error", "info", "cause"]) {
      const inner = (value as Record<string, unknown>)[key];
      if (typeof inner === "string" && inner.startsWith("0x")) found.push(inner);
      else visit(inner, depth + 1);
    }
  };
  visit(error, 0);
  for (const data of found) {
    if (data === "0x") return { name: "OutOfGas", args: [] };
    try {
      const parsed = iface.parseError(data);
      if (parsed !== null) return { name: parsed.name, args: Array.from(parsed.args) };
    } catch {
      // not this one
    }
  }
  return { name: revertName(iface, error), args: [] };
}

// ------------------------------------------------------------------------------------------------------
// Finding 1
// ------------------------------------------------------------------------------------------------------

/** Token behaviours that must read as a failed view: [label, behaviour, huge payload length]. */
const BROKEN_VIEWS: [string, number, number][] = [
  ["answers with no data", Token.Empty, 0],
  ["answers with one byte", Token.OneByte, 0],
  ["answers with 31 bytes", Token.ShortWord, 0],
  ["reverts", Token.Revert, 0],
  ["burns all the gas it is given", Token.BurnGas, 0],
  ["answers with 1 MB (more memory than its budget pays for)", Token.Huge, 1_000_000],
];

describe("views no token can break (finding 1)", () => {
  describe("a fixed plan's views answer TransferFailed when the token's allowance or balanceOf misbehaves", () => {
    for (const [label, behaviour, huge] of BROKEN_VIEWS) {
      it(`a token that ${label}: chargeability and chargeabilityMany answer TransferFailed for every subscriber, due or not; isDue, amountDue, statusOf and hasAccess answer as with an honest token`, async () => {
        const { plan, hostile, subscribers } = await networkHelpers.loadFixture(fixedHostileFixture);
        const honest = await fixedViews(plan, subscribers);
        // The honest baseline: alice and bob due and funded, carol funded but not due, stranger unknown.
        expect(honest.chargeabilityMany).to.deep.equal([0n, 0n, BigInt(ChargeReason.NotDue), BigInt(ChargeReason.NotSubscribed)]);
        const expected = {
          ...honest,
          chargeability: [[false, TF, PRICE], [false, TF, PRICE], [false, TF, PRICE], honest.chargeability[3]],
          chargeabilityMany: [TF, TF, TF, BigInt(ChargeReason.NotSubscribed)],
        };
        if (huge !== 0) await hostile.setHugeBytes(huge);
        await hostile.setBehaviours(behaviour, Token.Normal, Token.Normal);
        expect(await fixedViews(plan, subscribers), "allowance misbehaves").to.deep.equal(expected);
        await hostile.setBehaviours(Token.Normal, behaviour, Token.Normal);
        expect(await fixedViews(plan, subscribers), "balanceOf misbehaves").to.deep.equal(expected);
      });
    }

    it("a token that answers with 64 KB (its budget pays for it): the plan reads the first word only and every view answers as with an honest token", async () => {
      const { plan, hostile, subscribers } = await networkHelpers.loadFixture(fixedHostileFixture);
      const honest = await fixedViews(plan, subscribers);
      await hostile.setHugeBytes(65_536);
      await hostile.setBehaviours(Token.Huge, Token.Huge, Token.Normal);
      expect(await fixedViews(plan, subscribers)).to.deep.equal(honest);
    });
  });

  describe("a metered plan's views answer TransferFailed when the token's allowance or balanceOf misbehaves", () => {
    for (const [label, behaviour, huge] of BROKEN_VIEWS) {
      it(`a token that ${label}: usageChargeability answers TransferFailed for a billable bill; chargeability, chargeabilityMany, isDue, amountDue, statusOf and hasAccess answer as with an honest token`, async () => {
        const { plan, hostile, subscribers } = await networkHelpers.loadFixture(meteredHostileFixture);
        const honest = await meteredViews(plan, subscribers);
        expect(honest.usageChargeability[0]).to.deep.equal([true, 0n, CREDITS, USAGE - CREDITS]);
        expect(honest.usageChargeability[2]).to.deep.equal([false, BigInt(ChargeReason.NotDue), CREDITS, USAGE - CREDITS]);
        const expected = {
          ...honest,
          usageChargeability: [
            [false, TF, CREDITS, USAGE - CREDITS],
            [false, TF, CREDITS, USAGE - CREDITS],
            honest.usageChargeability[2],
            honest.usageChargeability[3],
          ],
        };
        if (huge !== 0) await hostile.setHugeBytes(huge);
        await hostile.setBehaviours(behaviour, Token.Normal, Token.Normal);
        expect(await meteredViews(plan, subscribers), "allowance misbehaves").to.deep.equal(expected);
        await hostile.setBehaviours(Token.Normal, behaviour, Token.Normal);
        expect(await meteredViews(plan, subscribers), "balanceOf misbehaves").to.deep.equal(expected);
      });
    }
  });

  describe("a USD-priced plan's views answer PriceStale when the feed misbehaves", () => {
    /** [label, how to break the feed once the fixture's time is `now`]. */
    const BROKEN_FEEDS: [string, (feed: Awaited<ReturnType<typeof usdHostileFeedFixture>>["feed"], now: bigint) => Promise<unknown>][] = [
      ["answers with no data", (feed) => feed.setBehaviour(Feed.Empty)],
      ["answers with one byte", async (feed) => { await feed.setShortBytes(1); await feed.setBehaviour(Feed.Short); }],
      ["answers with four words instead of five", async (feed) => { await feed.setShortBytes(128); await feed.setBehaviour(Feed.Short); }],
      ["answers with 159 bytes", async (feed) => { await feed.setShortBytes(159); await feed.setBehaviour(Feed.Short); }],
      ["reverts", (feed) => feed.setBehaviour(Feed.Revert)],
      ["burns all the gas it is given", (feed) => feed.setBehaviour(Feed.BurnGas)],
      ["answers with 1 MB (more memory than its budget pays for)", (feed) => feed.setBehaviour(Feed.Huge)],
      ["answers a negative price", (feed, now) => feed.setRaw(1n, 2n ** 256n - FEED_ANSWER, now, now, 1n)],
      ["answers a zero price", (feed, now) => feed.setRaw(1n, 0n, now, now, 1n)],
      ["answers an update time in the future", (feed, now) => feed.setRaw(1n, FEED_ANSWER, now, now + 3_600n, 1n)],
      ["answers an update time of 0", (feed, now) => feed.setRaw(1n, FEED_ANSWER, now, 0n, 1n)],
      ["answers an update time of 2^256 - 1", (feed, now) => feed.setRaw(1n, FEED_ANSWER, now, 2n ** 256n - 1n, 1n)],
    ];

    for (const [label, breakFeed] of BROKEN_FEEDS) {
      it(`a feed that ${label}: chargeability and chargeabilityMany answer PriceStale, isDue false, amountDue 0; statusOf and hasAccess as with a sound feed`, async () => {
        const { plan, feed, subscribers } = await networkHelpers.loadFixture(usdHostileFeedFixture);
        const sound = await fixedViews(plan, subscribers);
        expect(sound.chargeabilityMany).to.deep.equal([0n, 0n, BigInt(ChargeReason.NotDue), BigInt(ChargeReason.NotSubscribed)]);
        expect(sound.amountDue).to.deep.equal([USD_AMOUNT, USD_AMOUNT, USD_AMOUNT, 0n]);
        await breakFeed(feed, BigInt(await time.latest()));
        expect(await fixedViews(plan, subscribers)).to.deep.equal({
          ...sound,
          chargeability: [[false, STALE, 0n], [false, STALE, 0n], [false, STALE, 0n], [false, BigInt(ChargeReason.NotSubscribed), 0n]],
          chargeabilityMany: [STALE, STALE, STALE, BigInt(ChargeReason.NotSubscribed)],
          isDue: [false, false, false, false],
          amountDue: [0n, 0n, 0n, 0n],
        });
      });
    }
  });

  describe("a USD-priced plan never decodes the feed's round ids", () => {
    const WIDE_ROUNDS: [string, bigint, bigint][] = [
      ["a roundId", 2n ** 80n + 1n, 1n],
      ["an answeredInRound", 1n, 2n ** 255n],
    ];
    for (const [label, roundId, answeredInRound] of WIDE_ROUNDS) {
      it(`a feed that answers ${label} with bits above uint80 set (ABI decoding as uint80 fails) but a sound price: every view answers, with that price, as with a sound feed`, async () => {
        const { plan, feed, subscribers } = await networkHelpers.loadFixture(usdHostileFeedFixture);
        const sound = await fixedViews(plan, subscribers);
        const now = BigInt(await time.latest());
        await feed.setRaw(roundId, FEED_ANSWER, now, now, answeredInRound);
        expect(await fixedViews(plan, subscribers)).to.deep.equal(sound);
      });
    }
  });

  describe("a token or feed that burns all its gas costs a view a bounded amount of gas", () => {
    it("chargeabilityMany over 50 subscribers answers TransferFailed for each within an eth_call gas limit of 3.5M when the token's allowance or balanceOf burns all its gas", async () => {
      const { plan, hostile, subscribers } = await networkHelpers.loadFixture(fiftySubscribersFixture);
      expect([...(await plan.chargeabilityMany(subscribers))]).to.deep.equal(subscribers.map(() => 0n));
      // Each subscriber costs at most one read that burns VIEW_GAS (50,000) and one honest read.
      const gasLimit = 3_500_000;
      for (const behaviours of [[Token.BurnGas, Token.Normal], [Token.Normal, Token.BurnGas]] as const) {
        await hostile.setBehaviours(behaviours[0], behaviours[1], Token.Normal);
        expect([...(await plan.chargeabilityMany.staticCall(subscribers, { gasLimit }))]).to.deep.equal(subscribers.map(() => TF));
        const estimate = await plan.chargeabilityMany.estimateGas(subscribers);
        expect(estimate).to.be.lessThan(BigInt(gasLimit));
      }
      // One subscriber: one burnt budget, whatever gas the caller offers.
      expect(await plan.chargeability.estimateGas(subscribers[0]!)).to.be.lessThan(BigInt(VIEW_GAS + 60_000));
    });

    it("chargeabilityMany over 50 subscribers answers PriceStale for each within an eth_call gas limit of 1M when the feed burns all its gas (the feed is read once); isDue and amountDue within 300,000", async () => {
      const { plan, feed, subscribers } = await networkHelpers.loadFixture(fiftySubscribersFixture);
      await feed.setBehaviour(Feed.BurnGas);
      const gasLimit = 1_000_000;
      expect([...(await plan.chargeabilityMany.staticCall(subscribers, { gasLimit }))]).to.deep.equal(subscribers.map(() => STALE));
      expect(await plan.chargeabilityMany.estimateGas(subscribers)).to.be.lessThan(BigInt(gasLimit));
      const one = subscribers[0]!;
      expect(await plan.isDue.staticCall(one, { gasLimit: 300_000 })).to.equal(false);
      expect(await plan.amountDue.staticCall(one, { gasLimit: 300_000 })).to.equal(0n);
      expect(await plan.amountDue.estimateGas(one)).to.be.lessThan(BigInt(FEED_GAS + 60_000));
    });
  });
});

// ------------------------------------------------------------------------------------------------------
// Finding 2
// ------------------------------------------------------------------------------------------------------

describe("one subscriber cannot make a batch revert (finding 2)", () => {
  /**
   * [label, hook]: a hook that makes the token itself run out of gas (it copies the huge revert payload
   * before bubbling it), and one that burns only its own gas (the token keeps 1/64 of its gas and fails
   * cleanly).
   */
  const ATTACKS: [string, number][] = [
    ["reverts with a payload sized to exhaust the token that bubbles it", Hook.RevertHuge],
    ["burns all its gas", Hook.BurnGas],
  ];

  describe("chargeMany (fixed plan)", () => {
    for (const [label, hook] of ATTACKS) {
      for (const limit of ["estimateGas", "10M"] as const) {
        it(`with the attacker's hook that ${label}, one chargeMany at ${limit} gas charges every honest subscriber and records ChargeFailed(attacker, TransferFailed); the attacker's schedule and balance are unchanged`, async () => {
          const { plan, planAddress, token, attacker, attackerAddress, honestAddress, alice, bob, payee, due, list } =
            await networkHelpers.loadFixture(fixedHookFixture);
          await attacker.setHook(hook);
          await time.increaseTo(due);
          const before = await stored(plan, attackerAddress);
          const money = await balances(token, [alice, bob, payee, { address: attackerAddress }, { address: honestAddress }]);
          const gasLimit = limit === "10M" ? 10_000_000n : await plan.chargeMany.estimateGas(list);
          const receipt = (await (await plan.chargeMany(list, { gasLimit })).wait())!;
          const events = planEvents(plan, planAddress, receipt);
          expect(events.map((e) => [e.name, e.args[0]])).to.deep.equal([
            ["Charged", alice.address],
            ["ChargeFailed", attackerAddress],
            ["Charged", honestAddress],
            ["Charged", bob.address],
          ]);
          expect(events[1]!.args).to.deep.equal([attackerAddress, TF]);
          expect(await balances(token, [alice, bob, payee, { address: attackerAddress }, { address: honestAddress }])).to.deep.equal([
            money[0]! - PRICE,
            money[1]! - PRICE,
            money[2]! + 3n * PRICE,
            money[3]!,
            money[4]! - PRICE,
          ]);
          expect(await stored(plan, attackerAddress)).to.deep.equal(before);
          expect(await plan.isDue(attackerAddress)).to.equal(true);
        });
      }
    }
  });

  describe("chargeUsageMany (metered plan, billed by the owner after the cycle ends)", () => {
    for (const [label, hook] of ATTACKS) {
      for (const limit of ["estimateGas", "10M"] as const) {
        it(`with the attacker's hook that ${label}, one chargeUsageMany at ${limit} gas bills every honest subscriber and records UsageChargeFailed(attacker, TransferFailed); the attacker's schedule, credits and balance are unchanged`, async () => {
          const { plan, planAddress, token, merchant, attacker, attackerAddress, honestAddress, alice, bob, payee, due, list } =
            await networkHelpers.loadFixture(meteredHookFixture);
          await attacker.setHook(hook);
          await time.increaseTo(due);
          const before = await stored(plan, attackerAddress);
          const money = await balances(token, [alice, bob, payee, { address: attackerAddress }, { address: honestAddress }]);
          const usages = list.map(() => USAGE);
          const refs = list.map(() => REF);
          const owner = plan.connect(merchant);
          const gasLimit = limit === "10M" ? 10_000_000n : await owner.chargeUsageMany.estimateGas(list, usages, refs);
          const receipt = (await (await owner.chargeUsageMany(list, usages, refs, { gasLimit })).wait())!;
          const events = planEvents(plan, planAddress, receipt);
          expect(events.map((e) => [e.name, e.args[0]])).to.deep.equal([
            ["UsageCharged", alice.address],
            ["UsageChargeFailed", attackerAddress],
            ["UsageCharged", honestAddress],
            ["UsageCharged", bob.address],
          ]);
          expect(events[1]!.args).to.deep.equal([attackerAddress, TF, USAGE, REF]);
          const pulled = USAGE - CREDITS;
          expect(await balances(token, [alice, bob, payee, { address: attackerAddress }, { address: honestAddress }])).to.deep.equal([
            money[0]! - pulled,
            money[1]! - pulled,
            money[2]! + 3n * pulled,
            money[3]!,
            money[4]! - pulled,
          ]);
          expect(await stored(plan, attackerAddress)).to.deep.equal(before);
          expect(await plan.creditsOf(attackerAddress)).to.equal(CREDITS);
          expect((await plan.usageChargeability(attackerAddress, USAGE))[1]).to.equal(0n);
        });
      }
    }
  });

  describe("a caller who leaves less than PULL_GAS_NEEDED before a pull", () => {
    // 150,000 gas covers the batch's own work and an ordinary transferFrom (about 40,000, TOOLCHAIN.md) but
    // not the pull's budget: the token would have succeeded, yet the batch must not let it run short.
    const SHORT = 150_000;

    it("chargeMany reverts BatchOutOfGas(subscriber) and changes nothing, although the same batch uses less gas than that when given enough", async () => {
      const { plan, token, alice, payee, due } = await networkHelpers.loadFixture(fixedHookFixture);
      expect(SHORT).to.be.lessThan(PULL_GAS_NEEDED);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(plan.chargeMany([alice.address], { gasLimit: SHORT }))
        .to.be.revertedWithCustomError(plan, "BatchOutOfGas")
        .withArgs(alice.address);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
      expect(await plan.isDue(alice.address)).to.equal(true);
      const receipt = (await (await plan.chargeMany([alice.address], { gasLimit: 1_000_000 })).wait())!;
      expect(receipt.gasUsed).to.be.lessThan(BigInt(SHORT));
      expect(planEvents(plan, await plan.getAddress(), receipt).map((e) => e.name)).to.deep.equal(["Charged"]);
    });

    it("chargeUsageMany reverts BatchOutOfGas(subscriber) and changes nothing (schedule, credits, balances)", async () => {
      const { plan, token, merchant, alice, payee, due } = await networkHelpers.loadFixture(meteredHookFixture);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(plan.connect(merchant).chargeUsageMany([alice.address], [USAGE], [REF], { gasLimit: SHORT }))
        .to.be.revertedWithCustomError(plan, "BatchOutOfGas")
        .withArgs(alice.address);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
      const receipt = (await (await plan.connect(merchant).chargeUsageMany([alice.address], [USAGE], [REF], { gasLimit: 1_000_000 })).wait())!;
      expect(receipt.gasUsed).to.be.lessThan(BigInt(SHORT));
    });
  });

  describe("no gas limit turns an honest item into a recorded failure", () => {
    /**
     * Sends `send(state, gasLimit)` at every gas limit from `high` down to `low` (step `step`), from the
     * fixture's state each time, and checks each outcome: the batch went through with exactly `expected`
     * (every honest subscriber charged, the attacker recorded), or it reverted with BatchOutOfGas /
     * OutOfGas. Returns how many went through, how many reverted with what, which subscribers the
     * BatchOutOfGas reverts named, and the distinct gas figures the honest pulls began with.
     */
    async function scan<F extends { plan: FixedPricePlan | MeteredPlan; planAddress: string }>(
      fixture: () => Promise<F>,
      send: (state: F, gasLimit: number) => Promise<{ wait(): Promise<unknown> }>,
      range: { high: number; low: number; step: number },
      expected: [string, string][],
      honest: string[],
    ) {
      let succeeded = 0;
      const pullGas = new Set<string>();
      const named = new Set<string>();
      const reverts = new Map<string, number>();
      for (let gasLimit = range.high; gasLimit >= range.low; gasLimit -= range.step) {
        const state = await networkHelpers.loadFixture(fixture);
        let receipt;
        try {
          receipt = (await (await send(state, gasLimit)).wait()) as Parameters<typeof planEvents>[2];
        } catch (e) {
          const error = decodedRevert(state.plan.interface, e);
          reverts.set(error.name, (reverts.get(error.name) ?? 0) + 1);
          expect(["BatchOutOfGas", "OutOfGas"], `revert at gasLimit ${gasLimit}`).to.include(error.name);
          if (error.name === "BatchOutOfGas") named.add(String(error.args[0]));
          continue;
        }
        succeeded += 1;
        const events = planEvents(state.plan, state.planAddress, receipt);
        expect(events.map((e) => [e.name, e.args[0]]), `events at gasLimit ${gasLimit}`).to.deep.equal(expected);
        const hookToken = await ethers.getContractAt("SenderHookToken", await state.plan.token());
        pullGas.add(JSON.stringify(await Promise.all(honest.map(async (who) => String(await hookToken.gasAtPull(who))))));
      }
      return { succeeded, named, reverts, pullGas };
    }

    it("chargeMany over [alice, attacker, honest contract, bob]: every gas limit either charges the three honest subscribers (each pull starting with its whole budget) and records the attacker, or reverts the whole batch BatchOutOfGas naming the item it could not give a budget to", async function () {
      if (UNDER_COVERAGE) this.skip();
      const { plan, alice, bob, attackerAddress, honestAddress, list } = await networkHelpers.loadFixture(fixedArmedFixture);
      const enough = Number(await plan.chargeMany.estimateGas(list));
      const expected: [string, string][] = [
        ["Charged", alice.address],
        ["ChargeFailed", attackerAddress],
        ["Charged", honestAddress],
        ["Charged", bob.address],
      ];
      // From 50,000 above the estimate down past the first pull's budget (four budgets' worth, but not below the
      // transaction's intrinsic gas), step 1,003.
      const result = await scan(
        fixedArmedFixture,
        (state, gasLimit) => state.plan.chargeMany(list, { gasLimit }),
        { high: enough + 50_000, low: Math.max(enough - 4 * PULL_GAS_NEEDED, 100_000), step: 1_003 },
        expected,
        [alice.address, honestAddress, bob.address],
      );
      expect(result.succeeded).to.be.greaterThan(0);
      expect(result.reverts.get("BatchOutOfGas") ?? 0, JSON.stringify([...result.reverts])).to.be.greaterThan(0);
      // Each short batch named the item it could not give a full budget to: every one of the four in turn.
      expect([...result.named].sort()).to.deep.equal([...list].sort());
      // Every honest pull began with the same gas at every gas limit that went through: its budget.
      expect(result.pullGas.size, [...result.pullGas].join(" ")).to.equal(1);
      for (const gas of JSON.parse([...result.pullGas][0]!) as string[]) {
        expect(Number(gas)).to.be.within(PULL_GAS - 1_000, PULL_GAS);
      }
      await networkHelpers.loadFixture(fixedArmedFixture);
      for (const who of list) expect(await plan.isDue(who)).to.equal(true);
    });

    it("chargeUsageMany over [alice, attacker, honest contract, bob]: every gas limit either bills the three honest subscribers (each pull starting with its whole budget) and records the attacker, or reverts the whole batch BatchOutOfGas naming the item it could not give a budget to", async function () {
      if (UNDER_COVERAGE) this.skip();
      const { plan, merchant, alice, bob, attackerAddress, honestAddress, list } = await networkHelpers.loadFixture(meteredArmedFixture);
      const usages = list.map(() => USAGE);
      const refs = list.map(() => REF);
      const enough = Number(await plan.connect(merchant).chargeUsageMany.estimateGas(list, usages, refs));
      const expected: [string, string][] = [
        ["UsageCharged", alice.address],
        ["UsageChargeFailed", attackerAddress],
        ["UsageCharged", honestAddress],
        ["UsageCharged", bob.address],
      ];
      const result = await scan(
        meteredArmedFixture,
        (state, gasLimit) => state.plan.connect(merchant).chargeUsageMany(list, usages, refs, { gasLimit }),
        { high: enough + 50_000, low: Math.max(enough - 4 * PULL_GAS_NEEDED, 100_000), step: 1_003 },
        expected,
        [alice.address, honestAddress, bob.address],
      );
      expect(result.succeeded).to.be.greaterThan(0);
      expect(result.reverts.get("BatchOutOfGas") ?? 0, JSON.stringify([...result.reverts])).to.be.greaterThan(0);
      expect([...result.named].sort()).to.deep.equal([...list].sort());
      // Every honest pull began with the same gas at every gas limit that went through: its budget.
      expect(result.pullGas.size, [...result.pullGas].join(" ")).to.equal(1);
      for (const gas of JSON.parse([...result.pullGas][0]!) as string[]) {
        expect(Number(gas)).to.be.within(PULL_GAS - 1_000, PULL_GAS);
      }
      await networkHelpers.loadFixture(meteredArmedFixture);
      expect(await plan.creditsOf(attackerAddress)).to.equal(CREDITS);
    });
  });
});

describe("a token whose own transferFrom misbehaves fails each item alone, never the batch", () => {
  /** [label, behaviour]: a hostile `transferFrom` moves nothing; `Huge` moves and then answers 1 MB. */
  const BROKEN_PULLS: [string, number][] = [
    ["answers with one byte", Token.OneByte],
    ["answers with 31 bytes", Token.ShortWord],
    ["reverts", Token.Revert],
    ["burns all the gas it is given", Token.BurnGas],
    ["moves the tokens and answers with 1 MB (more memory than its budget pays for)", Token.Huge],
  ];
  /** A single charge reverts with the token's own error, or SafeERC20FailedOperation(token) when it gave none. */
  async function expectPullRefused(
    tx: Promise<unknown>,
    stack: { plan: FixedPricePlan | MeteredPlan; hostile: HostileToken; tokenAddress: string },
    behaviour: number,
  ) {
    if (behaviour === Token.Revert) {
      await expect(tx).to.be.revertedWithCustomError(stack.hostile, "TokenDown");
    } else {
      await expect(tx).to.be.revertedWithCustomError(stack.plan, "SafeERC20FailedOperation").withArgs(stack.tokenAddress);
    }
  }

  for (const [label, behaviour] of BROKEN_PULLS) {
    it(`a token whose transferFrom ${label}: chargeMany records ChargeFailed(TransferFailed) and chargeUsageMany UsageChargeFailed(TransferFailed) for each item at 10M gas; nothing moves and no schedule or credit changes; charge and chargeUsage revert with the token's error or SafeERC20FailedOperation`, async () => {
      const gasLimit = 10_000_000;
      const fixed = await networkHelpers.loadFixture(fixedHostileFixture);
      const pair = [fixed.alice.address, fixed.bob.address];
      const fixedBefore = await Promise.all(pair.map((who) => stored(fixed.plan, who)));
      const fixedMoney = await balances(fixed.token, [fixed.alice, fixed.bob, fixed.payee]);
      await fixed.hostile.setBehaviours(Token.Normal, Token.Normal, behaviour);
      const receipt = (await (await fixed.plan.chargeMany(pair, { gasLimit })).wait())!;
      expect(planEvents(fixed.plan, fixed.planAddress, receipt)).to.deep.equal(
        pair.map((who) => ({ name: "ChargeFailed", args: [who, TF] })),
      );
      expect(await Promise.all(pair.map((who) => stored(fixed.plan, who)))).to.deep.equal(fixedBefore);
      expect(await balances(fixed.token, [fixed.alice, fixed.bob, fixed.payee])).to.deep.equal(fixedMoney);
      await expectPullRefused(fixed.plan.charge(fixed.alice.address, { gasLimit }), fixed, behaviour);

      const metered = await networkHelpers.loadFixture(meteredHostileFixture);
      const owner = metered.plan.connect(metered.merchant);
      const meteredBefore = await Promise.all(pair.map((who) => stored(metered.plan, who)));
      const meteredMoney = await balances(metered.token, [metered.alice, metered.bob, metered.payee]);
      await metered.hostile.setBehaviours(Token.Normal, Token.Normal, behaviour);
      const billed = (await (await owner.chargeUsageMany(pair, [USAGE, USAGE], [REF, REF], { gasLimit })).wait())!;
      expect(planEvents(metered.plan, metered.planAddress, billed)).to.deep.equal(
        pair.map((who) => ({ name: "UsageChargeFailed", args: [who, TF, USAGE, REF] })),
      );
      expect(await Promise.all(pair.map((who) => stored(metered.plan, who)))).to.deep.equal(meteredBefore);
      expect(await Promise.all(pair.map((who) => metered.plan.creditsOf(who)))).to.deep.equal([CREDITS, CREDITS]);
      expect(await balances(metered.token, [metered.alice, metered.bob, metered.payee])).to.deep.equal(meteredMoney);
      await expectPullRefused(owner.chargeUsage(metered.alice.address, USAGE, REF, { gasLimit }), metered, behaviour);
    });
  }
});

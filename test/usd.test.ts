// USD-priced fixed plans: the price is in USD (8 decimals) and converted at each charge with a
// Chainlink-style feed; a stale or broken answer refuses the charge and changes nothing; the conversion
// rounds up by less than one token unit; a price move above the subscriber's max amount is refused until
// they raise it.
import { expect } from "chai";
import { network } from "hardhat";

import { ChargeReason, createPlan, DAY, deployFactory, fixedTerms } from "../scripts/lib/plans.js";
import { actors, PERIOD } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const USD_PRICE = 999_000_000n; // $9.99 with 8 decimals
const MAX_AGE = 3_600n;

/** ceil(usd × 10^(td+fd) / (answer × 10^8)): the reference the plan must match. */
function expected(usd: bigint, answer: bigint, feedDecimals: bigint, tokenDecimals: bigint): bigint {
  const num = usd * 10n ** (tokenDecimals + feedDecimals);
  const den = answer * 10n ** 8n;
  return (num + den - 1n) / den;
}

async function usdPlan(tokenName: "TestUSDC" | "TestToken18", feedDecimals: number, answer: bigint, overrides: Record<string, bigint> = {}) {
  const who = await actors(ethers);
  const token = await ethers.getContractAt("TestUSDC", await (await ethers.deployContract(tokenName)).getAddress());
  const feed = await ethers.deployContract("MockAggregator", [feedDecimals, answer]);
  const factory = await deployFactory(ethers);
  const { plan } = await createPlan(
    ethers,
    factory,
    who.merchant,
    fixedTerms(await token.getAddress(), who.payee.address, { price: USD_PRICE, priceFeed: await feed.getAddress(), maxPriceAge: MAX_AGE, allowanceBufferBps: 1_000n, ...overrides }),
  );
  const planAddress = await plan.getAddress();
  for (const customer of [who.alice, who.bob]) {
    await token.mint(customer.address, 10n ** 30n);
    await token.connect(customer).approve(planAddress, 10n ** 30n);
  }
  return { ...who, token, feed, plan, planAddress };
}

const stablecoinPlan = () => usdPlan("TestUSDC", 8, 99_800_000n); // the token trades at $0.998
const etherPlan = () => usdPlan("TestToken18", 18, 2_500n * 10n ** 18n); // $2,500 per whole token, 18-decimal feed
const feePlan = () => usdPlan("TestUSDC", 8, 100_000_000n, { keeperFeeBps: 250n });

describe("USD-priced plans", () => {
  it("subscribe and charge pull the USD price converted at the feed's answer, rounded up (6-decimal token, 8-decimal feed)", async () => {
    const { plan, token, alice, payee } = await networkHelpers.loadFixture(stablecoinPlan);
    const amount = expected(USD_PRICE, 99_800_000n, 8n, 6n); // 10.010021 tokens for $9.99 at $0.998
    expect(amount).to.equal(10_010_021n);
    await expect(plan.connect(alice).subscribe(amount)).to.changeTokenBalances(ethers, token, [alice, payee], [-amount, amount]);
    const sub = await plan.subscriptionOf(alice.address);
    await time.increaseTo(sub.nextChargeAt);
    const feed = await ethers.getContractAt("MockAggregator", (await plan.usdPricing())[0]);
    await feed.setAnswer(99_800_000n);
    await expect(plan.charge(alice.address))
      .to.emit(plan, "Charged")
      .withArgs(alice.address, 1n, amount, sub.nextChargeAt + PERIOD);
  });

  it("converts for an 18-decimal token on an 18-decimal feed", async () => {
    const { plan, token, alice, payee } = await networkHelpers.loadFixture(etherPlan);
    const amount = expected(USD_PRICE, 2_500n * 10n ** 18n, 18n, 18n); // 0.003996 tWETH
    expect(amount).to.equal(3_996_000_000_000_000n);
    await expect(plan.connect(alice).subscribe(amount)).to.changeTokenBalances(ethers, token, [alice, payee], [-amount, amount]);
    expect((await plan.chargeability(alice.address))[2]).to.equal(amount);
  });

  it("refuses a charge on an answer older than maxPriceAge: PriceUnavailable, chargeability PriceStale, ChargeFailed in a batch, nothing moves", async () => {
    const { plan, feed, token, alice, bob, payee } = await networkHelpers.loadFixture(stablecoinPlan);
    await plan.connect(alice).subscribe(10n ** 12n);
    await plan.connect(bob).subscribe(10n ** 12n);
    const due = (await plan.subscriptionOf(bob.address)).nextChargeAt;
    const updatedAt = BigInt(await time.latest());
    await feed.setRound(99_800_000n, updatedAt);
    await time.increaseTo(due);
    const now = BigInt(await time.latest());
    expect(now - updatedAt).to.be.greaterThan(MAX_AGE);
    await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "PriceUnavailable").withArgs(99_800_000n, updatedAt, MAX_AGE);
    expect((await plan.chargeability(alice.address)).slice(0, 2)).to.deep.equal([false, BigInt(ChargeReason.PriceStale)]);
    const batch = plan.chargeMany([alice.address, bob.address]);
    await expect(batch).to.emit(plan, "ChargeFailed").withArgs(alice.address, ChargeReason.PriceStale);
    await expect(batch).to.changeTokenBalances(ethers, token, [alice, bob, payee], [0n, 0n, 0n]);
    expect((await plan.subscriptionOf(alice.address)).periodsPaid).to.equal(1n);

    // Fresh again within grace: charged on the original schedule.
    await feed.setAnswer(99_800_000n);
    await expect(plan.charge(alice.address)).to.emit(plan, "Charged").withArgs(alice.address, 1n, 10_010_021n, (await plan.subscriptionOf(alice.address)).nextChargeAt + PERIOD);
  });

  it("accepts an answer exactly maxPriceAge old and refuses one a second older", async () => {
    const { plan, feed, alice } = await networkHelpers.loadFixture(stablecoinPlan);
    await plan.connect(alice).subscribe(10n ** 12n);
    const due = (await plan.subscriptionOf(alice.address)).nextChargeAt;
    await feed.setRound(99_800_000n, due - MAX_AGE);
    await time.setNextBlockTimestamp(due);
    await expect(plan.charge(alice.address)).to.emit(plan, "Charged");
    const next = (await plan.subscriptionOf(alice.address)).nextChargeAt;
    await feed.setRound(99_800_000n, next - MAX_AGE - 1n);
    await time.setNextBlockTimestamp(next);
    await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "PriceUnavailable");
  });

  it("refuses answers that are zero, negative, never updated or from the future", async () => {
    const { plan, feed, alice } = await networkHelpers.loadFixture(stablecoinPlan);
    await plan.connect(alice).subscribe(10n ** 12n);
    await time.increaseTo((await plan.subscriptionOf(alice.address)).nextChargeAt);
    const now = BigInt(await time.latest());
    for (const [answer, updatedAt] of [[0n, now], [-1n, now], [99_800_000n, 0n], [99_800_000n, now + DAY]] as const) {
      await feed.setRound(answer, updatedAt);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "PriceUnavailable").withArgs(answer, updatedAt, MAX_AGE);
      expect((await plan.chargeability(alice.address))[1]).to.equal(BigInt(ChargeReason.PriceStale));
    }
  });

  it("a feed that reverts refuses the charge like a stale one: PriceUnavailable(0, 0, maxAge), PriceStale, nothing moves", async () => {
    const { plan, feed, token, alice } = await networkHelpers.loadFixture(stablecoinPlan);
    await plan.connect(alice).subscribe(10n ** 12n);
    const due = (await plan.subscriptionOf(alice.address)).nextChargeAt;
    await time.increaseTo(due);
    await feed.setBroken(true);
    const before = await token.balanceOf(alice.address);
    await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "PriceUnavailable").withArgs(0n, 0n, MAX_AGE);
    expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.PriceStale), 0n]);
    await expect(plan.chargeMany([alice.address])).to.emit(plan, "ChargeFailed").withArgs(alice.address, ChargeReason.PriceStale);
    expect(await token.balanceOf(alice.address)).to.equal(before);
    expect((await plan.subscriptionOf(alice.address)).nextChargeAt).to.equal(due);
    await feed.setBroken(false);
    await feed.setAnswer(99_800_000n);
    await expect(plan.charge(alice.address)).to.emit(plan, "Charged");
  });

  it("a price move above the subscriber's max amount is refused (MaxAmountExceeded with the converted amount) until they raise it", async () => {
    const { plan, feed, alice } = await networkHelpers.loadFixture(stablecoinPlan);
    const first = expected(USD_PRICE, 99_800_000n, 8n, 6n);
    await plan.connect(alice).subscribe(first);
    await time.increaseTo((await plan.subscriptionOf(alice.address)).nextChargeAt);
    await feed.setAnswer(95_000_000n); // the token falls to $0.95: more tokens for the same $9.99
    const moved = expected(USD_PRICE, 95_000_000n, 8n, 6n);
    await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "MaxAmountExceeded").withArgs(moved, first);
    expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.MaxAmountExceeded), moved]);
    await plan.connect(alice).setMaxAmount(moved);
    await expect(plan.charge(alice.address)).to.emit(plan, "Charged").withArgs(alice.address, 1n, moved, (await plan.subscriptionOf(alice.address)).nextChargeAt + PERIOD);
  });

  it("requiredAllowance(n) is n periods at today's conversion plus the plan's buffer, rounded up; it reverts on a stale feed", async () => {
    const { plan, feed } = await networkHelpers.loadFixture(stablecoinPlan);
    const amount = expected(USD_PRICE, 99_800_000n, 8n, 6n);
    const base = amount * 12n;
    expect(await plan.requiredAllowance(12n)).to.equal(base + (base * 1_000n + 9_999n) / 10_000n);
    await feed.setRound(99_800_000n, 0n);
    await expect(plan.requiredAllowance(12n)).to.be.revertedWithCustomError(plan, "PriceUnavailable");
  });

  it("subscribe reverts PriceUnavailable on a stale feed and creates nothing", async () => {
    const { plan, feed, alice } = await networkHelpers.loadFixture(stablecoinPlan);
    await feed.setRound(99_800_000n, 0n);
    await expect(plan.connect(alice).subscribe(10n ** 12n)).to.be.revertedWithCustomError(plan, "PriceUnavailable").withArgs(99_800_000n, 0n, MAX_AGE);
    expect((await plan.subscriptionOf(alice.address)).startedAt).to.equal(0n);
  });

  it("a keeper fee is the plan's share of the converted amount; the subscriber pays exactly the amount", async () => {
    const { plan, token, alice, payee, keeper } = await networkHelpers.loadFixture(feePlan);
    await plan.connect(alice).subscribe(10n ** 12n);
    await time.increaseTo((await plan.subscriptionOf(alice.address)).nextChargeAt);
    const feed = await ethers.getContractAt("MockAggregator", (await plan.usdPricing())[0]);
    await feed.setAnswer(100_000_000n);
    const amount = expected(USD_PRICE, 100_000_000n, 8n, 6n);
    const fee = (amount * 250n) / 10_000n;
    await expect(plan.connect(keeper).charge(alice.address)).to.changeTokenBalances(ethers, token, [alice, payee, keeper], [-amount, amount - fee, fee]);
  });
});

// Metered (pay-as-you-go) plans: usage billed in arrears by the owner or a reporter, once per cycle after
// it ends, inside the grace window; capped by the plan's perCycleCap and (after free credits) by the
// subscriber's maxAmount; zero usage closes a cycle; a failed pull changes nothing; the batch form
// isolates failures and reports every item it did not bill.
import { expect } from "chai";
import { encodeBytes32String } from "ethers";
import { network } from "hardhat";

import { ChargeReason, createMeteredPlan, deployFactory, meteredTerms, PlanStatus, SubscriptionStatus } from "../scripts/lib/plans.js";
import { actors, fund, FUNDS, GRACE, PERIOD, planEvents, revertName, stored, UNDER_COVERAGE } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

/** The plan's cap per cycle and the free credits each new subscriber gets (6-decimal token units). */
const CAP = 100_000_000n;
const CREDITS = 5_000_000n;
/** The max amount the fixture's subscribers set: half the cap. */
const MAX = 50_000_000n;
const REF = encodeBytes32String("inv-2026-11");

/** A metered plan with a reporter; alice, bob and carol funded, approved and subscribed a second apart. */
async function meteredStack(token: "TestUSDC" | "BlocklistToken") {
  const who = await actors(ethers);
  const deployed = await ethers.deployContract(token);
  const tokenAddress = await deployed.getAddress();
  const usdc = await ethers.getContractAt("TestUSDC", tokenAddress);
  const factory = await deployFactory(ethers);
  const { plan } = await createMeteredPlan(
    ethers,
    factory,
    who.merchant,
    meteredTerms(tokenAddress, who.payee.address, { perCycleCap: CAP, freeCredits: CREDITS }),
  );
  const planAddress = await plan.getAddress();
  await plan.connect(who.merchant).setReporter(who.keeper.address, true);
  const reporter = who.keeper;
  const dues: bigint[] = [];
  for (const account of [who.alice, who.bob, who.carol]) {
    await fund(usdc, account, planAddress);
    await (await plan.connect(account).subscribe(MAX)).wait();
    dues.push((await plan.subscriptionOf(account.address)).nextChargeAt);
  }
  await fund(usdc, who.dave, planAddress);
  return { ...who, reporter, token: usdc, tokenAddress, factory, plan, planAddress, dues, due: dues[2]! };
}

const meteredFixture = () => meteredStack("TestUSDC");
const blocklistFixture = () => meteredStack("BlocklistToken");

describe("metered plans", () => {
  describe("subscribing", () => {
    it("moves no token, starts the first cycle now, and grants the free credits once", async () => {
      const { plan, token, alice, dave, payee } = await networkHelpers.loadFixture(meteredFixture);
      const tx = plan.connect(dave).subscribe(MAX);
      await expect(tx).to.changeTokenBalances(ethers, token, [dave, payee], [0n, 0n]);
      const startedAt = (await plan.subscriptionOf(dave.address)).startedAt;
      await expect(tx).to.emit(plan, "Subscribed").withArgs(dave.address, MAX, startedAt, startedAt + PERIOD, false, ethers.ZeroHash);
      await expect(tx).to.emit(plan, "CreditsGranted").withArgs(dave.address, CREDITS);
      await expect(tx).to.not.emit(plan, "Charged");
      expect(await plan.creditsOf(dave.address)).to.equal(CREDITS);
      expect(await plan.statusOf(dave.address)).to.equal(SubscriptionStatus.Active);
      expect(await plan.hasAccess(dave.address)).to.equal(true);
      expect(await plan.nextChargeAt(dave.address)).to.equal(startedAt + PERIOD);
      expect(await plan.amountDue(dave.address)).to.equal(0n);
      expect(await plan.isDue(dave.address)).to.equal(false);
      expect(await plan.chargeability(dave.address)).to.deep.equal([false, BigInt(ChargeReason.NotDue), 0n]);
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS);
    });

    it("accepts any max amount, even 0 (only the part above credits is capped by it)", async () => {
      const { plan, dave } = await networkHelpers.loadFixture(meteredFixture);
      await expect(plan.connect(dave).subscribe(0n)).to.emit(plan, "Subscribed");
      expect((await plan.subscriptionOf(dave.address)).maxAmount).to.equal(0n);
    });

    it("reports the terms: billing mode, cap, credits, no price, no trial; requiredAllowance is cap × cycles", async () => {
      const { plan } = await networkHelpers.loadFixture(meteredFixture);
      expect(await plan.billingMode()).to.equal(1n);
      expect(await plan.perCycleCap()).to.equal(CAP);
      expect(await plan.freeCredits()).to.equal(CREDITS);
      expect(await plan.price()).to.equal(0n);
      expect(await plan.trialPeriod()).to.equal(0n);
      expect(await plan.period()).to.equal(PERIOD);
      expect(await plan.gracePeriod()).to.equal(GRACE);
      expect(await plan.requiredAllowance(3n)).to.equal(3n * CAP);
    });

    it("does not grant credits a second time after a cancel and a fresh subscription", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]!);
      await plan.connect(reporter).chargeUsage(alice.address, 2_000_000n, REF);
      await plan.connect(alice).cancel();
      await time.increase(PERIOD);
      const tx = plan.connect(alice).subscribe(MAX);
      await expect(tx).to.emit(plan, "Subscribed");
      await expect(tx).to.not.emit(plan, "CreditsGranted");
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS - 2_000_000n);
    });
  });

  describe("chargeUsage", () => {
    it("after the cycle ends, uses credits first, pulls the rest to the payee and emits UsageCharged with the usageRef", async () => {
      const { plan, token, reporter, alice, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.setNextBlockTimestamp(dues[0]!);
      const usage = 12_000_000n;
      const pulled = usage - CREDITS;
      const tx = plan.connect(reporter).chargeUsage(alice.address, usage, REF);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee, reporter], [-pulled, pulled, 0n]);
      await expect(tx)
        .to.emit(plan, "UsageCharged")
        .withArgs(alice.address, 0n, usage, CREDITS, pulled, dues[0]! + PERIOD, REF);
      expect(await plan.creditsOf(alice.address)).to.equal(0n);
      const sub = await stored(plan, alice.address);
      expect(sub.nextChargeAt).to.equal(dues[0]! + PERIOD);
      expect(sub.periodsPaid).to.equal(1n);
    });

    it("returns the amount pulled", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]!);
      expect(await plan.connect(reporter).chargeUsage.staticCall(alice.address, 12_000_000n, REF)).to.equal(7_000_000n);
    });

    it("moves no token while credits cover the usage, and keeps the rest of the credits", async () => {
      const { plan, token, reporter, alice, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]!);
      const tx = plan.connect(reporter).chargeUsage(alice.address, 3_000_000n, REF);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [0n, 0n]);
      await expect(tx).to.emit(plan, "UsageCharged").withArgs(alice.address, 0n, 3_000_000n, 3_000_000n, 0n, dues[0]! + PERIOD, REF);
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS - 3_000_000n);
    });

    it("closes a cycle with zero usage: no transfer, the next cycle scheduled, no credit used", async () => {
      const { plan, token, reporter, alice, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]!);
      const tx = plan.connect(reporter).chargeUsage(alice.address, 0n, REF);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [0n, 0n]);
      await expect(tx).to.emit(plan, "UsageCharged").withArgs(alice.address, 0n, 0n, 0n, 0n, dues[0]! + PERIOD, REF);
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS);
      expect(await plan.nextChargeAt(alice.address)).to.equal(dues[0]! + PERIOD);
    });

    it("refuses a cycle that has not ended: NotDue(subscriber, cycle end, now) one second before, billed at the second it ends", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.setNextBlockTimestamp(dues[0]! - 1n);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, dues[0]!, dues[0]! - 1n);
      await time.setNextBlockTimestamp(dues[0]!);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF)).to.emit(plan, "UsageCharged");
    });

    it("bills a cycle once: a second bill for it reverts NotDue, even with another amount or reference", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]!);
      await plan.connect(reporter).chargeUsage(alice.address, 1_000_000n, REF);
      const now = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(now);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 2_000_000n, encodeBytes32String("other")))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, dues[0]! + PERIOD, now);
    });

    it("keeps the schedule anchored when a cycle is billed late inside the grace window", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.setNextBlockTimestamp(dues[0]! + GRACE);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF))
        .to.emit(plan, "UsageCharged")
        .withArgs(alice.address, 0n, 1n, 1n, 0n, dues[0]! + PERIOD, REF);
    });

    it("refuses a cycle whose grace window has passed: SubscriptionExpired, and the subscription lapses", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.setNextBlockTimestamp(dues[0]! + GRACE + 1n);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF))
        .to.be.revertedWithCustomError(plan, "SubscriptionExpired")
        .withArgs(alice.address, dues[0]! + GRACE, dues[0]! + GRACE + 1n);
      await time.increaseTo(dues[0]! + GRACE + 1n);
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.Expired);
      expect(await plan.hasAccess(alice.address)).to.equal(false);
    });

    it("refuses usage above the plan's cap (UsageAboveCap, nothing changes) and bills usage exactly at it", async () => {
      const { plan, reporter, alice, dave, planAddress, dues } = await networkHelpers.loadFixture(meteredFixture);
      await plan.connect(dave).subscribe(CAP);
      const daveDue = (await plan.subscriptionOf(dave.address)).nextChargeAt;
      await time.increaseTo(daveDue);
      const before = await stored(plan, alice.address);
      await expect(plan.connect(reporter).chargeUsage(alice.address, CAP + 1n, REF))
        .to.be.revertedWithCustomError(plan, "UsageAboveCap")
        .withArgs(alice.address, CAP + 1n, CAP);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(dues[0]).to.be.lessThan(daveDue);
      const receipt = await (await plan.connect(reporter).chargeUsage(dave.address, CAP, REF)).wait();
      expect(planEvents(plan, planAddress, receipt!).map((e) => e.name)).to.deep.equal(["UsageCharged"]);
    });

    it("refuses a pull above the subscriber's max amount with MaxAmountExceeded(pulled, max); credits count first", async () => {
      const { plan, token, reporter, alice, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]!);
      await expect(plan.connect(reporter).chargeUsage(alice.address, MAX + CREDITS + 1n, REF))
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(MAX + 1n, MAX);
      const tx = plan.connect(reporter).chargeUsage(alice.address, MAX + CREDITS, REF);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-MAX, MAX]);
    });

    it("bills after the subscriber raises a max amount that was too low", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await plan.connect(alice).setMaxAmount(1_000_000n);
      await time.increaseTo(dues[0]!);
      // A lowering applies from the next cycle (M7): the cycle running when it was made keeps its limit.
      await plan.connect(reporter).chargeUsage(alice.address, 0n, REF);
      await time.increaseTo(dues[0]! + PERIOD);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF)).to.be.revertedWithCustomError(plan, "MaxAmountExceeded");
      await plan.connect(alice).setMaxAmount(MAX);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF)).to.emit(plan, "UsageCharged");
    });

    it("changes nothing when the pull fails (rule 12): cycle unbilled, credits kept, then billed once funds are back", async () => {
      const { plan, token, reporter, alice, planAddress, dues } = await networkHelpers.loadFixture(meteredFixture);
      await token.connect(alice).approve(planAddress, 1n);
      await time.increaseTo(dues[0]!);
      const before = await stored(plan, alice.address);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF)).to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance");
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS);
      await token.connect(alice).approve(planAddress, FUNDS);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF)).to.emit(plan, "UsageCharged");
    });

    it("refuses unknown, paused, cancelled subscribers and a retired plan with the rule's error", async () => {
      const { plan, reporter, merchant, alice, bob, carol, dave, due, dues } = await networkHelpers.loadFixture(meteredFixture);
      await plan.connect(bob).pause();
      await plan.connect(carol).cancel();
      await time.increaseTo(due);
      await expect(plan.connect(reporter).chargeUsage(dave.address, 1n, REF)).to.be.revertedWithCustomError(plan, "NotSubscribed").withArgs(dave.address);
      await expect(plan.connect(reporter).chargeUsage(bob.address, 1n, REF)).to.be.revertedWithCustomError(plan, "SubscriptionPaused");
      await expect(plan.connect(reporter).chargeUsage(carol.address, 1n, REF))
        .to.be.revertedWithCustomError(plan, "SubscriptionCancelled")
        .withArgs(carol.address);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      // M8: alice's cycles that had started before the retirement (the one that ended, the one running) are still
      // billed; the first one that starts after it never is.
      await plan.connect(reporter).chargeUsage(alice.address, 1n, REF);
      await time.increaseTo(dues[0]! + PERIOD);
      await plan.connect(reporter).chargeUsage(alice.address, 1n, REF);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF)).to.be.revertedWithCustomError(plan, "PlanRetired");
    });

    it("a cancelled subscriber has no access and its cycle in progress can never be billed (rule 4)", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await expect(plan.connect(alice).cancel()).to.emit(plan, "Cancelled").withArgs(alice.address, alice.address, dues[0]!);
      expect(await plan.hasAccess(alice.address)).to.equal(false);
      for (const at of [dues[0]!, dues[0]! + GRACE, dues[0]! + 3n * PERIOD]) {
        await time.increaseTo(at);
        await expect(plan.connect(reporter).chargeUsage(alice.address, 0n, REF)).to.be.revertedWithCustomError(plan, "SubscriptionCancelled");
      }
    });

    it("cancelling after a cycle ends and re-subscribing at once resumes the old schedule: the ended cycle is still billed", async () => {
      const { plan, token, reporter, alice, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.setNextBlockTimestamp(dues[0]! + 1n);
      await plan.connect(alice).cancel();
      await expect(plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF)).to.be.revertedWithCustomError(plan, "SubscriptionCancelled");
      const resubscribe = plan.connect(alice).subscribe(MAX);
      await expect(resubscribe).to.emit(plan, "Subscribed").withArgs(alice.address, MAX, (await plan.subscriptionOf(alice.address)).startedAt, dues[0]!, false, ethers.ZeroHash);
      await expect(resubscribe).to.not.emit(plan, "CreditsGranted");
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.PastDue);
      const bill = plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF);
      await expect(bill).to.changeTokenBalances(ethers, token, [alice, payee], [-15_000_000n, 15_000_000n]);
      await expect(bill).to.emit(plan, "UsageCharged").withArgs(alice.address, 0n, 20_000_000n, CREDITS, 15_000_000n, dues[0]! + PERIOD, REF);
    });

    it("re-subscribing after the ended cycle's grace window reverts UnbilledCycle; once the owner writes the cycle off it starts a fresh cycle, with no new credits", async () => {
      const { plan, reporter, merchant, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.setNextBlockTimestamp(dues[0]! + 1n);
      await plan.connect(alice).cancel();
      await time.increaseTo(dues[0]! + GRACE + 1n);
      await expect(plan.connect(alice).subscribe(MAX))
        .to.be.revertedWithCustomError(plan, "UnbilledCycle")
        .withArgs(alice.address, 0n, dues[0]!);
      await plan.connect(merchant).writeOff(alice.address);
      const at = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(at);
      const tx = plan.connect(alice).subscribe(MAX);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, MAX, at, at + PERIOD, false, ethers.ZeroHash);
      await expect(tx).to.not.emit(plan, "CreditsGranted");
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS);
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.Active);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF)).to.be.revertedWithCustomError(plan, "NotDue");
    });

    it("a pause shifts the end of the cycle by the paused time", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await plan.connect(alice).pause();
      const pausedAt = BigInt(await time.latest());
      await time.setNextBlockTimestamp(pausedAt + 10n * 86_400n);
      await expect(plan.connect(alice).resume()).to.emit(plan, "Resumed").withArgs(alice.address, dues[0]! + 10n * 86_400n, 10n * 86_400n);
      await time.setNextBlockTimestamp(dues[0]! + 10n * 86_400n - 1n);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF)).to.be.revertedWithCustomError(plan, "NotDue");
      await time.setNextBlockTimestamp(dues[0]! + 10n * 86_400n);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF)).to.emit(plan, "UsageCharged");
    });

    it("bills cycle after cycle, each once, with cycleIndex counting up and credits running out", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      // usage, from credits, pulled (credits start at 5.000000)
      const cycles: [bigint, bigint, bigint][] = [
        [1_000_000n, 1_000_000n, 0n],
        [2_000_000n, 2_000_000n, 0n],
        [3_000_000n, 2_000_000n, 1_000_000n],
        [4_000_000n, 0n, 4_000_000n],
      ];
      for (const [i, [usage, fromCredits, pulled]] of cycles.entries()) {
        const end = dues[0]! + BigInt(i) * PERIOD;
        await time.setNextBlockTimestamp(end + 60n);
        await expect(plan.connect(reporter).chargeUsage(alice.address, usage, REF))
          .to.emit(plan, "UsageCharged")
          .withArgs(alice.address, BigInt(i), usage, fromCredits, pulled, end + PERIOD, REF);
      }
    });
  });

  describe("who may bill", () => {
    it("only the owner and authorized reporters: anyone else reverts NotAuthorizedReporter(caller)", async () => {
      const { plan, merchant, reporter, stranger, alice, bob, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[1]!);
      await expect(plan.connect(stranger).chargeUsage(alice.address, 1n, REF))
        .to.be.revertedWithCustomError(plan, "NotAuthorizedReporter")
        .withArgs(stranger.address);
      await expect(plan.connect(alice).chargeUsage(alice.address, 0n, REF))
        .to.be.revertedWithCustomError(plan, "NotAuthorizedReporter")
        .withArgs(alice.address);
      await expect(plan.connect(stranger).chargeUsageMany([alice.address], [1n], [REF]))
        .to.be.revertedWithCustomError(plan, "NotAuthorizedReporter")
        .withArgs(stranger.address);
      await expect(plan.connect(merchant).chargeUsage(alice.address, 1n, REF)).to.emit(plan, "UsageCharged");
      await expect(plan.connect(reporter).chargeUsage(bob.address, 1n, REF)).to.emit(plan, "UsageCharged");
    });

    it("setReporter is the owner's, with ReporterAuthorized; a revoked reporter can no longer bill", async () => {
      const { plan, merchant, reporter, stranger, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await expect(plan.connect(stranger).setReporter(stranger.address, true))
        .to.be.revertedWithCustomError(plan, "OwnableUnauthorizedAccount")
        .withArgs(stranger.address);
      expect(await plan.isReporter(merchant.address)).to.equal(true);
      expect(await plan.isReporter(reporter.address)).to.equal(true);
      await expect(plan.connect(merchant).setReporter(reporter.address, false)).to.emit(plan, "ReporterAuthorized").withArgs(reporter.address, false);
      expect(await plan.isReporter(reporter.address)).to.equal(false);
      await time.increaseTo(dues[0]!);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF)).to.be.revertedWithCustomError(plan, "NotAuthorizedReporter");
    });

    it("has no charge or chargeMany: a keeper calling the fixed-plan functions reverts and moves nothing", async () => {
      const { plan, token, stranger, alice, planAddress, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]!);
      const asFixed = await ethers.getContractAt("FixedPricePlan", planAddress);
      const before = await token.balanceOf(alice.address);
      await expect(asFixed.connect(stranger).charge(alice.address)).to.be.revert(ethers);
      await expect(asFixed.connect(stranger).chargeMany([alice.address])).to.be.revert(ethers);
      expect(await token.balanceOf(alice.address)).to.equal(before);
    });
  });

  describe("chargeUsageMany", () => {
    it("bills the good items and reports every other one with UsageChargeFailed; the failed ones change nothing", async () => {
      const { plan, token, reporter, alice, bob, carol, dave, payee, planAddress, due } = await networkHelpers.loadFixture(meteredFixture);
      await token.connect(carol).approve(planAddress, 1n);
      await time.increaseTo(due);
      const before = { bob: await stored(plan, bob.address), carol: await stored(plan, carol.address) };
      const refs = ["a", "b", "c", "d", "e"].map((r) => encodeBytes32String(r));
      const list = [alice.address, bob.address, carol.address, dave.address, alice.address];
      const usages = [10_000_000n, CAP + 1n, 20_000_000n, 1n, 1n];
      expect(await plan.connect(reporter).chargeUsageMany.staticCall(list, usages, refs)).to.equal(1n);
      const tx = plan.connect(reporter).chargeUsageMany(list, usages, refs);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, carol, payee], [-5_000_000n, 0n, 0n, 5_000_000n]);
      const receipt = await (await tx).wait();
      expect(planEvents(plan, planAddress, receipt!).map((e) => [e.name, e.args[0], e.args[1]])).to.deep.equal([
        ["UsageCharged", alice.address, 0n],
        ["UsageChargeFailed", bob.address, BigInt(ChargeReason.UsageAboveCap)],
        ["UsageChargeFailed", carol.address, BigInt(ChargeReason.AllowanceTooLow)],
        ["UsageChargeFailed", dave.address, BigInt(ChargeReason.NotSubscribed)],
        ["UsageChargeFailed", alice.address, BigInt(ChargeReason.NotDue)],
      ]);
      await expect(tx).to.emit(plan, "UsageChargeFailed").withArgs(carol.address, ChargeReason.AllowanceTooLow, 20_000_000n, refs[2]);
      expect(await stored(plan, bob.address)).to.deep.equal(before.bob);
      expect(await stored(plan, carol.address)).to.deep.equal(before.carol);
      expect(await plan.creditsOf(carol.address)).to.equal(CREDITS);
    });

    it("reverts LengthMismatch unless the three lists have one length", async () => {
      const { plan, reporter, alice, bob } = await networkHelpers.loadFixture(meteredFixture);
      await expect(plan.connect(reporter).chargeUsageMany([alice.address, bob.address], [1n], [REF, REF]))
        .to.be.revertedWithCustomError(plan, "LengthMismatch")
        .withArgs(2n, 1n, 2n);
      await expect(plan.connect(reporter).chargeUsageMany([alice.address], [1n], []))
        .to.be.revertedWithCustomError(plan, "LengthMismatch")
        .withArgs(1n, 1n, 0n);
    });

    it("a blocklisted subscriber fails alone (TransferFailed), keeps its credits and cycle, and is billed once unblocked", async () => {
      const { plan, token, reporter, alice, bob, payee, tokenAddress, due } = await networkHelpers.loadFixture(blocklistFixture);
      const blocklist = await ethers.getContractAt("BlocklistToken", tokenAddress);
      await blocklist.setBlocked(alice.address, true);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const tx = plan.connect(reporter).chargeUsageMany([alice.address, bob.address], [20_000_000n, 20_000_000n], [REF, REF]);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, payee], [0n, -15_000_000n, 15_000_000n]);
      await expect(tx).to.emit(plan, "UsageChargeFailed").withArgs(alice.address, ChargeReason.TransferFailed, 20_000_000n, REF);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS);
      await blocklist.setBlocked(alice.address, false);
      await expect(plan.connect(reporter).chargeUsageMany([alice.address], [20_000_000n], [REF])).to.emit(plan, "UsageCharged");
    });

    it("reverts BatchOutOfGas rather than record a failure when the caller's gas starves the token call", async function () {
      if (UNDER_COVERAGE) this.skip();
      const { plan, reporter, merchant, newPayee, alice, due } = await networkHelpers.loadFixture(meteredFixture);
      // A payee without a balance makes the pull write a fresh slot: expensive enough for starvation to show.
      await plan.connect(merchant).setPayee(newPayee.address);
      await time.increaseTo(due);
      const args: [string[], bigint[], string[]] = [[alice.address], [20_000_000n], [REF]];
      const enough = Number(await plan.connect(reporter).chargeUsageMany.estimateGas(...args));
      const outcomes = new Map<string, number>();
      for (let gasLimit = enough; gasLimit >= enough - 40_000; gasLimit -= 200) {
        const snapshot = await networkHelpers.takeSnapshot();
        try {
          const receipt = await (await plan.connect(reporter).chargeUsageMany(...args, { gasLimit })).wait();
          const names = planEvents(plan, await plan.getAddress(), receipt!).map((e) => e.name);
          expect(names, `events at gasLimit ${gasLimit}`).to.deep.equal(["UsageCharged"]);
          outcomes.set("UsageCharged", (outcomes.get("UsageCharged") ?? 0) + 1);
        } catch (error) {
          const name = revertName(plan.interface, error);
          outcomes.set(name, (outcomes.get(name) ?? 0) + 1);
        }
        await snapshot.restore();
      }
      expect(outcomes.get("UsageCharged") ?? 0).to.be.greaterThan(0);
      expect(outcomes.get("BatchOutOfGas") ?? 0, JSON.stringify([...outcomes])).to.be.greaterThan(0);
      expect(await plan.isDue(alice.address)).to.equal(true);
    });
  });

  describe("usageChargeability", () => {
    it("tells, for a given usage, whether a bill would succeed and how it would split; else the first reason", async () => {
      const { plan, token, alice, bob, carol, dave, planAddress, due } = await networkHelpers.loadFixture(meteredFixture);
      const reason = async (who: string, usage: bigint) => plan.usageChargeability(who, usage);
      expect(await reason(alice.address, 1n)).to.deep.equal([false, BigInt(ChargeReason.NotDue), 1n, 0n]);
      await token.connect(bob).approve(planAddress, 1_000_000n);
      await token.connect(carol).transfer(dave.address, FUNDS - 1_000_000n);
      await time.increaseTo(due);
      expect(await reason(alice.address, 12_000_000n)).to.deep.equal([true, BigInt(ChargeReason.Ok), CREDITS, 7_000_000n]);
      expect(await reason(alice.address, CAP + 1n)).to.deep.equal([false, BigInt(ChargeReason.UsageAboveCap), CREDITS, CAP + 1n - CREDITS]);
      expect(await reason(alice.address, MAX + CREDITS + 1n)).to.deep.equal([false, BigInt(ChargeReason.MaxAmountExceeded), CREDITS, MAX + 1n]);
      expect(await reason(bob.address, 12_000_000n)).to.deep.equal([false, BigInt(ChargeReason.AllowanceTooLow), CREDITS, 7_000_000n]);
      expect(await reason(carol.address, 12_000_000n)).to.deep.equal([false, BigInt(ChargeReason.BalanceTooLow), CREDITS, 7_000_000n]);
      expect(await reason(dave.address, 1n)).to.deep.equal([false, BigInt(ChargeReason.NotSubscribed), 0n, 1n]);
      // Inside the credits no token moves, so the allowance does not matter.
      expect(await reason(bob.address, CREDITS)).to.deep.equal([true, BigInt(ChargeReason.Ok), CREDITS, 0n]);
      expect(await plan.chargeabilityMany([alice.address, dave.address])).to.deep.equal([BigInt(ChargeReason.Ok), BigInt(ChargeReason.NotSubscribed)]);
    });
  });
});

// A metered customer cannot use the service for free, indefinitely (review finding 3; IMeteredPlan M6–M8).
// The merchant's exposure to one address is at most one cycle, at most perCycleCap: access only while no ended
// cycle waits for its bill; no fresh start after an ended subscription until the owner writes its last cycle
// off; a lowered max amount applies only to cycles that start after it; and retiring the plan still lets the
// owner bill the cycles that had started. Each test here fails on the contracts before that fix (f1c26df).
import { expect } from "chai";
import { encodeBytes32String } from "ethers";
import { network } from "hardhat";

import { createMeteredPlan, deployFactory, meteredTerms, PlanStatus, SubscriptionStatus } from "../scripts/lib/plans.js";
import { actors, fund, GRACE, PERIOD, revertName } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

/** The plan's cap per cycle and the free credits each new subscriber gets (6-decimal token units). */
const CAP = 100_000_000n;
const CREDITS = 5_000_000n;
/** The max amount the fixture's subscribers set: half the cap. */
const MAX = 50_000_000n;
const REF = encodeBytes32String("inv-2026-12");

/** A metered plan with a reporter; alice, bob and carol funded, approved and subscribed a second apart; dave
 * holds tokens but has approved nothing (the review's free rider). */
async function meteredFixture() {
  const who = await actors(ethers);
  const deployed = await ethers.deployContract("TestUSDC");
  const tokenAddress = await deployed.getAddress();
  const token = await ethers.getContractAt("TestUSDC", tokenAddress);
  const factory = await deployFactory(ethers);
  const { plan } = await createMeteredPlan(
    ethers,
    factory,
    who.merchant,
    meteredTerms(tokenAddress, who.payee.address, { perCycleCap: CAP, freeCredits: CREDITS }),
  );
  const planAddress = await plan.getAddress();
  await plan.connect(who.merchant).setReporter(who.keeper.address, true);
  const dues: bigint[] = [];
  for (const account of [who.alice, who.bob, who.carol]) {
    await fund(token, account, planAddress);
    await (await plan.connect(account).subscribe(MAX)).wait();
    dues.push((await plan.subscriptionOf(account.address)).nextChargeAt);
  }
  await fund(token, who.dave, planAddress, CAP * 100n, 0n);
  return { ...who, reporter: who.keeper, token, plan, planAddress, dues };
}

describe("metered plans: the merchant's exposure is at most one cycle (M6–M8)", () => {
  describe("access (M6)", () => {
    it("hasAccess is false while PastDue: an ended cycle waits for its bill without access, which comes back once it is billed", async () => {
      const { plan, reporter, alice, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]! - 1n);
      expect(await plan.hasAccess(alice.address)).to.equal(true);
      await time.increaseTo(dues[0]!);
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.PastDue);
      expect(await plan.hasAccess(alice.address)).to.equal(false);
      await time.increaseTo(dues[0]! + GRACE - 1n);
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.PastDue);
      expect(await plan.hasAccess(alice.address)).to.equal(false);
      await plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF);
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.Active);
      expect(await plan.hasAccess(alice.address)).to.equal(true);
    });

    it("the free-ride loop is refused: no allowance, a used cycle, a failed bill, the lapse, then subscribe reverts UnbilledCycle", async () => {
      const { plan, token, reporter, payee, dave } = await networkHelpers.loadFixture(meteredFixture);
      await (await plan.connect(dave).subscribe(CAP)).wait();
      const end = (await plan.subscriptionOf(dave.address)).nextChargeAt;
      await time.increaseTo(end - 1n);
      expect(await plan.hasAccess(dave.address)).to.equal(true);
      await time.increaseTo(end);
      await expect(plan.connect(reporter).chargeUsage(dave.address, 30_000_000n, REF)).to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance");
      expect(await plan.hasAccess(dave.address)).to.equal(false);
      await time.increaseTo(end + GRACE + 1n);
      expect(await plan.statusOf(dave.address)).to.equal(SubscriptionStatus.Expired);
      await expect(plan.connect(dave).subscribe(CAP))
        .to.be.revertedWithCustomError(plan, "UnbilledCycle")
        .withArgs(dave.address, 0n, end);
      expect(await plan.hasAccess(dave.address)).to.equal(false);
      expect(await token.balanceOf(payee.address)).to.equal(0n);
    });

    it("a zero approval just before each bill buys nothing more than the cycle already used: no access while it waits, no fresh start after it lapses", async () => {
      const { plan, token, reporter, alice, planAddress, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.setNextBlockTimestamp(dues[0]! - 1n);
      await token.connect(alice).approve(planAddress, 0n);
      await time.increaseTo(dues[0]!);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 30_000_000n, REF)).to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance");
      expect(await plan.hasAccess(alice.address)).to.equal(false);
      await time.increaseTo(dues[0]! + GRACE);
      expect(await plan.hasAccess(alice.address)).to.equal(false);
      await time.increaseTo(dues[0]! + GRACE + 1n);
      await expect(plan.connect(alice).subscribe(MAX))
        .to.be.revertedWithCustomError(plan, "UnbilledCycle")
        .withArgs(alice.address, 0n, dues[0]!);
    });

    it("cancelFor then an immediate subscribe resumes the old schedule, billable, not a fresh one; after the ended cycle's window the address is refused (UnbilledCycle)", async () => {
      const { plan, token, reporter, merchant, alice, bob, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      // Alice: her cycle ended, the merchant cancels her, she subscribes again at once: the ended cycle is billed.
      await time.setNextBlockTimestamp(dues[0]! + 1n);
      await plan.connect(merchant).cancelFor(alice.address);
      const before = await plan.subscriptionOf(alice.address);
      await (await plan.connect(alice).subscribe(MAX)).wait();
      const after = await plan.subscriptionOf(alice.address);
      expect(after.startedAt).to.equal(before.startedAt);
      expect(after.nextChargeAt).to.equal(dues[0]!);
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.PastDue);
      expect(await plan.hasAccess(alice.address)).to.equal(false);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee],
        [-15_000_000n, 15_000_000n],
      );
      // Bob: cancelled mid-cycle, he comes back only after his cycle's window: refused.
      await plan.connect(merchant).cancelFor(bob.address);
      await time.increaseTo(dues[1]! + GRACE + 1n);
      await expect(plan.connect(bob).subscribe(MAX))
        .to.be.revertedWithCustomError(plan, "UnbilledCycle")
        .withArgs(bob.address, 0n, dues[1]!);
    });
  });

  describe("writeOff (M6)", () => {
    it("writeOff lets an ended subscription start afresh, emits CycleWrittenOff, refuses a second time and refuses a live subscription", async () => {
      const { plan, token, merchant, stranger, alice, bob, carol, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      await plan.connect(carol).cancel();
      await time.increaseTo(dues[0]! + GRACE + 1n);
      await expect(plan.connect(alice).subscribe(MAX))
        .to.be.revertedWithCustomError(plan, "UnbilledCycle")
        .withArgs(alice.address, 0n, dues[0]!);
      await expect(plan.connect(merchant).writeOff(bob.address))
        .to.be.revertedWithCustomError(plan, "NothingToWriteOff")
        .withArgs(bob.address, SubscriptionStatus.PastDue);
      await expect(plan.connect(merchant).writeOff(carol.address))
        .to.be.revertedWithCustomError(plan, "NothingToWriteOff")
        .withArgs(carol.address, SubscriptionStatus.Cancelled);
      await expect(plan.connect(stranger).writeOff(alice.address))
        .to.be.revertedWithCustomError(plan, "OwnableUnauthorizedAccount")
        .withArgs(stranger.address);

      const tx = plan.connect(merchant).writeOff(alice.address);
      await expect(tx).to.emit(plan, "CycleWrittenOff").withArgs(alice.address, 0n, dues[0]!);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [0n, 0n]);
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.Expired);
      await expect(plan.connect(merchant).writeOff(alice.address))
        .to.be.revertedWithCustomError(plan, "NothingToWriteOff")
        .withArgs(alice.address, SubscriptionStatus.Expired);

      const at = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(at);
      const again = plan.connect(alice).subscribe(MAX);
      await expect(again).to.emit(plan, "Subscribed").withArgs(alice.address, MAX, at, at + PERIOD, false, ethers.ZeroHash);
      await expect(again).to.not.emit(plan, "CreditsGranted");
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.Active);
      expect(await plan.hasAccess(alice.address)).to.equal(true);
      await expect(plan.connect(merchant).writeOff(alice.address))
        .to.be.revertedWithCustomError(plan, "NothingToWriteOff")
        .withArgs(alice.address, SubscriptionStatus.Active);
      // The write-off was for that one cycle: the next ended subscription needs another.
      await time.increaseTo(at + PERIOD + GRACE + 1n);
      await expect(plan.connect(alice).subscribe(MAX))
        .to.be.revertedWithCustomError(plan, "UnbilledCycle")
        .withArgs(alice.address, 0n, at + PERIOD);
    });
  });

  describe("max amount (M7)", () => {
    it("front-running a bill with setMaxAmount(0) does not stop the bill of the ended cycle, nor of the cycle already running; the next cycles get the lower limit", async () => {
      const { plan, token, reporter, alice, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.setNextBlockTimestamp(dues[0]! + 1n);
      await plan.connect(alice).setMaxAmount(0n);
      // The ended cycle 0: 20 of usage, 5 of credits, 15 pulled.
      await expect(plan.connect(reporter).chargeUsage(alice.address, 20_000_000n, REF)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee],
        [-15_000_000n, 15_000_000n],
      );
      // Cycle 1 was running at the lowering: billed up to the max amount in force when it started.
      await time.increaseTo(dues[0]! + PERIOD);
      await expect(plan.connect(reporter).chargeUsage(alice.address, MAX, REF)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee],
        [-MAX, MAX],
      );
      // Cycle 2 started after the lowering: nothing above 0 is pulled.
      await time.increaseTo(dues[0]! + 2n * PERIOD);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1n, REF))
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(1n, 0n);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 0n, REF)).to.emit(plan, "UsageCharged");
    });

    it("raising the max amount applies at once, and lowering it again keeps the raise for the cycle already running", async () => {
      const { plan, token, reporter, alice, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      await time.increaseTo(dues[0]!);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 80_000_000n, REF))
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(75_000_000n, MAX);
      await plan.connect(alice).setMaxAmount(CAP);
      await plan.connect(reporter).chargeUsage(alice.address, 80_000_000n, REF);
      // Cycle 1 runs under the raise; a lowering now applies only from cycle 2.
      await plan.connect(alice).setMaxAmount(1_000_000n);
      await time.increaseTo(dues[0]! + PERIOD);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 90_000_000n, REF)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee],
        [-90_000_000n, 90_000_000n],
      );
      await time.increaseTo(dues[0]! + 2n * PERIOD);
      await expect(plan.connect(reporter).chargeUsage(alice.address, 1_000_001n, REF))
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(1_000_001n, 1_000_000n);
    });

    it("billingLimit tells the most the waiting cycle's bill may pull: the max amount, or the higher one in force since that cycle started", async () => {
      const { plan, reporter, alice, dave, dues } = await networkHelpers.loadFixture(meteredFixture);
      await plan.connect(alice).setMaxAmount(10_000_000n);
      await time.increaseTo(dues[0]!);
      expect((await plan.usageChargeability(alice.address, MAX + CREDITS))[0]).to.equal(true);
      expect(await plan.billingLimit(alice.address)).to.equal(MAX);
      await plan.connect(reporter).chargeUsage(alice.address, 0n, REF);
      expect(await plan.billingLimit(alice.address)).to.equal(10_000_000n);
      await plan.connect(alice).setMaxAmount(30_000_000n);
      expect(await plan.billingLimit(alice.address)).to.equal(30_000_000n);
      await time.increaseTo(dues[0]! + PERIOD + 1n);
      await plan.connect(alice).setMaxAmount(0n);
      expect(await plan.billingLimit(alice.address)).to.equal(30_000_000n);
      await plan.connect(reporter).chargeUsage(alice.address, 0n, REF);
      expect(await plan.billingLimit(alice.address)).to.equal(30_000_000n);
      await time.increaseTo(dues[0]! + 2n * PERIOD);
      await plan.connect(reporter).chargeUsage(alice.address, 0n, REF);
      expect(await plan.billingLimit(alice.address)).to.equal(0n);
      expect(await plan.billingLimit(dave.address)).to.equal(0n);
    });
  });

  describe("retirement (M8)", () => {
    it("retiring a metered plan still lets the owner bill the cycles that had started, then the subscription is Expired", async () => {
      const { plan, token, merchant, alice, bob, payee, dues } = await networkHelpers.loadFixture(meteredFixture);
      // Alice's cycle 0 ended and waits for its bill; bob's is still running.
      await time.setNextBlockTimestamp(dues[0]!);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.PastDue);
      expect(await plan.statusOf(bob.address)).to.equal(SubscriptionStatus.Active);
      expect(await plan.hasAccess(bob.address)).to.equal(true);
      await expect(plan.connect(merchant).chargeUsage(alice.address, 20_000_000n, REF)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee],
        [-15_000_000n, 15_000_000n],
      );
      // Alice's cycle 1 started at the retirement: nothing more for her.
      expect(await plan.statusOf(alice.address)).to.equal(SubscriptionStatus.Expired);
      expect(await plan.hasAccess(alice.address)).to.equal(false);
      expect(await plan.nextChargeAt(alice.address)).to.equal(0n);
      await time.increaseTo(dues[1]!);
      await expect(plan.connect(merchant).chargeUsage(bob.address, 20_000_000n, REF)).to.emit(plan, "UsageCharged");
      expect(await plan.statusOf(bob.address)).to.equal(SubscriptionStatus.Expired);
      await time.increaseTo(dues[0]! + PERIOD);
      await expect(plan.connect(merchant).chargeUsage(alice.address, 0n, REF)).to.be.revertedWithCustomError(plan, "PlanRetired");
      await expect(plan.connect(merchant).chargeUsage(bob.address, 0n, REF)).to.be.revertedWithCustomError(plan, "PlanRetired");
    });
  });

  describe("the review's exploit, replayed", () => {
    it("a 12-cycle free ride (no allowance, use the cycle, the bill fails, lapse, subscribe again) gets at most one cycle of unpaid access", async () => {
      const { plan, token, reporter, payee, dave } = await networkHelpers.loadFixture(meteredFixture);
      const startedAt = BigInt(await time.latest());
      let access = 0n;
      let refused = 0;
      for (let round = 0; round < 12; round += 1) {
        try {
          await (await plan.connect(dave).subscribe(CAP)).wait();
        } catch (error) {
          expect(revertName(plan.interface, error)).to.equal("UnbilledCycle");
          refused += 1;
        }
        const now = BigInt(await time.latest());
        const end = (await plan.subscriptionOf(dave.address)).nextChargeAt;
        if (end <= now) {
          // Refused: no cycle runs; the rider tries again a cycle later.
          expect(await plan.hasAccess(dave.address)).to.equal(false);
          await time.increaseTo(now + PERIOD + GRACE + 1n);
          continue;
        }
        // Access is monotone between calls and moves only at the cycle's end and after its grace window, so
        // reading it at the last second of each span measures it to the second.
        await time.increaseTo(end - 1n);
        if (await plan.hasAccess(dave.address)) access += end - now;
        await time.increaseTo(end);
        await expect(plan.connect(reporter).chargeUsage(dave.address, 30_000_000n, REF)).to.be.revertedWithCustomError(
          token,
          "ERC20InsufficientAllowance",
        );
        const onCredit = await plan.hasAccess(dave.address);
        await time.increaseTo(end + GRACE);
        if (onCredit && (await plan.hasAccess(dave.address))) access += GRACE + 1n;
        await time.increaseTo(end + GRACE + 1n);
      }
      const elapsed = BigInt(await time.latest()) - startedAt;
      const share = Number((access * 1_000_000n) / elapsed) / 10_000;
      expect(await token.balanceOf(payee.address)).to.equal(0n);
      expect(access, `unpaid access ${access} s of ${elapsed} s (${share}%), ${refused} sign-ups refused`).to.be.at.most(PERIOD);
      expect(refused).to.equal(11);
    });
  });
});

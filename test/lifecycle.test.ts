// A subscription's lifecycle and the plan's: cancellation (rule 4), plan status (rule 7), pause (rule 8),
// trial (rule 9), only the subscriber subscribes (rule 10), and what only the owner may do.
import { expect } from "chai";
import { ZeroHash } from "ethers";
import { network } from "hardhat";

import { ChargeReason, DAY, PlanStatus, SubscriptionStatus } from "../scripts/lib/plans.js";
import {
  balances,
  deployStack,
  fund,
  GRACE,
  PERIOD,
  planEvents,
  PRICE,
  stored,
  subscribe,
  TRIAL,
  ZERO_ADDRESS,
  subscribedStack,
} from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const at = (t: bigint) => time.setNextBlockTimestamp(t);

/** alice subscribed to a 30-day plan without trial: the first period is paid, the next is due at `due`. */
const subscribedFixture = () => subscribedStack(ethers);

/** A plan with a 7-day trial; nobody subscribed yet. */
async function trialFixture() {
  const stack = await deployStack(ethers, { terms: { trialPeriod: TRIAL } });
  return { ...stack, ...stack.actors };
}

describe("lifecycle", () => {
  describe("rule 4: no charge after cancellation; access lasts until the end of the paid time", () => {
    it("cancel emits Cancelled carrying the end of the paid period, and leaves that time in the schedule", async () => {
      const { plan, alice, sub, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(sub.startedAt + 5n * DAY);
      await expect(plan.connect(alice).cancel()).to.emit(plan, "Cancelled").withArgs(alice.address, alice.address, due);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Cancelled));
      expect((await stored(plan, alice.address)).nextChargeAt).to.equal(due);
    });

    it("a cancelled customer keeps access (hasAccess) until the end of the paid period, and loses it exactly then", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(alice).cancel();
      expect(await plan.hasAccess(alice.address)).to.equal(true);
      await time.increaseTo(due - 1n);
      expect(await plan.hasAccess(alice.address)).to.equal(true);
      await time.increaseTo(due);
      expect(await plan.hasAccess(alice.address)).to.equal(false);
    });

    it("after cancel, charge reverts SubscriptionCancelled at the due time, in grace and any period later", async () => {
      const { plan, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(alice).cancel();
      const money = await balances(token, [alice, payee]);
      for (const t of [due, due + GRACE, due + PERIOD, due + 10n * PERIOD]) {
        await at(t);
        await expect(plan.charge(alice.address))
          .to.be.revertedWithCustomError(plan, "SubscriptionCancelled")
          .withArgs(alice.address);
      }
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("after cancel, chargeMany skips the subscriber without a charge or a ChargeFailed", async () => {
      const { plan, planAddress, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(alice).cancel();
      await time.increaseTo(due);
      const money = await balances(token, [alice, payee]);
      expect(await plan.chargeMany.staticCall([alice.address])).to.equal(0n);
      const receipt = await (await plan.chargeMany([alice.address])).wait();
      expect(planEvents(plan, planAddress, receipt!)).to.deep.equal([]);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("cancelFor by the owner cancels with the owner as `by`, and no charge succeeds afterwards", async () => {
      const { plan, alice, merchant, due } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(merchant).cancelFor(alice.address))
        .to.emit(plan, "Cancelled")
        .withArgs(alice.address, merchant.address, due);
      await at(due);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "SubscriptionCancelled")
        .withArgs(alice.address);
    });

    it("cancelFor by anyone but the owner reverts OwnableUnauthorizedAccount", async () => {
      const { plan, alice, payee, stranger } = await networkHelpers.loadFixture(subscribedFixture);
      for (const caller of [stranger, payee, alice]) {
        await expect(plan.connect(caller).cancelFor(alice.address))
          .to.be.revertedWithCustomError(plan, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
      }
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
    });

    it("cancel reverts InvalidSubscriptionStatus when there is nothing to cancel (None, Cancelled, Expired)", async () => {
      const { plan, alice, bob, due } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(bob).cancel())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(bob.address, SubscriptionStatus.None);
      await subscribe(plan, bob);
      await plan.connect(bob).cancel();
      await expect(plan.connect(bob).cancel())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(bob.address, SubscriptionStatus.Cancelled);
      await time.increaseTo(due + GRACE + 1n);
      await expect(plan.connect(alice).cancel())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(alice.address, SubscriptionStatus.Expired);
    });

    it("a past-due subscriber may cancel, and the unpaid period is then never collected", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(due + 1n);
      await expect(plan.connect(alice).cancel()).to.emit(plan, "Cancelled").withArgs(alice.address, alice.address, due);
      await at(due + 2n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "SubscriptionCancelled")
        .withArgs(alice.address);
    });

    it("re-subscribing before the paid time ends restores the old schedule without charging", async () => {
      const { plan, token, alice, payee, sub, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(alice).cancel();
      await at(due - 1n);
      const tx = plan.connect(alice).subscribe(2n * PRICE);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, 2n * PRICE, sub.startedAt, due, false, ZeroHash);
      await expect(tx).to.not.emit(plan, "Charged");
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [0n, 0n]);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
      const after = await stored(plan, alice.address);
      expect(after.nextChargeAt).to.equal(due);
      expect(after.periodsPaid).to.equal(1n);
      // ... and the next period is charged on that schedule.
      await at(due);
      await expect(plan.charge(alice.address)).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, due + PERIOD);
    });

    it("re-subscribing once the paid time has ended charges at once", async () => {
      const { plan, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(alice).cancel();
      await at(due);
      const tx = plan.connect(alice).subscribe(PRICE);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, due, due + PERIOD, false, ZeroHash);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, due + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });

    it("subscribe reverts AlreadySubscribed while a subscription is live", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(alice).subscribe(PRICE))
        .to.be.revertedWithCustomError(plan, "AlreadySubscribed")
        .withArgs(alice.address, SubscriptionStatus.Active);
      await time.increaseTo(due);
      await expect(plan.connect(alice).subscribe(PRICE))
        .to.be.revertedWithCustomError(plan, "AlreadySubscribed")
        .withArgs(alice.address, SubscriptionStatus.PastDue);
    });
  });

  describe("rule 7: plan status", () => {
    it("setStatus(OnHold) emits PlanStatusChanged and refuses new subscriptions with PlanNotActive", async () => {
      const { plan, merchant, bob } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(merchant).setStatus(PlanStatus.OnHold))
        .to.emit(plan, "PlanStatusChanged")
        .withArgs(PlanStatus.Active, PlanStatus.OnHold);
      expect(await plan.status()).to.equal(BigInt(PlanStatus.OnHold));
      await expect(plan.connect(bob).subscribe(PRICE))
        .to.be.revertedWithCustomError(plan, "PlanNotActive")
        .withArgs(PlanStatus.OnHold);
    });

    it("on hold, existing subscriptions are still charged, by charge and by chargeMany", async () => {
      const { plan, token, alice, bob, payee, merchant, due } = await networkHelpers.loadFixture(subscribedFixture);
      const bobSub = await subscribe(plan, bob);
      await plan.connect(merchant).setStatus(PlanStatus.OnHold);
      await at(due);
      await expect(plan.charge(alice.address)).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
      await at(bobSub.nextChargeAt);
      await expect(plan.chargeMany([bob.address])).to.changeTokenBalances(ethers, token, [bob, payee], [-PRICE, PRICE]);
    });

    it("a plan on hold can be made Active again, and then accepts subscriptions", async () => {
      const { plan, merchant, bob } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(merchant).setStatus(PlanStatus.OnHold);
      await expect(plan.connect(merchant).setStatus(PlanStatus.Active))
        .to.emit(plan, "PlanStatusChanged")
        .withArgs(PlanStatus.OnHold, PlanStatus.Active);
      await expect(plan.connect(bob).subscribe(PRICE)).to.emit(plan, "Subscribed");
    });

    it("a retired plan refuses new subscriptions with PlanNotActive(Retired)", async () => {
      const { plan, merchant, bob } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(merchant).setStatus(PlanStatus.Retired))
        .to.emit(plan, "PlanStatusChanged")
        .withArgs(PlanStatus.Active, PlanStatus.Retired);
      await expect(plan.connect(bob).subscribe(PRICE))
        .to.be.revertedWithCustomError(plan, "PlanNotActive")
        .withArgs(PlanStatus.Retired);
    });

    it("a retired plan never charges again: charge reverts PlanRetired at and after the due time", async () => {
      const { plan, token, alice, payee, merchant, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      const money = await balances(token, [alice, payee]);
      for (const t of [due, due + GRACE]) {
        await at(t);
        await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "PlanRetired");
      }
      await time.increaseTo(due + GRACE + 1n);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.PlanRetired), PRICE]);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("a retired plan's chargeMany skips every subscriber without a ChargeFailed", async () => {
      const { plan, planAddress, token, alice, payee, merchant, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      await time.increaseTo(due);
      const money = await balances(token, [alice, payee]);
      expect(await plan.chargeMany.staticCall([alice.address])).to.equal(0n);
      const receipt = await (await plan.chargeMany([alice.address])).wait();
      expect(planEvents(plan, planAddress, receipt!)).to.deep.equal([]);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("on a retired plan, a subscriber keeps the paid time (Active) and is Expired once it ends", async () => {
      const { plan, alice, merchant, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      await time.increaseTo(due - 1n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
      expect(await plan.hasAccess(alice.address)).to.equal(true);
      await time.increaseTo(due);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Expired));
      expect(await plan.hasAccess(alice.address)).to.equal(false);
      expect(await plan.isDue(alice.address)).to.equal(false);
    });

    it("Retired is terminal: any further setStatus reverts InvalidStatusTransition", async () => {
      const { plan, merchant } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      for (const to of [PlanStatus.Active, PlanStatus.OnHold, PlanStatus.Retired]) {
        await expect(plan.connect(merchant).setStatus(to))
          .to.be.revertedWithCustomError(plan, "InvalidStatusTransition")
          .withArgs(PlanStatus.Retired, to);
      }
      expect(await plan.status()).to.equal(BigInt(PlanStatus.Retired));
    });

    it("setStatus to the current status reverts InvalidStatusTransition", async () => {
      const { plan, merchant } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(merchant).setStatus(PlanStatus.Active))
        .to.be.revertedWithCustomError(plan, "InvalidStatusTransition")
        .withArgs(PlanStatus.Active, PlanStatus.Active);
    });

    it("setStatus with a value that is not a plan status reverts InvalidPlanStatus", async () => {
      const { plan, merchant } = await networkHelpers.loadFixture(subscribedFixture);
      for (const bad of [3, 255]) {
        await expect(plan.connect(merchant).setStatus(bad))
          .to.be.revertedWithCustomError(plan, "InvalidPlanStatus")
          .withArgs(bad);
      }
    });

    it("setStatus by anyone but the owner reverts OwnableUnauthorizedAccount", async () => {
      const { plan, stranger, payee } = await networkHelpers.loadFixture(subscribedFixture);
      for (const caller of [stranger, payee]) {
        await expect(plan.connect(caller).setStatus(PlanStatus.Retired))
          .to.be.revertedWithCustomError(plan, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
      }
      expect(await plan.status()).to.equal(BigInt(PlanStatus.Active));
    });
  });

  describe("rule 8: pause", () => {
    it("pause emits Paused and the subscription reports Paused", async () => {
      const { plan, alice, sub } = await networkHelpers.loadFixture(subscribedFixture);
      const p = sub.startedAt + 10n * DAY;
      await at(p);
      await expect(plan.connect(alice).pause()).to.emit(plan, "Paused").withArgs(alice.address, p);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Paused));
      expect((await stored(plan, alice.address)).pausedAt).to.equal(p);
    });

    it("a paused subscription is never charged: charge reverts SubscriptionPaused, at, after and long after its due time", async () => {
      const { plan, token, alice, payee, sub, due } = await networkHelpers.loadFixture(subscribedFixture);
      const p = sub.startedAt + 10n * DAY;
      await at(p);
      await plan.connect(alice).pause();
      const money = await balances(token, [alice, payee]);
      for (const t of [due, due + GRACE, due + GRACE + 1n, due + 12n * PERIOD]) {
        await at(t);
        await expect(plan.charge(alice.address))
          .to.be.revertedWithCustomError(plan, "SubscriptionPaused")
          .withArgs(alice.address, p);
      }
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("resume shifts nextChargeAt by exactly the paused time and emits Resumed with it", async () => {
      const { plan, alice, sub, due } = await networkHelpers.loadFixture(subscribedFixture);
      const p = sub.startedAt + 10n * DAY;
      const pausedFor = 45n * DAY + 17n;
      await at(p);
      await plan.connect(alice).pause();
      await at(p + pausedFor);
      await expect(plan.connect(alice).resume())
        .to.emit(plan, "Resumed")
        .withArgs(alice.address, due + pausedFor, pausedFor);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
      const after = await stored(plan, alice.address);
      expect(after.nextChargeAt).to.equal(due + pausedFor);
      expect(after.pausedAt).to.equal(0n);
    });

    it("after resume, the unused part of the paid period is kept: not due one second early, due on the shifted time", async () => {
      const { plan, token, alice, payee, sub, due } = await networkHelpers.loadFixture(subscribedFixture);
      const p = sub.startedAt + 10n * DAY;
      const pausedFor = 40n * DAY;
      await at(p);
      await plan.connect(alice).pause();
      await at(p + pausedFor);
      await plan.connect(alice).resume();
      const shifted = due + pausedFor;
      await at(shifted - 1n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, shifted, shifted - 1n);
      await at(shifted);
      const tx = plan.charge(alice.address);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, shifted + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });

    it("pause reverts InvalidSubscriptionStatus unless the subscription is Active or Trialing", async () => {
      const { plan, alice, bob, carol, due } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(bob).pause())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(bob.address, SubscriptionStatus.None);
      await subscribe(plan, bob);
      await plan.connect(bob).pause();
      await expect(plan.connect(bob).pause())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(bob.address, SubscriptionStatus.Paused);
      await subscribe(plan, carol);
      await plan.connect(carol).cancel();
      await expect(plan.connect(carol).pause())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(carol.address, SubscriptionStatus.Cancelled);
      await time.increaseTo(due);
      await expect(plan.connect(alice).pause())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(alice.address, SubscriptionStatus.PastDue);
      await time.increaseTo(due + GRACE + 1n);
      await expect(plan.connect(alice).pause())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(alice.address, SubscriptionStatus.Expired);
    });

    it("resume reverts InvalidSubscriptionStatus unless the subscription is Paused", async () => {
      const { plan, alice, bob } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(alice).resume())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(alice.address, SubscriptionStatus.Active);
      await expect(plan.connect(bob).resume())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(bob.address, SubscriptionStatus.None);
    });

    it("cancel while paused gives back the frozen time in paidThrough", async () => {
      const { plan, alice, sub, due } = await networkHelpers.loadFixture(subscribedFixture);
      const p = sub.startedAt + 10n * DAY;
      const pausedFor = 20n * DAY;
      await at(p);
      await plan.connect(alice).pause();
      await at(p + pausedFor);
      await expect(plan.connect(alice).cancel())
        .to.emit(plan, "Cancelled")
        .withArgs(alice.address, alice.address, due + pausedFor);
      const after = await stored(plan, alice.address);
      expect(after.nextChargeAt).to.equal(due + pausedFor);
      expect(after.pausedAt).to.equal(0n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Cancelled));
    });

    it("a pause during the trial extends the trial by the paused time", async () => {
      const { plan, alice } = await networkHelpers.loadFixture(trialFixture);
      const sub = await subscribe(plan, alice);
      const trialEnd = sub.startedAt + TRIAL;
      await at(sub.startedAt + DAY);
      await plan.connect(alice).pause();
      await at(sub.startedAt + DAY + 5n * DAY);
      await expect(plan.connect(alice).resume())
        .to.emit(plan, "Resumed")
        .withArgs(alice.address, trialEnd + 5n * DAY, 5n * DAY);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Trialing));
      await at(trialEnd + 5n * DAY - 1n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, trialEnd + 5n * DAY, trialEnd + 5n * DAY - 1n);
    });
  });

  describe("rule 9: trial", () => {
    it("with a trial, subscribe pulls nothing and the first charge is due at start + trial", async () => {
      const { plan, planAddress, token, alice, payee } = await networkHelpers.loadFixture(trialFixture);
      const t = (BigInt(await time.latest())) + 100n;
      await at(t);
      const tx = plan.connect(alice).subscribe(PRICE);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t, t + TRIAL, true, ZeroHash);
      await expect(tx).to.not.emit(plan, "Charged");
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee, planAddress], [0n, 0n, 0n]);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Trialing));
      expect(await plan.nextChargeAt(alice.address)).to.equal(t + TRIAL);
      expect((await stored(plan, alice.address)).periodsPaid).to.equal(0n);
    });

    it("in the trial, charge reverts NotDue one second before the trial ends", async () => {
      const { plan, alice } = await networkHelpers.loadFixture(trialFixture);
      const sub = await subscribe(plan, alice);
      const trialEnd = sub.startedAt + TRIAL;
      await at(trialEnd - 1n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, trialEnd, trialEnd - 1n);
    });

    it("when the trial ends, charge pulls the first period and schedules the next one period later", async () => {
      const { plan, token, alice, payee } = await networkHelpers.loadFixture(trialFixture);
      const sub = await subscribe(plan, alice);
      const trialEnd = sub.startedAt + TRIAL;
      await at(trialEnd);
      const tx = plan.charge(alice.address);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 0n, PRICE, trialEnd + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
    });

    it("a trial needs no allowance to start; the first charge then reports AllowanceTooLow", async () => {
      const { plan, planAddress, token, dave } = await networkHelpers.loadFixture(trialFixture);
      await fund(token, dave, planAddress, PRICE, 0n);
      const sub = await subscribe(plan, dave);
      expect(await plan.statusOf(dave.address)).to.equal(BigInt(SubscriptionStatus.Trialing));
      await time.increaseTo(sub.startedAt + TRIAL);
      expect(await plan.chargeability(dave.address)).to.deep.equal([false, BigInt(ChargeReason.AllowanceTooLow), PRICE]);
    });

    it("one trial per subscriber: cancelling in the trial and subscribing after it ended is charged at once", async () => {
      const { plan, token, alice, payee } = await networkHelpers.loadFixture(trialFixture);
      const sub = await subscribe(plan, alice);
      await plan.connect(alice).cancel();
      const t = sub.startedAt + TRIAL;
      await at(t);
      const tx = plan.connect(alice).subscribe(PRICE);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t, t + PERIOD, false, ZeroHash);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 0n, PRICE, t + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });

    it("one trial per subscriber: after a trial that lapsed unpaid, subscribing again is charged at once", async () => {
      const { plan, token, alice, payee } = await networkHelpers.loadFixture(trialFixture);
      const sub = await subscribe(plan, alice);
      const t = sub.startedAt + TRIAL + GRACE + 1n;
      await time.increaseTo(t);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Expired));
      await at(t + 1n);
      const tx = plan.connect(alice).subscribe(PRICE);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t + 1n, t + 1n + PERIOD, false, ZeroHash);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });

    it("one trial per subscriber: after paying and cancelling, subscribing again is charged at once", async () => {
      const { plan, token, alice, payee } = await networkHelpers.loadFixture(trialFixture);
      const sub = await subscribe(plan, alice);
      await at(sub.startedAt + TRIAL);
      await plan.charge(alice.address);
      await plan.connect(alice).cancel();
      const t = sub.startedAt + TRIAL + PERIOD + 1n;
      await at(t);
      const tx = plan.connect(alice).subscribe(PRICE);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t, t + PERIOD, false, ZeroHash);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });

    it("re-subscribing inside a cancelled trial resumes the same trial, with the same end and no charge", async () => {
      const { plan, token, alice, payee } = await networkHelpers.loadFixture(trialFixture);
      const sub = await subscribe(plan, alice);
      const trialEnd = sub.startedAt + TRIAL;
      await plan.connect(alice).cancel();
      await at(sub.startedAt + 2n * DAY);
      const tx = plan.connect(alice).subscribe(PRICE);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, sub.startedAt, trialEnd, false, ZeroHash);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [0n, 0n]);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Trialing));
      expect(await plan.nextChargeAt(alice.address)).to.equal(trialEnd);
    });

    it("the trial is per subscriber: another customer still gets theirs", async () => {
      const { plan, alice, bob } = await networkHelpers.loadFixture(trialFixture);
      await subscribe(plan, alice);
      await plan.connect(alice).cancel();
      await expect(plan.connect(bob).subscribe(PRICE)).to.emit(plan, "Subscribed").withArgs(
        bob.address,
        PRICE,
        (v: unknown) => typeof v === "bigint",
        (v: unknown) => typeof v === "bigint",
        true, ZeroHash,
      );
    });
  });

  describe("rule 10: only the subscriber subscribes", () => {
    it("an address that only approved the plan is not subscribed: charge reverts NotSubscribed and nothing moves", async () => {
      const { plan, token, bob, payee } = await networkHelpers.loadFixture(subscribedFixture);
      // bob holds tokens and has approved the plan, but never subscribed.
      const money = await balances(token, [bob, payee]);
      await expect(plan.charge(bob.address)).to.be.revertedWithCustomError(plan, "NotSubscribed").withArgs(bob.address);
      await time.increase(10n * PERIOD);
      await expect(plan.charge(bob.address)).to.be.revertedWithCustomError(plan, "NotSubscribed").withArgs(bob.address);
      expect(await plan.chargeMany.staticCall([bob.address])).to.equal(0n);
      await plan.chargeMany([bob.address]);
      expect(await balances(token, [bob, payee])).to.deep.equal(money);
      expect(await plan.statusOf(bob.address)).to.equal(BigInt(SubscriptionStatus.None));
    });

    it("subscribe takes no subscriber: it subscribes the caller and nobody else", async () => {
      const { plan, token, bob, carol } = await networkHelpers.loadFixture(subscribedFixture);
      expect(plan.interface.getFunction("subscribe").inputs.map((p) => p.type)).to.deep.equal(["uint256"]);
      await expect(plan.connect(carol).subscribe(PRICE)).to.changeTokenBalances(ethers, token, [carol, bob], [-PRICE, 0n]);
      expect(await plan.statusOf(carol.address)).to.equal(BigInt(SubscriptionStatus.Active));
      expect(await plan.statusOf(bob.address)).to.equal(BigInt(SubscriptionStatus.None));
    });

    it("cancel, pause, resume and setMaxAmount act only on the caller's own subscription", async () => {
      const { plan, alice, stranger } = await networkHelpers.loadFixture(subscribedFixture);
      const before = await stored(plan, alice.address);
      await expect(plan.connect(stranger).cancel())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(stranger.address, SubscriptionStatus.None);
      await expect(plan.connect(stranger).pause())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(stranger.address, SubscriptionStatus.None);
      await expect(plan.connect(stranger).resume())
        .to.be.revertedWithCustomError(plan, "InvalidSubscriptionStatus")
        .withArgs(stranger.address, SubscriptionStatus.None);
      await expect(plan.connect(stranger).setMaxAmount(0n))
        .to.be.revertedWithCustomError(plan, "NotSubscribed")
        .withArgs(stranger.address);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
    });
  });

  describe("owner actions", () => {
    it("setPayee emits PayeeChanged and later charges go to the new payee", async () => {
      const { plan, token, alice, payee, newPayee, merchant, due } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(merchant).setPayee(newPayee.address))
        .to.emit(plan, "PayeeChanged")
        .withArgs(payee.address, newPayee.address);
      expect(await plan.payee()).to.equal(newPayee.address);
      await at(due);
      await expect(plan.charge(alice.address)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee, newPayee],
        [-PRICE, 0n, PRICE],
      );
    });

    it("setPayee to the zero address reverts InvalidPayee", async () => {
      const { plan, merchant, payee } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(merchant).setPayee(ZERO_ADDRESS))
        .to.be.revertedWithCustomError(plan, "InvalidPayee")
        .withArgs(ZERO_ADDRESS);
      expect(await plan.payee()).to.equal(payee.address);
    });

    it("setPayee, setKeeper, setStatus and cancelFor by anyone but the owner revert OwnableUnauthorizedAccount", async () => {
      const { plan, alice, payee, stranger, keeper } = await networkHelpers.loadFixture(subscribedFixture);
      for (const caller of [stranger, payee, alice]) {
        const as = plan.connect(caller);
        for (const call of [
          () => as.setPayee(caller.address),
          () => as.setKeeper(keeper.address, true),
          () => as.setStatus(PlanStatus.OnHold),
          () => as.cancelFor(alice.address),
        ]) {
          await expect(call()).to.be.revertedWithCustomError(plan, "OwnableUnauthorizedAccount").withArgs(caller.address);
        }
      }
    });
  });
});

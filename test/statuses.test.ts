// Derived statuses and the views a merchant and a keeper read: statusOf, hasAccess, isDue, amountDue,
// nextChargeAt and chargeability, in every status and at the time boundaries, with no transaction needed to move
// from one status to the next.
import { expect } from "chai";
import { network } from "hardhat";

import { ChargeReason, PlanStatus, SubscriptionStatus } from "../scripts/lib/plans.js";
import type { FixedPricePlan } from "../typechain-types/index.js";
import { deployStack, fund, GRACE, PERIOD, PRICE, subscribe, subscribedStack, TRIAL } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

/** Two plans with the same token: `plan` without trial (alice subscribed), `trialPlan` with a trial. */
const statusesFixture = () => subscribedStack(ethers);

async function trialFixture() {
  const stack = await deployStack(ethers, { terms: { trialPeriod: TRIAL } });
  const sub = await subscribe(stack.plan, stack.actors.alice);
  return { ...stack, ...stack.actors, sub, trialEnd: sub.startedAt + TRIAL };
}

interface Views {
  status: number;
  hasAccess: boolean;
  isDue: boolean;
  amountDue: bigint;
  nextChargeAt: bigint;
  chargeability: [boolean, number];
}

/** Reads every view for `subscriber` and compares with `expected` in one assertion. */
async function expectViews(plan: FixedPricePlan, subscriber: string, expected: Views): Promise<void> {
  const [ok, reason, amount] = await plan.chargeability(subscriber);
  const actual = {
    status: Number(await plan.statusOf(subscriber)),
    hasAccess: await plan.hasAccess(subscriber),
    isDue: await plan.isDue(subscriber),
    amountDue: await plan.amountDue(subscriber),
    nextChargeAt: await plan.nextChargeAt(subscriber),
    chargeability: [ok, Number(reason)],
  };
  expect(actual).to.deep.equal(expected);
  expect(amount).to.equal(PRICE);
}

describe("statuses and views", () => {
  describe("in each status", () => {
    it("None: never subscribed, no access, nothing due, chargeability NotSubscribed", async () => {
      const { plan, bob } = await networkHelpers.loadFixture(statusesFixture);
      await expectViews(plan, bob.address, {
        status: SubscriptionStatus.None,
        hasAccess: false,
        isDue: false,
        amountDue: 0n,
        nextChargeAt: 0n,
        chargeability: [false, ChargeReason.NotSubscribed],
      });
    });

    it("Trialing: access in the trial, the first charge scheduled at the trial end, chargeability NotDue", async () => {
      const { plan, alice, trialEnd } = await networkHelpers.loadFixture(trialFixture);
      await expectViews(plan, alice.address, {
        status: SubscriptionStatus.Trialing,
        hasAccess: true,
        isDue: false,
        amountDue: PRICE,
        nextChargeAt: trialEnd,
        chargeability: [false, ChargeReason.NotDue],
      });
    });

    it("Active: paid up with access, next charge scheduled, chargeability NotDue", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await expectViews(plan, alice.address, {
        status: SubscriptionStatus.Active,
        hasAccess: true,
        isDue: false,
        amountDue: PRICE,
        nextChargeAt: due,
        chargeability: [false, ChargeReason.NotDue],
      });
    });

    it("PastDue: due and unpaid within grace, no access, isDue, chargeability Ok", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await time.increaseTo(due);
      await expectViews(plan, alice.address, {
        status: SubscriptionStatus.PastDue,
        hasAccess: false,
        isDue: true,
        amountDue: PRICE,
        nextChargeAt: due,
        chargeability: [true, ChargeReason.Ok],
      });
    });

    it("Paused: no access and nothing scheduled while paused, chargeability Paused", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await plan.connect(alice).pause();
      await time.increaseTo(due);
      await expectViews(plan, alice.address, {
        status: SubscriptionStatus.Paused,
        hasAccess: false,
        isDue: false,
        amountDue: PRICE,
        nextChargeAt: 0n,
        chargeability: [false, ChargeReason.Paused],
      });
    });

    it("Cancelled: once the paid time is over, no access and nothing due ever again, chargeability Cancelled", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await plan.connect(alice).cancel();
      await time.increaseTo(due);
      await expectViews(plan, alice.address, {
        status: SubscriptionStatus.Cancelled,
        hasAccess: false,
        isDue: false,
        amountDue: 0n,
        nextChargeAt: 0n,
        chargeability: [false, ChargeReason.Cancelled],
      });
    });

    it("Expired: grace passed unpaid, no access, nothing due ever again, chargeability Expired", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await time.increaseTo(due + GRACE + 1n);
      await expectViews(plan, alice.address, {
        status: SubscriptionStatus.Expired,
        hasAccess: false,
        isDue: false,
        amountDue: 0n,
        nextChargeAt: 0n,
        chargeability: [false, ChargeReason.Expired],
      });
    });
  });

  describe("time boundaries, with no transaction in between", () => {
    it("Active one second before due, PastDue at due and at the last second of grace, Expired one second later", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      const steps: [bigint, number, boolean][] = [
        [due - 1n, SubscriptionStatus.Active, false],
        [due, SubscriptionStatus.PastDue, true],
        [due + GRACE, SubscriptionStatus.PastDue, true],
        [due + GRACE + 1n, SubscriptionStatus.Expired, false],
      ];
      for (const [t, status, isDue] of steps) {
        await time.increaseTo(t);
        expect(await plan.statusOf(alice.address)).to.equal(BigInt(status), `statusOf at due${t - due >= 0n ? "+" : ""}${t - due}`);
        expect(await plan.isDue(alice.address)).to.equal(isDue, `isDue at due+${t - due}`);
      }
    });

    it("a trial that ends unpaid is PastDue at its end and Expired after its grace", async () => {
      const { plan, alice, trialEnd } = await networkHelpers.loadFixture(trialFixture);
      await time.increaseTo(trialEnd - 1n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Trialing));
      await time.increaseTo(trialEnd);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.PastDue));
      await time.increaseTo(trialEnd + GRACE + 1n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Expired));
    });

    it("after a charge the subscription is Active again until the next due time", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await time.increaseTo(due);
      await plan.charge(alice.address);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
      expect(await plan.nextChargeAt(alice.address)).to.equal(due + PERIOD);
      expect(await plan.isDue(alice.address)).to.equal(false);
    });
  });

  describe("chargeability reasons", () => {
    it("reports NotSubscribed for an address with an allowance but no subscription", async () => {
      const { plan, bob } = await networkHelpers.loadFixture(statusesFixture);
      expect(await plan.chargeability(bob.address)).to.deep.equal([false, BigInt(ChargeReason.NotSubscribed), PRICE]);
    });

    it("reports NotDue one second before the due time and Ok at it", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await time.increaseTo(due - 1n);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.NotDue), PRICE]);
      await time.increaseTo(due);
      expect(await plan.chargeability(alice.address)).to.deep.equal([true, BigInt(ChargeReason.Ok), PRICE]);
    });

    it("reports Paused for a paused subscription that would otherwise be due", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await plan.connect(alice).pause();
      await time.increaseTo(due);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.Paused), PRICE]);
    });

    it("reports Cancelled for a cancelled subscription that would otherwise be due", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await plan.connect(alice).cancel();
      await time.increaseTo(due);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.Cancelled), PRICE]);
    });

    it("reports Expired one second after the grace window", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await time.increaseTo(due + GRACE + 1n);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.Expired), PRICE]);
    });

    it("reports PlanRetired on a retired plan, even for a subscription that is due", async () => {
      const { plan, alice, merchant, due } = await networkHelpers.loadFixture(statusesFixture);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      await time.increaseTo(due);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.PlanRetired), PRICE]);
      expect(await plan.isDue(alice.address)).to.equal(false);
    });

    it("reports MaxAmountExceeded for a due subscription whose max amount is below the price", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await plan.connect(alice).setMaxAmount(PRICE - 1n);
      await time.increaseTo(due);
      expect(await plan.chargeability(alice.address)).to.deep.equal([
        false,
        BigInt(ChargeReason.MaxAmountExceeded),
        PRICE,
      ]);
    });

    it("reports AllowanceTooLow (approve more) for a due subscription with less allowance than the price", async () => {
      const { plan, planAddress, token, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await token.connect(alice).approve(planAddress, PRICE - 1n);
      await time.increaseTo(due);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.AllowanceTooLow), PRICE]);
      expect(await plan.isDue(alice.address)).to.equal(true);
    });

    it("reports BalanceTooLow (top up) for a due subscription with enough allowance but too little balance", async () => {
      const { plan, token, alice, stranger, due } = await networkHelpers.loadFixture(statusesFixture);
      await token.connect(alice).transfer(stranger.address, (await token.balanceOf(alice.address)) - (PRICE - 1n));
      await time.increaseTo(due);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.BalanceTooLow), PRICE]);
    });

    it("reports AllowanceTooLow first when both allowance and balance are too low", async () => {
      const { plan, planAddress, token, dave } = await networkHelpers.loadFixture(statusesFixture);
      await fund(token, dave, planAddress, PRICE, PRICE);
      const sub = await subscribe(plan, dave);
      await time.increaseTo(sub.nextChargeAt);
      expect(await plan.chargeability(dave.address)).to.deep.equal([false, BigInt(ChargeReason.AllowanceTooLow), PRICE]);
    });

    it("before the due time, warns of what would stop the next charge: MaxAmountExceeded, AllowanceTooLow, BalanceTooLow", async () => {
      const { plan, planAddress, token, alice, stranger, due } = await networkHelpers.loadFixture(statusesFixture);
      // Every transaction below mines one block, one second later: all of them stay before `due`.
      await time.increaseTo(due - 100n);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.NotDue), PRICE]);

      await plan.connect(alice).setMaxAmount(PRICE - 1n);
      expect(await plan.chargeability(alice.address)).to.deep.equal([
        false,
        BigInt(ChargeReason.MaxAmountExceeded),
        PRICE,
      ]);
      await plan.connect(alice).setMaxAmount(PRICE);

      await token.connect(alice).approve(planAddress, PRICE - 1n);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.AllowanceTooLow), PRICE]);
      await token.connect(alice).approve(planAddress, PRICE);

      await token.connect(alice).transfer(stranger.address, (await token.balanceOf(alice.address)) - 1n);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.BalanceTooLow), PRICE]);
      // None of these is a reason to call `isDue` true early.
      expect(await plan.isDue(alice.address)).to.equal(false);
    });

    it("reports Ok exactly when a charge then succeeds", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(statusesFixture);
      await time.increaseTo(due + GRACE - 1n);
      expect(await plan.chargeability(alice.address)).to.deep.equal([true, BigInt(ChargeReason.Ok), PRICE]);
      await expect(plan.charge(alice.address)).to.emit(plan, "Charged");
    });

    it("chargeabilityMany reports, for each subscriber of a mixed list, the reason chargeability reports", async () => {
      const { plan, planAddress, token, alice, bob, carol, dave, due } = await networkHelpers.loadFixture(statusesFixture);
      await subscribe(plan, bob);
      await subscribe(plan, carol);
      await plan.connect(carol).cancel();
      await token.connect(bob).approve(planAddress, 0n);
      await time.increaseTo(due + 1n);
      const list = [alice.address, bob.address, carol.address, dave.address, alice.address];
      const many = await plan.chargeabilityMany(list);
      expect(many).to.deep.equal([
        BigInt(ChargeReason.Ok),
        BigInt(ChargeReason.AllowanceTooLow),
        BigInt(ChargeReason.Cancelled),
        BigInt(ChargeReason.NotSubscribed),
        BigInt(ChargeReason.Ok),
      ]);
      for (const [i, who] of list.entries()) expect((await plan.chargeability(who))[1]).to.equal(many[i]);
    });
  });

  describe("a retired plan", () => {
    it("reports amountDue 0 for a subscriber still in their paid time: no further charge can happen (IPlan NatSpec)", async () => {
      const { plan, alice, merchant } = await networkHelpers.loadFixture(statusesFixture);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      // Still inside the paid period: the subscriber keeps access (Active), but no charge can ever happen.
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
      expect(await plan.hasAccess(alice.address)).to.equal(true);
      expect(await plan.isDue(alice.address)).to.equal(false);
      expect(await plan.amountDue(alice.address)).to.equal(0n);
    });

    it("reports nextChargeAt 0 for a subscriber still in their paid time: no further charge is scheduled (IPlan NatSpec)", async () => {
      const { plan, alice, merchant } = await networkHelpers.loadFixture(statusesFixture);
      await plan.connect(merchant).setStatus(PlanStatus.Retired);
      expect(await plan.nextChargeAt(alice.address)).to.equal(0n);
    });
  });
});

// `charge` on a fixed plan: frequency and the anchored schedule (rule 1), the per-cycle cap and where the
// money goes (rules 2 and 11), the max amount (rule 3), the grace window (rule 5), allowance not escrow
// (rule 6) and atomic failures (rule 12).
import { expect } from "chai";
import { ZeroHash } from "ethers";
import { network } from "hardhat";

import { ChargeReason, SubscriptionStatus } from "../scripts/lib/plans.js";
import {
  balances,
  deployStack,
  fund,
  FUNDS,
  GRACE,
  PERIOD,
  PRICE,
  stored,
  subscribe,
  UINT96_MAX,
  subscribedStack,
} from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

/** The next transaction is mined at `t` (unix seconds). */
const at = (t: bigint) => time.setNextBlockTimestamp(t);

/** alice subscribed to a 30-day plan without trial: the first period is paid, the next is due at `due`. */
const subscribedFixture = () => subscribedStack(ethers);

describe("charge", () => {
  describe("rule 1: at most one charge per period, on an anchored schedule", () => {
    it("charge reverts NotDue one second before the period ends", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(due - 1n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, due, due - 1n);
    });

    it("charge right after subscribing reverts NotDue: subscribe already paid the first period", async () => {
      const { plan, alice, sub } = await networkHelpers.loadFixture(subscribedFixture);
      await at(sub.startedAt + 1n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, sub.startedAt + PERIOD, sub.startedAt + 1n);
    });

    it("charge succeeds exactly at nextChargeAt and moves it forward by exactly one period", async () => {
      const { plan, planAddress, token, alice, payee, keeper, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(due);
      const tx = plan.connect(keeper).charge(alice.address);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, due + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee, keeper, planAddress], [-PRICE, PRICE, 0n, 0n]);
      const after = await stored(plan, alice.address);
      expect(after.nextChargeAt).to.equal(due + PERIOD);
      expect(after.periodsPaid).to.equal(2n);
    });

    it("charge returns the amount pulled", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await time.increaseTo(due);
      expect(await plan.charge.staticCall(alice.address)).to.equal(PRICE);
    });

    it("a second charge in the same period reverts NotDue, even one second after the first", async () => {
      const { plan, token, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(due);
      await plan.charge(alice.address);
      const before = await token.balanceOf(alice.address);
      await at(due + 1n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, due + PERIOD, due + 1n);
      expect(await token.balanceOf(alice.address)).to.equal(before);
    });

    it("a charge at the last second of grace moves nextChargeAt one period from the missed due time, not from now", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(due + GRACE);
      await expect(plan.charge(alice.address)).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, due + PERIOD);
      expect((await stored(plan, alice.address)).nextChargeAt).to.equal(due + PERIOD);

      // The following period is due on the original anchor, not GRACE later.
      await at(due + PERIOD - 1n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "NotDue")
        .withArgs(alice.address, due + PERIOD, due + PERIOD - 1n);
      await at(due + PERIOD);
      await expect(plan.charge(alice.address))
        .to.emit(plan, "Charged")
        .withArgs(alice.address, 2n, PRICE, due + 2n * PERIOD);
    });

    it("a year of charges made at varying lateness pulls exactly one price per period with no drift", async () => {
      const { plan, token, alice, payee, sub } = await networkHelpers.loadFixture(subscribedFixture);
      const aliceBefore = await token.balanceOf(alice.address);
      const payeeBefore = await token.balanceOf(payee.address);
      const lateness = [0n, GRACE, 1n, GRACE - 1n, 3_600n, 0n, GRACE, 12_345n, 0n, 1n, GRACE, 2n * 3_600n];
      for (const [i, late] of lateness.entries()) {
        const dueAt = sub.startedAt + BigInt(i + 1) * PERIOD;
        await at(dueAt + late);
        await expect(plan.charge(alice.address))
          .to.emit(plan, "Charged")
          .withArgs(alice.address, BigInt(i + 1), PRICE, dueAt + PERIOD);
      }
      const periods = BigInt(lateness.length);
      expect(aliceBefore - (await token.balanceOf(alice.address))).to.equal(periods * PRICE);
      expect((await token.balanceOf(payee.address)) - payeeBefore).to.equal(periods * PRICE);
      const after = await stored(plan, alice.address);
      expect(after.nextChargeAt).to.equal(sub.startedAt + (periods + 1n) * PERIOD);
      expect(after.periodsPaid).to.equal(periods + 1n);
    });
  });

  describe("rule 5: a due payment can be collected only within the grace window", () => {
    it("charge succeeds at the last second of the grace window", async () => {
      const { plan, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(due + GRACE);
      await expect(plan.charge(alice.address)).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });

    it("charge reverts SubscriptionExpired one second after the grace window", async () => {
      const { plan, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(due + GRACE + 1n);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "SubscriptionExpired")
        .withArgs(alice.address, due + GRACE, due + GRACE + 1n);
    });

    it("a lapsed subscription reports Expired and can never be charged again", async () => {
      const { plan, token, alice, due } = await networkHelpers.loadFixture(subscribedFixture);
      await time.increaseTo(due + GRACE + 1n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Expired));
      expect(await plan.isDue(alice.address)).to.equal(false);
      expect(await plan.chargeability(alice.address)).to.deep.equal([false, BigInt(ChargeReason.Expired), PRICE]);
      const before = await token.balanceOf(alice.address);
      // Neither at the next period's due time, nor inside its would-be grace window, nor years later.
      for (const t of [due + PERIOD, due + PERIOD + GRACE, due + 40n * PERIOD]) {
        await at(t);
        await expect(plan.charge(alice.address))
          .to.be.revertedWithCustomError(plan, "SubscriptionExpired")
          .withArgs(alice.address, due + GRACE, t);
      }
      expect(await token.balanceOf(alice.address)).to.equal(before);
    });

    it("a lapsed subscriber may subscribe afresh, which charges at once and starts a new schedule", async () => {
      const { plan, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      const t = due + 10n * PERIOD;
      await at(t);
      const tx = plan.connect(alice).subscribe(PRICE);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t, t + PERIOD, false, ZeroHash);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, t + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
      const after = await stored(plan, alice.address);
      expect(after.startedAt).to.equal(t);
      expect(after.nextChargeAt).to.equal(t + PERIOD);
    });
  });

  describe("rules 2 and 11: exactly the price, only to the payee", () => {
    it("each charge pulls exactly the price, whatever the subscriber's max amount and allowance", async () => {
      const { plan, token, bob, payee, stranger } = await networkHelpers.loadFixture(subscribedFixture);
      const sub = await subscribe(plan, bob, UINT96_MAX);
      await at(sub.nextChargeAt);
      await expect(plan.connect(stranger).charge(bob.address)).to.changeTokenBalances(
        ethers,
        token,
        [bob, payee, stranger],
        [-PRICE, PRICE, 0n],
      );
    });

    it("subscribe pulls exactly the price and pays it to the payee", async () => {
      const { plan, planAddress, token, bob, payee } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(bob).subscribe(5n * PRICE)).to.changeTokenBalances(
        ethers,
        token,
        [bob, payee, planAddress],
        [-PRICE, PRICE, 0n],
      );
    });

    it("the caller cannot choose a recipient or an amount: charge takes only the subscriber, chargeMany only a list", async () => {
      const { plan } = await networkHelpers.loadFixture(subscribedFixture);
      const charge = plan.interface.getFunction("charge");
      const chargeMany = plan.interface.getFunction("chargeMany");
      expect(charge.inputs.map((p) => p.type)).to.deep.equal(["address"]);
      expect(chargeMany.inputs.map((p) => p.type)).to.deep.equal(["address[]"]);
    });

    it("a merchant-side caller (owner) charging pays the payee, not itself", async () => {
      const { plan, token, alice, payee, merchant, due } = await networkHelpers.loadFixture(subscribedFixture);
      await at(due);
      await expect(plan.connect(merchant).charge(alice.address)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee, merchant],
        [-PRICE, PRICE, 0n],
      );
    });
  });

  describe("rule 3: never more than the subscriber's max amount", () => {
    it("subscribe reverts MaxAmountExceeded when the max amount is below the price, and pulls nothing", async () => {
      const { plan, token, bob } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(bob).subscribe(PRICE - 1n))
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(PRICE, PRICE - 1n);
      expect(await token.balanceOf(bob.address)).to.equal(FUNDS);
      expect(await plan.statusOf(bob.address)).to.equal(BigInt(SubscriptionStatus.None));
    });

    it("subscribe stores a max amount above the uint96 maximum as that maximum", async () => {
      const { plan, bob } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(bob).subscribe(2n ** 200n))
        .to.emit(plan, "Subscribed")
        .withArgs(bob.address, UINT96_MAX, anyTime, anyTime, false, ZeroHash);
      expect((await stored(plan, bob.address)).maxAmount).to.equal(UINT96_MAX);
    });

    it("setMaxAmount emits MaxAmountUpdated with the old and the new cap", async () => {
      const { plan, alice } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(alice).setMaxAmount(3n * PRICE))
        .to.emit(plan, "MaxAmountUpdated")
        .withArgs(alice.address, PRICE, 3n * PRICE);
      expect((await stored(plan, alice.address)).maxAmount).to.equal(3n * PRICE);
    });

    it("setMaxAmount reverts NotSubscribed for an address that never subscribed", async () => {
      const { plan, bob } = await networkHelpers.loadFixture(subscribedFixture);
      await expect(plan.connect(bob).setMaxAmount(PRICE))
        .to.be.revertedWithCustomError(plan, "NotSubscribed")
        .withArgs(bob.address);
    });

    it("after the max amount is lowered below the price, charge reverts MaxAmountExceeded(price, max) and chargeability says so", async () => {
      const { plan, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(alice).setMaxAmount(PRICE - 1n);
      await time.increaseTo(due);
      expect(await plan.chargeability(alice.address)).to.deep.equal([
        false,
        BigInt(ChargeReason.MaxAmountExceeded),
        PRICE,
      ]);
      expect(await plan.isDue(alice.address)).to.equal(false);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(PRICE, PRICE - 1n);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("raising the max amount back to the price lets the due charge go through", async () => {
      const { plan, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      await plan.connect(alice).setMaxAmount(0n);
      await time.increaseTo(due);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "MaxAmountExceeded");
      await expect(plan.connect(alice).setMaxAmount(PRICE))
        .to.emit(plan, "MaxAmountUpdated")
        .withArgs(alice.address, 0n, PRICE);
      expect(await plan.chargeability(alice.address)).to.deep.equal([true, BigInt(ChargeReason.Ok), PRICE]);
      await expect(plan.charge(alice.address)).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });
  });

  describe("rule 6: allowance, not escrow", () => {
    it("requiredAllowance(n) is the price times n", async () => {
      const { plan } = await networkHelpers.loadFixture(subscribedFixture);
      for (const n of [0n, 1n, 2n, 12n, 1_000n]) {
        expect(await plan.requiredAllowance(n)).to.equal(PRICE * n);
      }
    });

    it("an allowance of requiredAllowance(3) pays exactly three periods; the fourth fails for want of allowance", async () => {
      const { plan, planAddress, token, dave } = await networkHelpers.loadFixture(subscribedFixture);
      await fund(token, dave, planAddress, FUNDS, await plan.requiredAllowance(3n));
      const sub = await subscribe(plan, dave);
      for (const k of [1n, 2n]) {
        await at(sub.startedAt + k * PERIOD);
        await plan.charge(dave.address);
      }
      expect(await token.allowance(dave.address, planAddress)).to.equal(0n);
      expect(await token.balanceOf(dave.address)).to.equal(FUNDS - 3n * PRICE);
      await time.increaseTo(sub.startedAt + 3n * PERIOD);
      expect(await plan.chargeability(dave.address)).to.deep.equal([false, BigInt(ChargeReason.AllowanceTooLow), PRICE]);
      await expect(plan.charge(dave.address))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(planAddress, 0n, PRICE);
    });

    it("the plan holds no tokens after subscribe, charge, a refused charge and a batch", async () => {
      const { plan, planAddress, token, alice, bob, carol, due } = await networkHelpers.loadFixture(subscribedFixture);
      expect(await token.balanceOf(planAddress)).to.equal(0n);
      await subscribe(plan, bob);
      expect(await token.balanceOf(planAddress)).to.equal(0n);
      await at(due);
      await plan.charge(alice.address);
      expect(await token.balanceOf(planAddress)).to.equal(0n);
      await token.connect(carol).approve(planAddress, 0n);
      await expect(plan.connect(carol).subscribe(PRICE)).to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance");
      await time.increase(PERIOD);
      await plan.chargeMany([alice.address, bob.address, carol.address]);
      expect(await token.balanceOf(planAddress)).to.equal(0n);
    });
  });

  describe("rule 12: a charge whose transfer fails changes nothing", () => {
    it("with too little allowance, charge reverts and leaves the subscription and balances as they were", async () => {
      const { plan, planAddress, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      await token.connect(alice).approve(planAddress, PRICE - 1n);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(planAddress, PRICE - 1n, PRICE);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.PastDue));
    });

    it("with too little balance, charge reverts and leaves the subscription and balances as they were", async () => {
      const { plan, token, alice, stranger, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      const keep = PRICE - 1n;
      await token.connect(alice).transfer(stranger.address, (await token.balanceOf(alice.address)) - keep);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientBalance")
        .withArgs(alice.address, keep, PRICE);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("after a failed charge is fixed within grace, the charge goes through on the original schedule", async () => {
      const { plan, planAddress, token, alice, payee, due } = await networkHelpers.loadFixture(subscribedFixture);
      await token.connect(alice).approve(planAddress, 0n);
      await time.increaseTo(due);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance");
      await token.connect(alice).approve(planAddress, PRICE);
      await at(due + GRACE);
      const tx = plan.charge(alice.address);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, due + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });

    it("without a trial, subscribe reverts when the first period cannot be pulled, and creates nothing", async () => {
      const { plan, planAddress, token, dave } = await networkHelpers.loadFixture(subscribedFixture);
      await fund(token, dave, planAddress, PRICE, PRICE - 1n);
      await expect(plan.connect(dave).subscribe(PRICE))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(planAddress, PRICE - 1n, PRICE);
      expect(await plan.statusOf(dave.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await stored(plan, dave.address)).to.deep.equal({
        maxAmount: 0n,
        nextChargeAt: 0n,
        startedAt: 0n,
        pausedAt: 0n,
        periodsPaid: 0n,
        flags: 0n,
      });
      expect(await token.balanceOf(dave.address)).to.equal(PRICE);
    });
  });
});

/** Any bigint time (for event arguments the test does not pin). */
function anyTime(value: unknown): boolean {
  return typeof value === "bigint" && value > 0n;
}

// Who may call charge: anyone on an open plan, only the owner and authorized keepers on a
// keeper-restricted one; and the keeper fee, paid out of the price, never on top of it.
import { expect } from "chai";
import { network } from "hardhat";

import { ChargeReason } from "../scripts/lib/plans.js";
import { deployStack, PERIOD, PRICE, subscribe } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const FEE_BPS = 250n;
const FEE = (PRICE * FEE_BPS) / 10_000n;

/** A keeper-restricted plan; alice and bob subscribed and due. */
async function restrictedFixture() {
  const stack = await deployStack(ethers, { terms: { keeperRestricted: true } });
  const a = await subscribe(stack.plan, stack.actors.alice);
  const b = await subscribe(stack.plan, stack.actors.bob);
  await time.increaseTo(b.nextChargeAt);
  return { ...stack, ...stack.actors, aliceDue: a.nextChargeAt };
}

/** An open plan without keeper fee; alice subscribed and due. */
async function openFixture() {
  const stack = await deployStack(ethers);
  const a = await subscribe(stack.plan, stack.actors.alice);
  await time.increaseTo(a.nextChargeAt);
  return { ...stack, ...stack.actors };
}

/** An open plan paying callers 2.5% of each charge; alice and bob subscribed and due. */
async function feeFixture() {
  const stack = await deployStack(ethers, { terms: { keeperFeeBps: FEE_BPS } });
  const a = await subscribe(stack.plan, stack.actors.alice);
  const b = await subscribe(stack.plan, stack.actors.bob);
  await time.increaseTo(b.nextChargeAt);
  return { ...stack, ...stack.actors, aliceDue: a.nextChargeAt };
}

describe("keepers", () => {
  describe("keeper-restricted plan", () => {
    it("charge by a caller who is neither owner nor keeper reverts NotAuthorizedKeeper(caller)", async () => {
      const { plan, alice, payee, stranger, keeper } = await networkHelpers.loadFixture(restrictedFixture);
      for (const caller of [stranger, keeper, payee, alice]) {
        await expect(plan.connect(caller).charge(alice.address))
          .to.be.revertedWithCustomError(plan, "NotAuthorizedKeeper")
          .withArgs(caller.address);
      }
      expect(await plan.isKeeper(stranger.address)).to.equal(false);
    });

    it("chargeMany by a caller who is neither owner nor keeper reverts NotAuthorizedKeeper(caller)", async () => {
      const { plan, alice, bob, stranger } = await networkHelpers.loadFixture(restrictedFixture);
      await expect(plan.connect(stranger).chargeMany([alice.address, bob.address]))
        .to.be.revertedWithCustomError(plan, "NotAuthorizedKeeper")
        .withArgs(stranger.address);
    });

    it("the owner may charge", async () => {
      const { plan, token, alice, bob, payee, merchant } = await networkHelpers.loadFixture(restrictedFixture);
      expect(await plan.isKeeper(merchant.address)).to.equal(true);
      await expect(plan.connect(merchant).charge(alice.address)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee],
        [-PRICE, PRICE],
      );
      await expect(plan.connect(merchant).chargeMany([bob.address])).to.changeTokenBalances(
        ethers,
        token,
        [bob, payee],
        [-PRICE, PRICE],
      );
    });

    it("setKeeper authorizes a keeper with KeeperAuthorized, and that keeper may charge", async () => {
      const { plan, token, alice, bob, payee, merchant, keeper } = await networkHelpers.loadFixture(restrictedFixture);
      await expect(plan.connect(merchant).setKeeper(keeper.address, true))
        .to.emit(plan, "KeeperAuthorized")
        .withArgs(keeper.address, true);
      expect(await plan.isKeeper(keeper.address)).to.equal(true);
      await expect(plan.connect(keeper).charge(alice.address)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee, keeper],
        [-PRICE, PRICE, 0n],
      );
      await expect(plan.connect(keeper).chargeMany([bob.address])).to.emit(plan, "Charged");
    });

    it("setKeeper(false) revokes: the revoked keeper's charge reverts NotAuthorizedKeeper", async () => {
      const { plan, alice, merchant, keeper } = await networkHelpers.loadFixture(restrictedFixture);
      await plan.connect(merchant).setKeeper(keeper.address, true);
      await expect(plan.connect(merchant).setKeeper(keeper.address, false))
        .to.emit(plan, "KeeperAuthorized")
        .withArgs(keeper.address, false);
      expect(await plan.isKeeper(keeper.address)).to.equal(false);
      await expect(plan.connect(keeper).charge(alice.address))
        .to.be.revertedWithCustomError(plan, "NotAuthorizedKeeper")
        .withArgs(keeper.address);
    });

    it("customers still subscribe, cancel and pause themselves on a keeper-restricted plan", async () => {
      const { plan, alice, carol } = await networkHelpers.loadFixture(restrictedFixture);
      await expect(plan.connect(carol).subscribe(PRICE)).to.emit(plan, "Subscribed");
      await expect(plan.connect(carol).pause()).to.emit(plan, "Paused");
      await expect(plan.connect(alice).cancel()).to.emit(plan, "Cancelled");
    });
  });

  describe("open plan", () => {
    it("anyone may charge a due subscriber, and earns nothing without a keeper fee", async () => {
      const { plan, token, alice, payee, stranger } = await networkHelpers.loadFixture(openFixture);
      expect(await plan.keeperRestricted()).to.equal(false);
      await expect(plan.connect(stranger).charge(alice.address)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee, stranger],
        [-PRICE, PRICE, 0n],
      );
    });
  });

  describe("keeper fee", () => {
    it("charge pays the caller price × bps / 10000 and the payee the rest; the subscriber pays exactly the price", async () => {
      const { plan, token, alice, payee, keeper, aliceDue } = await networkHelpers.loadFixture(feeFixture);
      const tx = plan.connect(keeper).charge(alice.address);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee, keeper], [-PRICE, PRICE - FEE, FEE]);
      await expect(tx).to.emit(plan, "KeeperFeePaid").withArgs(keeper.address, alice.address, FEE);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, aliceDue + PERIOD);
    });

    it("chargeMany pays the caller one fee per subscriber charged", async () => {
      const { plan, token, alice, bob, carol, payee, keeper } = await networkHelpers.loadFixture(feeFixture);
      // carol is not subscribed: skipped, no fee.
      const tx = plan.connect(keeper).chargeMany([alice.address, bob.address, carol.address]);
      await expect(tx).to.changeTokenBalances(
        ethers,
        token,
        [alice, bob, carol, payee, keeper],
        [-PRICE, -PRICE, 0n, 2n * (PRICE - FEE), 2n * FEE],
      );
      await expect(tx).to.emit(plan, "KeeperFeePaid").withArgs(keeper.address, bob.address, FEE);
    });

    it("subscribe pays no keeper fee: the payee receives the whole first period", async () => {
      const { plan, token, carol, payee } = await networkHelpers.loadFixture(feeFixture);
      const tx = plan.connect(carol).subscribe(PRICE);
      await expect(tx).to.changeTokenBalances(ethers, token, [carol, payee], [-PRICE, PRICE]);
      await expect(tx).to.not.emit(plan, "KeeperFeePaid");
    });

    it("a failed pull pays no fee", async () => {
      const { plan, planAddress, token, alice, payee, keeper } = await networkHelpers.loadFixture(feeFixture);
      await token.connect(alice).approve(planAddress, 0n);
      const tx = plan.connect(keeper).chargeMany([alice.address]);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee, keeper], [0n, 0n, 0n]);
      await expect(tx).to.not.emit(plan, "KeeperFeePaid");
    });

    it("a wallet approving only the payee's share is refused: charge reverts InsufficientFunds(AllowanceTooLow) and nothing moves", async () => {
      const { plan, planAddress, token, alice, payee, keeper, aliceDue } = await networkHelpers.loadFixture(feeFixture);
      await token.connect(alice).approve(planAddress, PRICE - FEE);
      const tx = plan.connect(keeper).charge(alice.address);
      await expect(tx)
        .to.be.revertedWithCustomError(plan, "InsufficientFunds")
        .withArgs(alice.address, ChargeReason.AllowanceTooLow);
      const [ok, reason] = await plan.chargeability(alice.address);
      expect([ok, reason]).to.deep.equal([false, BigInt(ChargeReason.AllowanceTooLow)]);
      expect(await plan.nextChargeAt(alice.address)).to.equal(aliceDue);
      expect(await token.balanceOf(payee.address)).to.equal(PRICE * 2n); // the two subscribe charges only
    });

    it("in a batch, a wallet holding only the payee's share fails alone with ChargeFailed(BalanceTooLow) and pays nothing", async () => {
      const { plan, token, alice, bob, payee, keeper } = await networkHelpers.loadFixture(feeFixture);
      const spare = (await token.balanceOf(alice.address)) - (PRICE - FEE);
      await token.connect(alice).transfer(payee.address, spare);
      const tx = plan.connect(keeper).chargeMany([alice.address, bob.address]);
      await expect(tx).to.emit(plan, "ChargeFailed").withArgs(alice.address, ChargeReason.BalanceTooLow);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, keeper], [0n, -PRICE, FEE]);
    });

    it("the fee is rounded down, never against the payee", async () => {
      const price = 1_000_003n;
      const stack = await deployStack(ethers, { terms: { price, keeperFeeBps: 7n } });
      const { alice, payee, keeper } = stack.actors;
      const sub = await subscribe(stack.plan, alice, price);
      await time.setNextBlockTimestamp(sub.nextChargeAt);
      const fee = 700n; // 1_000_003 × 7 / 10_000 = 700.0021
      await expect(stack.plan.connect(keeper).charge(alice.address)).to.changeTokenBalances(
        ethers,
        stack.token,
        [alice, payee, keeper],
        [-price, price - fee, fee],
      );
    });

    it("on a keeper-restricted plan with a fee, the authorized keeper earns the fee", async () => {
      const stack = await deployStack(ethers, { terms: { keeperRestricted: true, keeperFeeBps: 1_000n } });
      const { alice, payee, keeper, merchant } = stack.actors;
      const sub = await subscribe(stack.plan, alice);
      await stack.plan.connect(merchant).setKeeper(keeper.address, true);
      await time.setNextBlockTimestamp(sub.nextChargeAt);
      await expect(stack.plan.connect(keeper).charge(alice.address)).to.changeTokenBalances(
        ethers,
        stack.token,
        [alice, payee, keeper],
        [-PRICE, PRICE - PRICE / 10n, PRICE / 10n],
      );
    });
  });
});

// Odd tokens: one that returns nothing (USDT-style), one that returns false instead of reverting, one
// with a blocklist (USDC/USDT-style), and one whose views revert. A failed pull changes nothing (rule 12)
// and, in a batch, fails alone.
import { expect } from "chai";
import { network } from "hardhat";

import { ChargeReason, createMeteredPlan, meteredTerms, SubscriptionStatus } from "../scripts/lib/plans.js";
import { balances, deployStack, fund, GRACE, PERIOD, PRICE, stored, subscribe } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

/** alice and bob subscribed on a plan charging `kind`; both due at `due`. */
async function stackWith(kind: "NoReturnToken" | "FalseReturnToken" | "BlocklistToken") {
  const stack = await deployStack(ethers, { token: kind });
  const a = await subscribe(stack.plan, stack.actors.alice);
  const b = await subscribe(stack.plan, stack.actors.bob);
  return { ...stack, ...stack.actors, aliceDue: a.nextChargeAt, due: b.nextChargeAt };
}

const noReturnFixture = () => stackWith("NoReturnToken");
const falseReturnFixture = () => stackWith("FalseReturnToken");
async function blocklistFixture() {
  const stack = await stackWith("BlocklistToken");
  return { ...stack, blocklist: await ethers.getContractAt("BlocklistToken", stack.tokenAddress) };
}

describe("tokens", () => {
  describe("a token that returns nothing (USDT-style)", () => {
    it("subscribe pulls the first period", async () => {
      const { plan, token, carol, payee } = await networkHelpers.loadFixture(noReturnFixture);
      await expect(plan.connect(carol).subscribe(PRICE)).to.changeTokenBalances(ethers, token, [carol, payee], [-PRICE, PRICE]);
      expect(await plan.statusOf(carol.address)).to.equal(BigInt(SubscriptionStatus.Active));
    });

    it("charge and chargeMany pull one period each", async () => {
      const { plan, token, alice, bob, payee, aliceDue, due } = await networkHelpers.loadFixture(noReturnFixture);
      await time.setNextBlockTimestamp(due);
      const tx = plan.charge(alice.address);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, aliceDue + PERIOD);
      await expect(plan.chargeMany([alice.address, bob.address])).to.changeTokenBalances(
        ethers,
        token,
        [alice, bob, payee],
        [0n, -PRICE, PRICE],
      );
    });

    it("a charge it refuses reverts and changes nothing; in a batch it is ChargeFailed(AllowanceTooLow)", async () => {
      const { plan, planAddress, token, alice, bob, payee, due } = await networkHelpers.loadFixture(noReturnFixture);
      await token.connect(alice).approve(planAddress, PRICE - 1n);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      await expect(plan.charge(alice.address)).to.revert(ethers);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      const tx = plan.chargeMany([alice.address, bob.address]);
      await expect(tx).to.emit(plan, "ChargeFailed").withArgs(alice.address, ChargeReason.AllowanceTooLow);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, payee], [0n, -PRICE, PRICE]);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
    });
  });

  describe("a token that returns false instead of reverting", () => {
    it("subscribe and charge work when it returns true", async () => {
      const { plan, token, alice, carol, payee, due } = await networkHelpers.loadFixture(falseReturnFixture);
      await expect(plan.connect(carol).subscribe(PRICE)).to.changeTokenBalances(ethers, token, [carol, payee], [-PRICE, PRICE]);
      await time.setNextBlockTimestamp(due);
      await expect(plan.charge(alice.address)).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });

    it("a charge whose transfer returns false reverts SafeERC20FailedOperation(token) and changes nothing", async () => {
      const { plan, planAddress, token, tokenAddress, alice, payee, due } =
        await networkHelpers.loadFixture(falseReturnFixture);
      await token.connect(alice).approve(planAddress, 0n);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "SafeERC20FailedOperation")
        .withArgs(tokenAddress);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("a subscribe whose transfer returns false reverts SafeERC20FailedOperation(token) and creates nothing", async () => {
      const { plan, planAddress, token, tokenAddress, carol } = await networkHelpers.loadFixture(falseReturnFixture);
      await token.connect(carol).approve(planAddress, 0n);
      await expect(plan.connect(carol).subscribe(PRICE))
        .to.be.revertedWithCustomError(plan, "SafeERC20FailedOperation")
        .withArgs(tokenAddress);
      expect(await plan.statusOf(carol.address)).to.equal(BigInt(SubscriptionStatus.None));
    });

    it("in a batch, a transfer that returns false is ChargeFailed with its reason, changes nothing, and the others are charged", async () => {
      const { plan, planAddress, token, alice, bob, carol, stranger, payee } =
        await networkHelpers.loadFixture(falseReturnFixture);
      await subscribe(plan, carol);
      await token.connect(alice).approve(planAddress, PRICE - 1n);
      await token.connect(carol).transfer(stranger.address, await token.balanceOf(carol.address));
      const aliceBefore = await stored(plan, alice.address);
      const carolBefore = await stored(plan, carol.address);
      await time.setNextBlockTimestamp(carolBefore.nextChargeAt);
      const tx = plan.chargeMany([alice.address, bob.address, carol.address]);
      await expect(tx).to.emit(plan, "ChargeFailed").withArgs(alice.address, ChargeReason.AllowanceTooLow);
      await expect(tx).to.emit(plan, "ChargeFailed").withArgs(carol.address, ChargeReason.BalanceTooLow);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, carol, payee], [0n, -PRICE, 0n, PRICE]);
      expect(await stored(plan, alice.address)).to.deep.equal(aliceBefore);
      expect(await stored(plan, carol.address)).to.deep.equal(carolBefore);
    });
  });

  describe("a token with a blocklist", () => {
    it("a charge of a blocklisted subscriber reverts AddressBlocked and changes nothing", async () => {
      const { plan, token, blocklist, alice, payee, due } = await networkHelpers.loadFixture(blocklistFixture);
      await blocklist.setBlocked(alice.address, true);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(blocklist, "AddressBlocked")
        .withArgs(alice.address);
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("a blocklisted subscriber fails alone in a batch, unchanged, and is charged once unblocked within grace", async () => {
      const { plan, token, blocklist, alice, bob, payee, aliceDue, due } = await networkHelpers.loadFixture(blocklistFixture);
      await blocklist.setBlocked(alice.address, true);
      const before = await stored(plan, alice.address);
      await time.setNextBlockTimestamp(due);
      const tx = plan.chargeMany([alice.address, bob.address]);
      await expect(tx).to.emit(plan, "ChargeFailed").withArgs(alice.address, ChargeReason.TransferFailed);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, payee], [0n, -PRICE, PRICE]);
      expect(await stored(plan, alice.address)).to.deep.equal(before);

      await blocklist.setBlocked(alice.address, false);
      await time.setNextBlockTimestamp(aliceDue + GRACE);
      await expect(plan.chargeMany([alice.address, bob.address]))
        .to.emit(plan, "Charged")
        .withArgs(alice.address, 1n, PRICE, aliceDue + PERIOD);
    });

    it("a blocklisted payee makes every charge fail until the owner sets a new payee; then charges go there", async () => {
      const { plan, token, blocklist, alice, bob, payee, newPayee, merchant, aliceDue, due } =
        await networkHelpers.loadFixture(blocklistFixture);
      await blocklist.setBlocked(payee.address, true);
      await time.increaseTo(due);
      const before = [await stored(plan, alice.address), await stored(plan, bob.address)];
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(blocklist, "AddressBlocked")
        .withArgs(payee.address);
      const failed = plan.chargeMany([alice.address, bob.address]);
      await expect(failed).to.emit(plan, "ChargeFailed").withArgs(alice.address, ChargeReason.TransferFailed);
      await expect(failed).to.emit(plan, "ChargeFailed").withArgs(bob.address, ChargeReason.TransferFailed);
      await expect(failed).to.changeTokenBalances(ethers, token, [alice, bob, payee], [0n, 0n, 0n]);
      expect([await stored(plan, alice.address), await stored(plan, bob.address)]).to.deep.equal(before);

      await expect(plan.connect(merchant).setPayee(newPayee.address))
        .to.emit(plan, "PayeeChanged")
        .withArgs(payee.address, newPayee.address);
      const tx = plan.chargeMany([alice.address, bob.address]);
      await expect(tx).to.changeTokenBalances(
        ethers,
        token,
        [alice, bob, payee, newPayee],
        [-PRICE, -PRICE, 0n, 2n * PRICE],
      );
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, aliceDue + PERIOD);
    });

    it("a keeper fee the token refuses is not paid; the charge stands and the subscriber pays only the payee's share", async () => {
      const stack = await deployStack(ethers, { token: "BlocklistToken", terms: { keeperFeeBps: 1_000n } });
      const { alice, payee, keeper } = stack.actors;
      const blocklist = await ethers.getContractAt("BlocklistToken", stack.tokenAddress);
      const sub = await subscribe(stack.plan, alice);
      await blocklist.setBlocked(keeper.address, true);
      await time.setNextBlockTimestamp(sub.nextChargeAt);
      const share = PRICE - PRICE / 10n;
      const tx = stack.plan.connect(keeper).charge(alice.address);
      await expect(tx).to.changeTokenBalances(ethers, stack.token, [alice, payee, keeper], [-share, share, 0n]);
      await expect(tx).to.emit(stack.plan, "Charged").withArgs(alice.address, 1n, share, sub.nextChargeAt + PERIOD);
      await expect(tx).to.not.emit(stack.plan, "KeeperFeePaid");
    });
  });

  describe("a token whose allowance and balanceOf views revert", () => {
    async function brokenViewsFixture() {
      const stack = await deployStack(ethers, { token: "BrokenViewsToken", terms: { keeperFeeBps: 500n } });
      const sub = await subscribe(stack.plan, stack.actors.alice);
      const broken = await ethers.getContractAt("BrokenViewsToken", stack.tokenAddress);
      const { plan: metered } = await createMeteredPlan(ethers, stack.factory, stack.actors.merchant, meteredTerms(stack.tokenAddress, stack.actors.payee.address));
      await fund(stack.token, stack.actors.bob, await metered.getAddress());
      await (await metered.connect(stack.actors.bob).subscribe(PRICE)).wait();
      // Both due: alice's period on the fixed plan and bob's cycle on the metered one (which started later).
      return { ...stack, ...stack.actors, broken, metered, due: sub.nextChargeAt, meteredDue: (await metered.subscriptionOf(stack.actors.bob.address)).nextChargeAt };
    }

    it("funds checks report TransferFailed (never a guess): chargeability, a fee plan's charge (InsufficientFunds), a batch, a metered bill", async () => {
      const { plan, metered, broken, token, alice, bob, merchant, due, meteredDue } = await networkHelpers.loadFixture(brokenViewsFixture);
      await time.increaseTo(meteredDue);
      for (const views of [1, 2]) {
        await broken.setBrokenViews(views); // 1: allowance reverts; 2: balanceOf reverts
        expect((await plan.chargeability(alice.address))[1], `views ${views}`).to.equal(BigInt(ChargeReason.TransferFailed));
        await expect(plan.charge(alice.address))
          .to.be.revertedWithCustomError(plan, "InsufficientFunds")
          .withArgs(alice.address, ChargeReason.TransferFailed);
        await expect(plan.chargeMany([alice.address])).to.emit(plan, "ChargeFailed").withArgs(alice.address, ChargeReason.TransferFailed);
        expect((await metered.usageChargeability(bob.address, 1n))[1]).to.equal(BigInt(ChargeReason.TransferFailed));
      }
      await broken.setBrokenViews(0);
      expect((await stored(plan, alice.address)).nextChargeAt).to.equal(due);
      await expect(plan.charge(alice.address)).to.changeTokenBalance(ethers, token, alice, -PRICE);
      await expect(metered.connect(merchant).chargeUsage(bob.address, 1n, ethers.ZeroHash)).to.emit(metered, "UsageCharged");
    });
  });
});

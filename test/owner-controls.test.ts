// What the owner (the merchant) may and may not do, on a fixed and a metered plan: block an address from
// subscribing or resuming without touching its live subscription (`setBlocked`); never point the payee at
// an address that could not pass the tokens on (the plan itself, the token, zero), neither at creation
// nor later; never renounce ownership; and hand over a plan whose new owner starts with no keepers and no
// reporters. Also: retiring a metered plan still lets the cycle that had started be billed.
import { expect } from "chai";
import { encodeBytes32String, getCreateAddress } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { network } from "hardhat";

import { createMeteredPlan, createPlan, fixedTerms, meteredTerms, PlanStatus, SubscriptionStatus } from "../scripts/lib/plans.js";
import type { FixedPricePlan, MeteredPlan } from "../typechain-types/index.js";
import { balances, deployStack, fund, FUNDS, GRACE, PERIOD, PRICE, stored, ZERO_ADDRESS } from "./helpers/stack.js";
import { signPermit, signSubscribe, signSubscribeWithRef } from "./helpers/sign-up-signatures.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const HOUR = 3_600n;
/** The max amount subscribers set on the metered plan (its cap is 100.000000 a cycle), and a usage. */
const MAX = 50_000_000n;
const USAGE = 20_000_000n;
const REF = encodeBytes32String("ref-1");

type Kind = "fixed" | "metered";
interface Target {
  kind: Kind;
  plan: FixedPricePlan | MeteredPlan;
  address: string;
  /** The max amount a subscriber sets here: the price on the fixed plan. */
  max: bigint;
}

/**
 * One token and one merchant; a fixed plan without trial (`plan`) and a metered plan (`metered`, keeper as
 * reporter), same payee. alice, bob, carol and dave hold FUNDS and have approved both plans for FUNDS;
 * nobody is subscribed.
 */
async function world() {
  const stack = await deployStack(ethers, { funded: ["alice", "bob", "carol", "dave"] });
  const { merchant, payee, keeper, alice, bob, carol, dave } = stack.actors;
  const { plan: metered } = await createMeteredPlan(ethers, stack.factory, merchant, meteredTerms(stack.tokenAddress, payee.address));
  const meteredAddress = await metered.getAddress();
  for (const account of [alice, bob, carol, dave]) await fund(stack.token, account, meteredAddress, 0n, FUNDS);
  await metered.connect(merchant).setReporter(keeper.address, true);
  const targets: Target[] = [
    { kind: "fixed", plan: stack.plan, address: stack.planAddress, max: PRICE },
    { kind: "metered", plan: metered, address: meteredAddress, max: MAX },
  ];
  return { ...stack, ...stack.actors, reporter: keeper, metered, meteredAddress, targets };
}

/** `world` with a keeper-restricted fixed plan (`restricted`, keeper authorized) that alice joined, due now,
 * and alice on the metered plan with her first cycle ended. */
async function handOverWorld() {
  const w = await world();
  const { merchant, keeper, alice, payee, token, tokenAddress, factory, metered } = w;
  const { plan: restricted } = await createPlan(ethers, factory, merchant, fixedTerms(tokenAddress, payee.address, { keeperRestricted: true }));
  const restrictedAddress = await restricted.getAddress();
  await fund(token, alice, restrictedAddress, 0n, FUNDS);
  await restricted.connect(merchant).setKeeper(keeper.address, true);
  await restricted.connect(alice).subscribe(PRICE);
  await metered.connect(alice).subscribe(MAX);
  // Both are due: the later of the two due times (a second or so apart).
  await time.increaseTo((await stored(metered, alice.address)).nextChargeAt);
  return { ...w, restricted, restrictedAddress, buyer: w.newPayee };
}

/** Bills one period of `subscriber` on `target` as `biller` (fixed: `charge`; metered: `chargeUsage`). */
function bill(target: Target, biller: HardhatEthersSigner, subscriber: string) {
  return target.kind === "fixed"
    ? (target.plan as FixedPricePlan).connect(biller).charge(subscriber)
    : (target.plan as MeteredPlan).connect(biller).chargeUsage(subscriber, USAGE, REF);
}

describe("owner controls", () => {
  // ------------------------------------------------------------------------------------------------
  describe("setBlocked: keeping an address out", () => {
    it("only the owner may block or unblock: anyone else (a stranger, the subscriber) reverts OwnableUnauthorizedAccount, on a fixed and a metered plan", async () => {
      const { targets, alice, stranger } = await networkHelpers.loadFixture(world);
      for (const { kind, plan } of targets) {
        for (const caller of [stranger, alice]) {
          for (const blocked of [true, false]) {
            await expect(plan.connect(caller).setBlocked(alice.address, blocked), kind)
              .to.be.revertedWithCustomError(plan, "OwnableUnauthorizedAccount")
              .withArgs(caller.address);
          }
        }
        expect(await plan.isBlocked(alice.address), kind).to.equal(false);
      }
    });

    it("a blocked address cannot subscribe by any path: subscribe, subscribeWithRef, subscribeWithPermit(AndRef), subscribeBySig(WithRef) all revert SubscriberBlocked(subscriber); nothing moves, no nonce is used, on a fixed and a metered plan", async () => {
      const { targets, token, merchant, alice, keeper: relayer, payee } = await networkHelpers.loadFixture(world);
      for (const { kind, plan, address, max } of targets) {
        await expect(plan.connect(merchant).setBlocked(alice.address, true), kind)
          .to.emit(plan, "SubscriberBlockUpdated")
          .withArgs(alice.address, true);
        expect(await plan.isBlocked(alice.address), kind).to.equal(true);

        const deadline = BigInt(await time.latest()) + HOUR;
        const auth = { subscriber: alice.address, maxAmount: max, nonce: await plan.nonces(alice.address), deadline, ref: REF };
        const bySig = await signSubscribe(ethers, alice, address, auth);
        const bySigWithRef = await signSubscribeWithRef(ethers, alice, address, auth);
        // A permit for another allowance than the one in place: a reverted sign-up must undo it too.
        const permit = await signPermit(ethers, token, alice, address, 7n * PRICE, deadline);
        const money = await balances(token, [alice, payee]);
        const as = plan.connect(alice);
        for (const [path, call] of [
          ["subscribe", () => as.subscribe(max)],
          ["subscribeWithRef", () => as.subscribeWithRef(max, REF)],
          ["subscribeWithPermit", () => as.subscribeWithPermit(max, 7n * PRICE, deadline, permit.v, permit.r, permit.s)],
          ["subscribeWithPermitAndRef", () => as.subscribeWithPermitAndRef(max, REF, 7n * PRICE, deadline, permit.v, permit.r, permit.s)],
          ["subscribeBySig", () => plan.connect(relayer).subscribeBySig(alice.address, max, deadline, bySig)],
          ["subscribeBySigWithRef", () => plan.connect(relayer).subscribeBySigWithRef(alice.address, max, REF, deadline, bySigWithRef)],
        ] as const) {
          await expect(call(), `${kind} ${path}`).to.be.revertedWithCustomError(plan, "SubscriberBlocked").withArgs(alice.address);
        }
        expect(await plan.statusOf(alice.address), kind).to.equal(BigInt(SubscriptionStatus.None));
        expect(await plan.nonces(alice.address), kind).to.equal(0n);
        expect(await token.allowance(alice.address, address), kind).to.equal(FUNDS);
        expect(await balances(token, [alice, payee]), kind).to.deep.equal(money);
      }
    });

    it("cancelFor then setBlocked keeps a cancelled subscriber out: subscribing again inside the paid (metered: billable) time reverts SubscriberBlocked instead of resuming, on a fixed and a metered plan", async () => {
      const { targets, merchant, alice } = await networkHelpers.loadFixture(world);
      for (const { kind, plan, max } of targets) {
        await plan.connect(alice).subscribe(max);
        await plan.connect(merchant).cancelFor(alice.address);
        await plan.connect(merchant).setBlocked(alice.address, true);
        const before = await stored(plan, alice.address);
        for (const t of [before.nextChargeAt - 1n, before.nextChargeAt + GRACE + 1n]) {
          await time.setNextBlockTimestamp(t);
          await expect(plan.connect(alice).subscribe(max), kind).to.be.revertedWithCustomError(plan, "SubscriberBlocked").withArgs(alice.address);
        }
        expect(await plan.statusOf(alice.address), kind).to.equal(BigInt(SubscriptionStatus.Cancelled));
        expect(await stored(plan, alice.address), kind).to.deep.equal(before);
      }
    });

    it("blocking moves no money and does not end a live subscription: status, schedule and access unchanged, still billed as normal until cancelled, on a fixed and a metered plan", async () => {
      const { targets, token, merchant, alice, reporter, payee } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, max } = target;
        await plan.connect(alice).subscribe(max);
        const before = await stored(plan, alice.address);
        const status = await plan.statusOf(alice.address);
        const access = await plan.hasAccess(alice.address);
        expect(access, kind).to.equal(true);
        const block = plan.connect(merchant).setBlocked(alice.address, true);
        await expect(block, kind).to.changeTokenBalances(ethers, token, [alice, payee, merchant], [0n, 0n, 0n]);
        expect(await plan.statusOf(alice.address), kind).to.equal(status);
        expect(await plan.hasAccess(alice.address), kind).to.equal(access);
        expect(await plan.nextChargeAt(alice.address), kind).to.equal(before.nextChargeAt);
        const after = await stored(plan, alice.address);
        expect({ ...after, flags: 0n }, kind).to.deep.equal({ ...before, flags: 0n });

        // Billed at the due time as any subscriber is, and again a period later.
        const amount = kind === "fixed" ? PRICE : USAGE;
        for (const dueAt of [before.nextChargeAt, before.nextChargeAt + PERIOD]) {
          await time.increaseTo(dueAt);
          await expect(bill(target, reporter, alice.address), kind).to.changeTokenBalances(ethers, token, [alice, payee], [-amount, amount]);
        }
        expect((await stored(plan, alice.address)).periodsPaid, kind).to.equal(before.periodsPaid + 2n);
        // The subscriber may still cancel; after that nothing is billed.
        await plan.connect(alice).cancel();
        await time.increaseTo(before.nextChargeAt + 2n * PERIOD);
        await expect(bill(target, reporter, alice.address), kind).to.be.revertedWithCustomError(plan, "SubscriptionCancelled");
      }
    });

    it("a blocked subscriber who paused cannot resume (SubscriberBlocked); once unblocked they can, on a fixed and a metered plan", async () => {
      const { targets, merchant, alice } = await networkHelpers.loadFixture(world);
      for (const { kind, plan, max } of targets) {
        await plan.connect(alice).subscribe(max);
        await plan.connect(alice).pause();
        await plan.connect(merchant).setBlocked(alice.address, true);
        const before = await stored(plan, alice.address);
        await expect(plan.connect(alice).resume(), kind).to.be.revertedWithCustomError(plan, "SubscriberBlocked").withArgs(alice.address);
        expect(await plan.statusOf(alice.address), kind).to.equal(BigInt(SubscriptionStatus.Paused));
        expect(await stored(plan, alice.address), kind).to.deep.equal(before);
        await plan.connect(merchant).setBlocked(alice.address, false);
        await expect(plan.connect(alice).resume(), kind).to.emit(plan, "Resumed");
        expect(await plan.statusOf(alice.address), kind).to.equal(BigInt(SubscriptionStatus.Active));
      }
    });

    it("unblocking restores sign-up: setBlocked(false) emits SubscriberBlockUpdated(subscriber, false) and the address subscribes as any other, on a fixed and a metered plan", async () => {
      const { targets, merchant, alice, bob } = await networkHelpers.loadFixture(world);
      for (const { kind, plan, max } of targets) {
        // A never-subscribed address and one the merchant cancelled.
        await plan.connect(bob).subscribe(max);
        await plan.connect(merchant).cancelFor(bob.address);
        for (const who of [alice, bob]) {
          await plan.connect(merchant).setBlocked(who.address, true);
          await expect(plan.connect(who).subscribe(max), kind).to.be.revertedWithCustomError(plan, "SubscriberBlocked");
          await expect(plan.connect(merchant).setBlocked(who.address, false), kind)
            .to.emit(plan, "SubscriberBlockUpdated")
            .withArgs(who.address, false);
          expect(await plan.isBlocked(who.address), kind).to.equal(false);
          await expect(plan.connect(who).subscribe(max), kind).to.emit(plan, "Subscribed");
          expect(await plan.hasAccess(who.address), kind).to.equal(true);
        }
      }
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("the payee: never an address that could not pass the tokens on", () => {
    it("setPayee(the plan itself) reverts InvalidPayee(plan): the payee is unchanged and the next charge still reaches it, on a fixed and a metered plan", async () => {
      const { targets, token, merchant, alice, reporter, payee } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address, max } = target;
        await plan.connect(alice).subscribe(max);
        await expect(plan.connect(merchant).setPayee(address), kind).to.be.revertedWithCustomError(plan, "InvalidPayee").withArgs(address);
        expect(await plan.payee(), kind).to.equal(payee.address);
        await time.increaseTo((await stored(plan, alice.address)).nextChargeAt);
        const amount = kind === "fixed" ? PRICE : USAGE;
        await expect(bill(target, reporter, alice.address), kind).to.changeTokenBalances(ethers, token, [alice, payee], [-amount, amount]);
        expect(await token.balanceOf(address), kind).to.equal(0n);
      }
    });

    it("setPayee(the token's address) and setPayee(zero) revert InvalidPayee(that address); an ordinary address is accepted (PayeeChanged)", async () => {
      const { targets, tokenAddress, merchant, payee, newPayee } = await networkHelpers.loadFixture(world);
      for (const { kind, plan } of targets) {
        for (const bad of [tokenAddress, ZERO_ADDRESS]) {
          await expect(plan.connect(merchant).setPayee(bad), kind).to.be.revertedWithCustomError(plan, "InvalidPayee").withArgs(bad);
        }
        expect(await plan.payee(), kind).to.equal(payee.address);
        await expect(plan.connect(merchant).setPayee(newPayee.address), kind)
          .to.emit(plan, "PayeeChanged")
          .withArgs(payee.address, newPayee.address);
      }
    });

    it("createPlan refuses a payee equal to the token: InvalidPayee(token), for fixed and metered terms", async () => {
      const { factory, tokenAddress, merchant } = await networkHelpers.loadFixture(world);
      const count = await factory.planCount();
      for (const terms of [fixedTerms(tokenAddress, tokenAddress), meteredTerms(tokenAddress, tokenAddress)]) {
        await expect(factory.connect(merchant).createPlan(terms)).to.be.revertedWithCustomError(factory, "InvalidPayee").withArgs(tokenAddress);
      }
      expect(await factory.planCount()).to.equal(count);
    });

    it("createPlan refuses a payee equal to the plan's own (predicted) address: InvalidPayee(plan), for fixed and metered terms; the next plan does land at that address", async () => {
      const { factory, tokenAddress, merchant, payee } = await networkHelpers.loadFixture(world);
      const [fixedDeployer, meteredDeployer] = await factory.deployers();
      for (const [deployer, terms] of [
        [fixedDeployer, (p: string) => fixedTerms(tokenAddress, p)],
        [meteredDeployer, (p: string) => meteredTerms(tokenAddress, p)],
      ] as const) {
        // Each deployer creates plans with CREATE: the next plan's address follows from its nonce.
        const nonce = await ethers.provider.getTransactionCount(deployer);
        const next = getCreateAddress({ from: deployer, nonce });
        await expect(factory.connect(merchant).createPlan(terms(next))).to.be.revertedWithCustomError(factory, "InvalidPayee").withArgs(next);
        // The prediction was right: with an ordinary payee the plan is created at exactly that address.
        expect(await factory.connect(merchant).createPlan.staticCall(terms(payee.address))).to.equal(next);
        await expect(factory.connect(merchant).createPlan(terms(payee.address))).to.emit(factory, "PlanCreated");
        expect(await factory.isPlan(next)).to.equal(true);
      }
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("ownership cannot be renounced", () => {
    /** A real transaction calling `renounceOwnership()` on `plan` (the ABI marks it a view now, so ethers
     * would only eth_call it). */
    function renounce(target: Target, from: { sendTransaction: (tx: { to: string; data: string }) => Promise<unknown> }) {
      return from.sendTransaction({ to: target.address, data: target.plan.interface.encodeFunctionData("renounceOwnership") });
    }

    it("renounceOwnership by the owner reverts OwnershipCannotBeRenounced and the owner stays; by anyone else OwnableUnauthorizedAccount, on a fixed and a metered plan", async () => {
      const { targets, merchant, stranger, alice } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan } = target;
        await expect(renounce(target, merchant), kind).to.revert(ethers);
        expect(await plan.owner(), kind).to.equal(merchant.address);
        await expect(renounce(target, merchant), kind).to.be.revertedWithCustomError(plan, "OwnershipCannotBeRenounced");
        for (const caller of [stranger, alice]) {
          await expect(renounce(target, caller), kind).to.be.revertedWithCustomError(plan, "OwnableUnauthorizedAccount").withArgs(caller.address);
        }
        expect(await plan.owner(), kind).to.equal(merchant.address);
        expect(await plan.pendingOwner(), kind).to.equal(ZERO_ADDRESS);
        // The owner keeps every power: it still changes the status.
        await expect(plan.connect(merchant).setStatus(PlanStatus.OnHold), kind).to.emit(plan, "PlanStatusChanged");
      }
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("a new owner starts with no keepers and no reporters", () => {
    it("after transferOwnership and acceptOwnership, the old owner's keeper cannot charge on a keeper-restricted plan (NotAuthorizedKeeper), nor the old owner; the new owner charges and can authorize a keeper afresh", async () => {
      const { restricted, token, merchant, keeper, buyer, alice, payee, stranger } = await networkHelpers.loadFixture(handOverWorld);
      await restricted.connect(merchant).transferOwnership(buyer.address);
      // A pending transfer changes nothing yet.
      expect(await restricted.isKeeper(keeper.address)).to.equal(true);
      await restricted.connect(buyer).acceptOwnership();
      expect(await restricted.owner()).to.equal(buyer.address);

      const before = await stored(restricted, alice.address);
      const money = await balances(token, [alice, payee]);
      for (const old of [keeper, merchant]) {
        await expect(restricted.connect(old).chargeMany([alice.address]))
          .to.be.revertedWithCustomError(restricted, "NotAuthorizedKeeper")
          .withArgs(old.address);
        await expect(restricted.connect(old).charge(alice.address))
          .to.be.revertedWithCustomError(restricted, "NotAuthorizedKeeper")
          .withArgs(old.address);
        expect(await restricted.isKeeper(old.address), old.address).to.equal(false);
      }
      expect(await stored(restricted, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);

      // The new owner authorizes its own keeper, which charges.
      expect(await restricted.isKeeper(buyer.address)).to.equal(true);
      await expect(restricted.connect(buyer).setKeeper(stranger.address, true)).to.emit(restricted, "KeeperAuthorized").withArgs(stranger.address, true);
      await expect(restricted.connect(stranger).chargeMany([alice.address])).to.emit(restricted, "Charged");
    });

    it("after transferOwnership and acceptOwnership, the old owner's reporter cannot bill (chargeUsage, chargeUsageMany: NotAuthorizedReporter), nor the old owner; nothing is billed; the new owner bills and can authorize a reporter afresh", async () => {
      const { metered, token, merchant, reporter, buyer, alice, payee, stranger } = await networkHelpers.loadFixture(handOverWorld);
      await metered.connect(merchant).transferOwnership(buyer.address);
      expect(await metered.isReporter(reporter.address)).to.equal(true);
      await metered.connect(buyer).acceptOwnership();

      const before = await stored(metered, alice.address);
      const money = await balances(token, [alice, payee]);
      for (const old of [reporter, merchant]) {
        // Up to the subscriber's max amount: what an inherited reporter could bill.
        await expect(metered.connect(old).chargeUsage(alice.address, MAX, REF))
          .to.be.revertedWithCustomError(metered, "NotAuthorizedReporter")
          .withArgs(old.address);
        await expect(metered.connect(old).chargeUsageMany([alice.address], [MAX], [REF]))
          .to.be.revertedWithCustomError(metered, "NotAuthorizedReporter")
          .withArgs(old.address);
        expect(await metered.isReporter(old.address), old.address).to.equal(false);
      }
      expect(await stored(metered, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);

      await expect(metered.connect(buyer).setReporter(stranger.address, true)).to.emit(metered, "ReporterAuthorized").withArgs(stranger.address, true);
      expect(await metered.isReporter(stranger.address)).to.equal(true);
      await expect(metered.connect(stranger).chargeUsage(alice.address, USAGE, REF)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee],
        [-USAGE, USAGE],
      );
    });

    it("handing the plan back to the old owner does not revive the keepers and reporters it had authorized", async () => {
      const { restricted, metered, merchant, keeper, reporter, buyer, alice } = await networkHelpers.loadFixture(handOverWorld);
      for (const plan of [restricted, metered] as const) {
        await plan.connect(merchant).transferOwnership(buyer.address);
        await plan.connect(buyer).acceptOwnership();
        await plan.connect(buyer).transferOwnership(merchant.address);
        await plan.connect(merchant).acceptOwnership();
        expect(await plan.owner()).to.equal(merchant.address);
      }
      await expect(restricted.connect(keeper).charge(alice.address)).to.be.revertedWithCustomError(restricted, "NotAuthorizedKeeper");
      await expect(metered.connect(reporter).chargeUsage(alice.address, USAGE, REF)).to.be.revertedWithCustomError(metered, "NotAuthorizedReporter");
      expect(await restricted.isKeeper(keeper.address)).to.equal(false);
      expect(await metered.isReporter(reporter.address)).to.equal(false);
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("retiring a metered plan", () => {
    it("a cycle that had started before the plan was retired can still be billed inside its grace window; the cycle after it (started after retirement) is refused PlanRetired", async () => {
      const { metered, token, merchant, reporter, alice, payee } = await networkHelpers.loadFixture(world);
      await metered.connect(alice).subscribe(MAX);
      const { nextChargeAt: cycleEnd } = await stored(metered, alice.address);
      await time.increaseTo(cycleEnd - PERIOD / 2n);
      await metered.connect(merchant).setStatus(PlanStatus.Retired);
      await time.increaseTo(cycleEnd + GRACE - 1n);
      const tx = metered.connect(reporter).chargeUsage(alice.address, USAGE, REF);
      await expect(tx).to.emit(metered, "UsageCharged").withArgs(alice.address, 0n, USAGE, 0n, USAGE, cycleEnd + PERIOD, REF);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-USAGE, USAGE]);
      // Her next cycle would have started after the retirement: it never runs, and cannot be billed.
      expect(await metered.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Expired));
      await time.increaseTo(cycleEnd + PERIOD);
      await expect(metered.connect(reporter).chargeUsage(alice.address, USAGE, REF)).to.be.revertedWithCustomError(metered, "PlanRetired");
    });
  });
});

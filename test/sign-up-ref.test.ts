// Signed sign-up, on a fixed and a metered plan: the merchant's `ref` carried by every sign-up path into
// `Subscribed` (6th argument, indexed), bound by the `SubscribeWithRef` signature so that a relayer cannot
// change it; and the lifetime of an authorization nobody submitted yet, which dies with a cancel
// (`cancel`, `cancelFor`) or with `revokeAuthorizations`. Replays of used signatures, other plans and
// chains, and ERC-1271 wallets are in gasless.test.ts.
import { expect } from "chai";
import { encodeBytes32String, keccak256, toUtf8Bytes, ZeroHash } from "ethers";
import { network } from "hardhat";

import { createMeteredPlan, DAY, meteredTerms, SubscriptionStatus } from "../scripts/lib/plans.js";
import type { FixedPricePlan, MeteredPlan } from "../typechain-types/index.js";
import { balances, deployStack, fund, FUNDS, GRACE, PERIOD, PRICE, stored } from "./helpers/stack.js";
import {
  signPermit,
  signSubscribe,
  signSubscribeWithRef,
  SUBSCRIBE_TYPE,
  SUBSCRIBE_WITH_REF_TYPE,
} from "./helpers/sign-up-signatures.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const HOUR = 3_600n;
/** The max amount subscribers set on the metered plan (its cap is 100.000000 a cycle). */
const MAX = 50_000_000n;
const REF_A = encodeBytes32String("checkout-A");
const REF_B = encodeBytes32String("checkout-B");
/** Far enough ahead that only the nonce can stop a late submission. */
const LONG = 100n * DAY;

type Kind = "fixed" | "metered";
interface Target {
  kind: Kind;
  plan: FixedPricePlan | MeteredPlan;
  address: string;
  /** The max amount a subscriber sets here: the price on the fixed plan. */
  max: bigint;
  /** What a sign-up pulls at once: the first period on the fixed plan (no trial), nothing on the metered. */
  paidNow: bigint;
}

/**
 * One token and one merchant; a fixed plan without trial and a metered plan, same payee. alice, bob and
 * carol hold FUNDS and have approved both plans for FUNDS; dave holds FUNDS and has approved neither
 * (for the permit paths). Nobody is subscribed. `relayer` (the keeper account) submits signatures; the
 * stranger is the metered plan's reporter.
 */
async function world() {
  const stack = await deployStack(ethers);
  const { merchant, payee, alice, bob, carol, dave, keeper, stranger } = stack.actors;
  const { plan: metered } = await createMeteredPlan(ethers, stack.factory, merchant, meteredTerms(stack.tokenAddress, payee.address));
  const meteredAddress = await metered.getAddress();
  for (const account of [alice, bob, carol]) await fund(stack.token, account, meteredAddress, 0n, FUNDS);
  await stack.token.mint(dave.address, FUNDS);
  await metered.connect(merchant).setReporter(stranger.address, true);
  const targets: Target[] = [
    { kind: "fixed", plan: stack.plan, address: stack.planAddress, max: PRICE, paidNow: PRICE },
    { kind: "metered", plan: metered, address: meteredAddress, max: MAX, paidNow: 0n },
  ];
  return { ...stack, ...stack.actors, relayer: keeper, reporter: stranger, metered, meteredAddress, targets };
}

const now = async () => BigInt(await time.latest());

/** A `Subscribe` authorization of `subscriber` with their current nonce on `target`. */
async function auth(target: Target, subscriber: string, validFor: bigint = HOUR) {
  return {
    subscriber,
    maxAmount: target.max,
    nonce: await target.plan.nonces(subscriber),
    deadline: (await now()) + validFor,
  };
}

/** A `SubscribeWithRef` authorization of `subscriber` with their current nonce on `target`. */
async function refAuth(target: Target, subscriber: string, ref: string, validFor: bigint = HOUR) {
  return { ...(await auth(target, subscriber, validFor)), ref };
}

describe("sign-up refs and the lifetime of signed authorizations", () => {
  // ------------------------------------------------------------------------------------------------
  describe("the ref: carried by every sign-up path into Subscribed", () => {
    it("SUBSCRIBE_WITH_REF_TYPEHASH is keccak256 of the SubscribeWithRef type string (and SUBSCRIBE_TYPEHASH still of Subscribe's), on both plan kinds", async () => {
      const { targets } = await networkHelpers.loadFixture(world);
      for (const { kind, plan } of targets) {
        expect(await plan.SUBSCRIBE_WITH_REF_TYPEHASH(), kind).to.equal(keccak256(toUtf8Bytes(SUBSCRIBE_WITH_REF_TYPE)));
        expect(await plan.SUBSCRIBE_TYPEHASH(), kind).to.equal(keccak256(toUtf8Bytes(SUBSCRIBE_TYPE)));
      }
    });

    it("subscribeWithRef, subscribeWithPermitAndRef and subscribeBySigWithRef each emit Subscribed with their ref as 6th argument, on a fixed and a metered plan", async () => {
      const { targets, token, alice, dave, carol, relayer, payee } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address, max, paidNow } = target;
        const refs = {
          own: encodeBytes32String(`${kind}-own`),
          permit: encodeBytes32String(`${kind}-permit`),
          sig: encodeBytes32String(`${kind}-sig`),
        };

        let t = (await now()) + 10n;
        await time.setNextBlockTimestamp(t);
        let tx = plan.connect(alice).subscribeWithRef(max, refs.own);
        await expect(tx, kind).to.emit(plan, "Subscribed").withArgs(alice.address, max, t, t + PERIOD, false, refs.own);
        await expect(tx, kind).to.changeTokenBalances(ethers, token, [alice, payee], [-paidNow, paidNow]);

        // dave has approved nothing: the permit in the same transaction is what lets the fixed plan pull.
        const allowance = 12n * PRICE;
        const deadline = (await now()) + HOUR;
        const permit = await signPermit(ethers, token, dave, address, allowance, deadline);
        t = (await now()) + 10n;
        await time.setNextBlockTimestamp(t);
        tx = plan.connect(dave).subscribeWithPermitAndRef(max, refs.permit, allowance, deadline, permit.v, permit.r, permit.s);
        await expect(tx, kind).to.emit(plan, "Subscribed").withArgs(dave.address, max, t, t + PERIOD, false, refs.permit);
        await expect(tx, kind).to.changeTokenBalances(ethers, token, [dave, payee], [-paidNow, paidNow]);
        expect(await token.allowance(dave.address, address), kind).to.equal(allowance - paidNow);

        const a = await refAuth(target, carol.address, refs.sig);
        const signature = await signSubscribeWithRef(ethers, carol, address, a);
        t = (await now()) + 10n;
        await time.setNextBlockTimestamp(t);
        tx = plan.connect(relayer).subscribeBySigWithRef(carol.address, a.maxAmount, a.ref, a.deadline, signature);
        await expect(tx, kind).to.emit(plan, "Subscribed").withArgs(carol.address, max, t, t + PERIOD, false, refs.sig);
        await expect(tx, kind).to.changeTokenBalances(ethers, token, [carol, payee, relayer], [-paidNow, paidNow, 0n]);
        expect(await plan.nonces(carol.address), kind).to.equal(1n);
      }
    });

    it("the forms without a ref keep working and carry ref zero: subscribe, subscribeWithPermit and subscribeBySig emit Subscribed(…, 0x00…00), on a fixed and a metered plan", async () => {
      const { targets, token, alice, dave, carol, relayer } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address, max } = target;
        let t = (await now()) + 10n;
        await time.setNextBlockTimestamp(t);
        await expect(plan.connect(alice).subscribe(max), kind)
          .to.emit(plan, "Subscribed")
          .withArgs(alice.address, max, t, t + PERIOD, false, ZeroHash);

        const deadline = (await now()) + HOUR;
        const permit = await signPermit(ethers, token, dave, address, 12n * PRICE, deadline);
        t = (await now()) + 10n;
        await time.setNextBlockTimestamp(t);
        await expect(plan.connect(dave).subscribeWithPermit(max, 12n * PRICE, deadline, permit.v, permit.r, permit.s), kind)
          .to.emit(plan, "Subscribed")
          .withArgs(dave.address, max, t, t + PERIOD, false, ZeroHash);

        const a = await auth(target, carol.address);
        const signature = await signSubscribe(ethers, carol, address, a);
        t = (await now()) + 10n;
        await time.setNextBlockTimestamp(t);
        await expect(plan.connect(relayer).subscribeBySig(carol.address, a.maxAmount, a.deadline, signature), kind)
          .to.emit(plan, "Subscribed")
          .withArgs(carol.address, max, t, t + PERIOD, false, ZeroHash);
      }
    });

    it("Subscribed logs can be filtered by the indexed ref topic: each ref finds exactly its sign-ups, ref zero the forms without one", async () => {
      const { targets, alice, bob, carol, relayer } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address, max } = target;
        await plan.connect(alice).subscribeWithRef(max, REF_A);
        await plan.connect(bob).subscribe(max);
        const a = await refAuth(target, carol.address, REF_A);
        await plan
          .connect(relayer)
          .subscribeBySigWithRef(carol.address, a.maxAmount, a.ref, a.deadline, await signSubscribeWithRef(ethers, carol, address, a));

        const topic = plan.interface.getEvent("Subscribed").topicHash;
        const subscribersWith = async (ref: string) => {
          const logs = await ethers.provider.getLogs({ address, topics: [topic, null, ref], fromBlock: 0 });
          return logs.map((log) => plan.interface.parseLog(log)!.args.subscriber as string);
        };
        expect(await subscribersWith(REF_A), kind).to.deep.equal([alice.address, carol.address]);
        expect(await subscribersWith(ZeroHash), kind).to.deep.equal([bob.address]);
        expect(await subscribersWith(REF_B), kind).to.deep.equal([]);
        // The ref is the second indexed topic, after the subscriber.
        const [aliceLog] = await ethers.provider.getLogs({ address, topics: [topic, ethers.zeroPadValue(alice.address, 32)], fromBlock: 0 });
        expect(aliceLog?.topics[2], kind).to.equal(REF_A);
      }
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("the ref is signed: a relayer cannot change it, and the two signed forms do not mix", () => {
    it("a SubscribeWithRef signature over ref A submitted with ref B reverts InvalidSignature(subscriber) and uses no nonce; with ref A it goes through", async () => {
      const { targets, token, alice, relayer, payee } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address } = target;
        const a = await refAuth(target, alice.address, REF_A);
        const signature = await signSubscribeWithRef(ethers, alice, address, a);
        const money = await balances(token, [alice, payee]);
        for (const ref of [REF_B, ZeroHash]) {
          await expect(plan.connect(relayer).subscribeBySigWithRef(alice.address, a.maxAmount, ref, a.deadline, signature), kind)
            .to.be.revertedWithCustomError(plan, "InvalidSignature")
            .withArgs(alice.address);
        }
        expect(await plan.nonces(alice.address), kind).to.equal(0n);
        expect(await plan.statusOf(alice.address), kind).to.equal(BigInt(SubscriptionStatus.None));
        expect(await balances(token, [alice, payee]), kind).to.deep.equal(money);
        await expect(plan.connect(relayer).subscribeBySigWithRef(alice.address, a.maxAmount, REF_A, a.deadline, signature), kind)
          .to.emit(plan, "Subscribed")
          .withArgs(alice.address, a.maxAmount, (v: bigint) => v > 0n, (v: bigint) => v > 0n, false, REF_A);
      }
    });

    it("a Subscribe signature is not accepted by subscribeBySigWithRef (whatever the ref, zero included), nor a SubscribeWithRef signature by subscribeBySig: InvalidSignature(subscriber)", async () => {
      const { targets, alice, relayer } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address } = target;
        const plain = await auth(target, alice.address);
        const plainSignature = await signSubscribe(ethers, alice, address, plain);
        const withRef = { ...plain, ref: ZeroHash };
        const withRefSignature = await signSubscribeWithRef(ethers, alice, address, withRef);
        const as = plan.connect(relayer);
        for (const call of [
          () => as.subscribeBySigWithRef(alice.address, plain.maxAmount, ZeroHash, plain.deadline, plainSignature),
          () => as.subscribeBySigWithRef(alice.address, plain.maxAmount, REF_A, plain.deadline, plainSignature),
          () => as.subscribeBySig(alice.address, withRef.maxAmount, withRef.deadline, withRefSignature),
        ]) {
          await expect(call(), kind).to.be.revertedWithCustomError(plan, "InvalidSignature").withArgs(alice.address);
        }
        expect(await plan.nonces(alice.address), kind).to.equal(0n);
        // Each in its own form goes through (the first uses the nonce, so the second is refused for that).
        await expect(as.subscribeBySigWithRef(alice.address, withRef.maxAmount, ZeroHash, withRef.deadline, withRefSignature), kind).to.emit(
          plan,
          "Subscribed",
        );
      }
    });

    it("subscribeBySig and subscribeBySigWithRef share one nonce: once either form used nonce n, the other form's signature over n is refused and one over n + 1 is accepted", async () => {
      const { targets, alice, bob, relayer } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address } = target;
        const as = plan.connect(relayer);

        // alice: the ref form first.
        const aliceRef = await refAuth(target, alice.address, REF_A);
        const alicePlain = await auth(target, alice.address);
        const alicePlainSignature = await signSubscribe(ethers, alice, address, alicePlain);
        await as.subscribeBySigWithRef(alice.address, aliceRef.maxAmount, REF_A, aliceRef.deadline, await signSubscribeWithRef(ethers, alice, address, aliceRef));
        expect(await plan.nonces(alice.address), kind).to.equal(1n);
        await expect(as.subscribeBySig(alice.address, alicePlain.maxAmount, alicePlain.deadline, alicePlainSignature), kind)
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(alice.address);
        // Over nonce 1 the signature passes its check and meets the next rule: alice is subscribed already.
        const aliceNext = await auth(target, alice.address);
        expect(aliceNext.nonce, kind).to.equal(1n);
        await expect(as.subscribeBySig(alice.address, aliceNext.maxAmount, aliceNext.deadline, await signSubscribe(ethers, alice, address, aliceNext)), kind)
          .to.be.revertedWithCustomError(plan, "AlreadySubscribed");

        // bob: the plain form first.
        const bobPlain = await auth(target, bob.address);
        const bobRef = await refAuth(target, bob.address, REF_B);
        const bobRefSignature = await signSubscribeWithRef(ethers, bob, address, bobRef);
        await as.subscribeBySig(bob.address, bobPlain.maxAmount, bobPlain.deadline, await signSubscribe(ethers, bob, address, bobPlain));
        expect(await plan.nonces(bob.address), kind).to.equal(1n);
        await expect(as.subscribeBySigWithRef(bob.address, bobRef.maxAmount, REF_B, bobRef.deadline, bobRefSignature), kind)
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(bob.address);
        const bobNext = await refAuth(target, bob.address, REF_B);
        await expect(
          as.subscribeBySigWithRef(bob.address, bobNext.maxAmount, REF_B, bobNext.deadline, await signSubscribeWithRef(ethers, bob, address, bobNext)),
          kind,
        ).to.be.revertedWithCustomError(plan, "AlreadySubscribed");
      }
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("an authorization nobody submitted dies with a cancel", () => {
    /**
     * alice subscribes by her own transaction and signs (with her then-current nonce, valid for 100 days)
     * an authorization a relayer keeps; then `cancelBy` cancels her. The relayer submits it inside her
     * paid (metered: billable) time, where it would resume the schedule, and after it, where it would
     * start afresh (fixed: and pull a period). Both must be refused, and nothing may change.
     */
    async function cancelThenRelay(
      by: "subscriber" | "merchant",
      form: "Subscribe" | "SubscribeWithRef",
    ): Promise<void> {
      const { targets, token, alice, merchant, relayer, payee } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address, max } = target;
        await plan.connect(alice).subscribe(max);
        const a = await refAuth(target, alice.address, REF_A, LONG);
        const signature =
          form === "Subscribe" ? await signSubscribe(ethers, alice, address, a) : await signSubscribeWithRef(ethers, alice, address, a);
        const submit = () =>
          form === "Subscribe"
            ? plan.connect(relayer).subscribeBySig(alice.address, a.maxAmount, a.deadline, signature)
            : plan.connect(relayer).subscribeBySigWithRef(alice.address, a.maxAmount, a.ref, a.deadline, signature);

        if (by === "subscriber") await plan.connect(alice).cancel();
        else await plan.connect(merchant).cancelFor(alice.address);
        const before = await stored(plan, alice.address);
        const money = await balances(token, [alice, payee]);
        // Inside the time already paid (metered: the cycle's grace window), then after it.
        const end = kind === "fixed" ? before.nextChargeAt : before.nextChargeAt + GRACE;
        for (const t of [before.nextChargeAt - 1n, end + 1n]) {
          await time.setNextBlockTimestamp(t);
          await expect(submit(), `${kind} at ${t - before.nextChargeAt}s from the due time`)
            .to.be.revertedWithCustomError(plan, "InvalidSignature")
            .withArgs(alice.address);
        }
        expect(await stored(plan, alice.address), kind).to.deep.equal(before);
        expect(await balances(token, [alice, payee]), kind).to.deep.equal(money);
        // The cancel used up the nonce the authorization carried.
        expect(await plan.nonces(alice.address), kind).to.equal(a.nonce + 1n);
      }
    }

    it("a subscribeBySig authorization signed before cancel() is refused afterwards, inside and after the paid time: InvalidSignature, nothing pulled, on a fixed and a metered plan", async () => {
      await cancelThenRelay("subscriber", "Subscribe");
    });

    it("a subscribeBySig authorization signed before the merchant's cancelFor is refused afterwards: InvalidSignature, nothing pulled, on a fixed and a metered plan", async () => {
      await cancelThenRelay("merchant", "Subscribe");
    });

    it("a subscribeBySigWithRef authorization signed before cancel() is refused afterwards: InvalidSignature, nothing pulled, on a fixed and a metered plan", async () => {
      await cancelThenRelay("subscriber", "SubscribeWithRef");
    });

    it("a subscribeBySigWithRef authorization signed before the merchant's cancelFor is refused afterwards: InvalidSignature, nothing pulled, on a fixed and a metered plan", async () => {
      await cancelThenRelay("merchant", "SubscribeWithRef");
    });

    it("after a cancel, a new authorization over the next nonce subscribes as usual", async () => {
      const { targets, alice, relayer } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address, max } = target;
        await plan.connect(alice).subscribe(max);
        await plan.connect(alice).cancel();
        const a = await refAuth(target, alice.address, REF_A);
        expect(a.nonce, kind).to.equal(1n);
        await expect(
          plan.connect(relayer).subscribeBySigWithRef(alice.address, a.maxAmount, a.ref, a.deadline, await signSubscribeWithRef(ethers, alice, address, a)),
          kind,
        ).to.emit(plan, "Subscribed");
        expect(await plan.nonces(alice.address), kind).to.equal(2n);
      }
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("revokeAuthorizations: voids unsubmitted authorizations without cancelling", () => {
    it("while not subscribed: both forms signed over the current nonce are refused (InvalidSignature), AuthorizationsRevoked(subscriber, next nonce) is emitted each time, and a signature over the new nonce works", async () => {
      const { targets, token, bob, relayer, payee } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address } = target;
        const a = await refAuth(target, bob.address, REF_A, LONG);
        const plainSignature = await signSubscribe(ethers, bob, address, a);
        const refSignature = await signSubscribeWithRef(ethers, bob, address, a);
        await expect(plan.connect(bob).revokeAuthorizations(), kind).to.emit(plan, "AuthorizationsRevoked").withArgs(bob.address, 1n);
        expect(await plan.nonces(bob.address), kind).to.equal(1n);
        const money = await balances(token, [bob, payee]);
        await expect(plan.connect(relayer).subscribeBySig(bob.address, a.maxAmount, a.deadline, plainSignature), kind)
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(bob.address);
        await expect(plan.connect(relayer).subscribeBySigWithRef(bob.address, a.maxAmount, a.ref, a.deadline, refSignature), kind)
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(bob.address);
        expect(await plan.statusOf(bob.address), kind).to.equal(BigInt(SubscriptionStatus.None));
        expect(await balances(token, [bob, payee]), kind).to.deep.equal(money);
        // Revoking again uses the next nonce; the event names the one a new authorization must carry.
        await expect(plan.connect(bob).revokeAuthorizations(), kind).to.emit(plan, "AuthorizationsRevoked").withArgs(bob.address, 2n);
        const fresh = await auth(target, bob.address);
        expect(fresh.nonce, kind).to.equal(2n);
        await expect(
          plan.connect(relayer).subscribeBySig(bob.address, fresh.maxAmount, fresh.deadline, await signSubscribe(ethers, bob, address, fresh)),
          kind,
        ).to.emit(plan, "Subscribed");
      }
    });

    it("revoking touches only the caller's own nonce: another subscriber's authorization still works", async () => {
      const { targets, alice, bob, relayer } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address } = target;
        const a = await auth(target, alice.address);
        const signature = await signSubscribe(ethers, alice, address, a);
        await plan.connect(bob).revokeAuthorizations();
        expect(await plan.nonces(alice.address), kind).to.equal(0n);
        await expect(plan.connect(relayer).subscribeBySig(alice.address, a.maxAmount, a.deadline, signature), kind).to.emit(plan, "Subscribed");
      }
    });

    it("while subscribed: the subscription is left as it is (status, schedule, access, still charged as normal) and the authorization is refused with InvalidSignature, not AlreadySubscribed", async () => {
      const { targets, token, alice, relayer, reporter, payee } = await networkHelpers.loadFixture(world);
      for (const target of targets) {
        const { kind, plan, address, max } = target;
        await plan.connect(alice).subscribe(max);
        const a = await refAuth(target, alice.address, REF_A, LONG);
        const plainSignature = await signSubscribe(ethers, alice, address, a);
        const refSignature = await signSubscribeWithRef(ethers, alice, address, a);
        const before = await stored(plan, alice.address);
        const status = await plan.statusOf(alice.address);
        await expect(plan.connect(alice).revokeAuthorizations(), kind).to.emit(plan, "AuthorizationsRevoked").withArgs(alice.address, 1n);
        expect(await stored(plan, alice.address), kind).to.deep.equal(before);
        expect(await plan.statusOf(alice.address), kind).to.equal(status);
        expect(await plan.hasAccess(alice.address), kind).to.equal(true);
        await expect(plan.connect(relayer).subscribeBySig(alice.address, a.maxAmount, a.deadline, plainSignature), kind)
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(alice.address);
        await expect(plan.connect(relayer).subscribeBySigWithRef(alice.address, a.maxAmount, a.ref, a.deadline, refSignature), kind)
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(alice.address);
        // Billed at its due time as if nothing had happened.
        await time.increaseTo(before.nextChargeAt);
        if (kind === "fixed") {
          await expect((plan as FixedPricePlan).connect(relayer).charge(alice.address)).to.changeTokenBalances(
            ethers,
            token,
            [alice, payee],
            [-PRICE, PRICE],
          );
        } else {
          await expect((plan as MeteredPlan).connect(reporter).chargeUsage(alice.address, 1_000_000n, REF_A)).to.changeTokenBalances(
            ethers,
            token,
            [alice, payee],
            [-1_000_000n, 1_000_000n],
          );
        }
      }
    });

    it("while subscribed, on a fixed plan: an authorization revoked before the subscription lapsed cannot start a new one (and pull a period) after it lapsed", async () => {
      const { targets, token, alice, relayer, payee } = await networkHelpers.loadFixture(world);
      const target = targets[0]!;
      const { plan, address } = target;
      await plan.connect(alice).subscribe(PRICE);
      const a = await auth(target, alice.address, LONG);
      const signature = await signSubscribe(ethers, alice, address, a);
      await plan.connect(alice).revokeAuthorizations();
      const { nextChargeAt } = await stored(plan, alice.address);
      // Nobody charges her: the grace window passes and the subscription lapses, without a cancel.
      await time.increaseTo(nextChargeAt + GRACE + 1n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Expired));
      const money = await balances(token, [alice, payee]);
      await expect(plan.connect(relayer).subscribeBySig(alice.address, a.maxAmount, a.deadline, signature))
        .to.be.revertedWithCustomError(plan, "InvalidSignature")
        .withArgs(alice.address);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Expired));
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });
  });
});

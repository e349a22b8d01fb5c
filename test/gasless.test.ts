// Gasless sign-up (SPEC §1, rule 10): `subscribeWithPermit` (ERC-2612 permit and subscribe in one
// transaction, tolerant of a front-run permit) and `subscribeBySig` (the subscriber's EIP-712 authorization,
// submitted by a relayer; bound to the chain, the plan, a per-subscriber nonce and a deadline).
import { expect } from "chai";
import { Signature, TypedDataEncoder, ZeroHash, type Signer, type TypedDataDomain } from "ethers";
import { network } from "hardhat";

import { createPlan, DAY, fixedTerms, PlanStatus, SubscriptionStatus } from "../scripts/lib/plans.js";
import type { FixedPricePlan, TestUSDC } from "../typechain-types/index.js";
import { balances, deployStack, fund, FUNDS, PERIOD, PRICE, stored, subscribe, TRIAL } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const at = (t: bigint) => time.setNextBlockTimestamp(t);
const now = async () => BigInt(await time.latest());
const HOUR = 3_600n;

/** The typed data a subscriber signs for `subscribeBySig` (IPlan: `SUBSCRIBE_TYPEHASH`). */
const SUBSCRIBE_TYPES = {
  Subscribe: [
    { name: "subscriber", type: "address" },
    { name: "maxAmount", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/** ERC-2612 permit typed data (TestUSDC is OpenZeppelin's ERC20Permit: name "Test USD Coin", version "1"). */
const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

interface Authorization {
  subscriber: string;
  maxAmount: bigint;
  nonce: bigint;
  deadline: bigint;
}

/** An authorization for `subscriber` with their current nonce on `plan`, valid for `validFor` seconds. */
async function authorization(
  plan: FixedPricePlan,
  subscriber: string,
  maxAmount: bigint = PRICE,
  validFor: bigint = HOUR,
): Promise<Authorization> {
  return { subscriber, maxAmount, nonce: await plan.nonces(subscriber), deadline: (await now()) + validFor };
}

/** `signer`'s EIP-712 signature of `auth` in the domain of the plan at `planAddress` on this chain. */
async function signSubscribe(
  signer: Signer,
  planAddress: string,
  auth: Authorization,
  domain: TypedDataDomain = {},
): Promise<string> {
  const { chainId } = await ethers.provider.getNetwork();
  return signer.signTypedData(
    { name: "Recur Plan", version: "1", chainId, verifyingContract: planAddress, ...domain },
    SUBSCRIBE_TYPES,
    auth,
  );
}

/** `owner`'s ERC-2612 permit for `spender` to spend `value` of `token`, split into v, r, s. */
async function signPermit(token: TestUSDC, owner: Signer, spender: string, value: bigint, deadline: bigint) {
  const { chainId } = await ethers.provider.getNetwork();
  const ownerAddress = await owner.getAddress();
  const signature = await owner.signTypedData(
    { name: "Test USD Coin", version: "1", chainId, verifyingContract: await token.getAddress() },
    PERMIT_TYPES,
    { owner: ownerAddress, spender, value, nonce: await token.nonces(ownerAddress), deadline },
  );
  const { v, r, s } = Signature.from(signature);
  return { v, r, s };
}

/** A plan without trial; alice holds FUNDS but has approved nothing; bob is funded and has approved the plan. */
async function permitFixture() {
  const stack = await deployStack(ethers, { funded: ["bob"] });
  await stack.token.mint(stack.actors.alice.address, FUNDS);
  return { ...stack, ...stack.actors };
}

/** A plan without trial; alice, bob and carol funded and approved; nobody subscribed. */
async function sigFixture() {
  const stack = await deployStack(ethers);
  return { ...stack, ...stack.actors };
}

/** `sigFixture` and a second plan (B) on the same token with the same terms, which alice also approved. */
async function twoPlansFixture() {
  const stack = await deployStack(ethers);
  const { plan: planB } = await createPlan(
    ethers,
    stack.factory,
    stack.actors.merchant,
    fixedTerms(stack.tokenAddress, stack.actors.payee.address),
  );
  const planBAddress = await planB.getAddress();
  await fund(stack.token, stack.actors.alice, planBAddress, 0n, FUNDS);
  return { ...stack, ...stack.actors, planB, planBAddress };
}

/** A plan with a 7-day trial; alice, bob and carol funded and approved. */
async function trialFixture() {
  const stack = await deployStack(ethers, { terms: { trialPeriod: TRIAL } });
  return { ...stack, ...stack.actors };
}

/** `sigFixture` and an ERC-1271 wallet owned by dave, holding FUNDS and having approved the plan for them. */
async function walletFixture() {
  const stack = await deployStack(ethers);
  const wallet = await ethers.deployContract("ERC1271Wallet", [stack.actors.dave.address]);
  await wallet.waitForDeployment();
  const walletAddress = await wallet.getAddress();
  await stack.token.mint(walletAddress, FUNDS);
  await wallet.connect(stack.actors.dave).approve(stack.tokenAddress, stack.planAddress, FUNDS);
  return { ...stack, ...stack.actors, wallet, walletAddress };
}

describe("gasless sign-up", () => {
  describe("subscribeWithPermit: ERC-2612 permit and subscribe in one transaction", () => {
    it("permit and subscribe in one transaction: the permit sets the allowance, the first period is pulled, Subscribed and Charged are emitted", async () => {
      const { plan, planAddress, token, alice, payee } = await networkHelpers.loadFixture(permitFixture);
      expect(await token.allowance(alice.address, planAddress)).to.equal(0n);
      const allowance = 12n * PRICE;
      const deadline = (await now()) + HOUR;
      const { v, r, s } = await signPermit(token, alice, planAddress, allowance, deadline);
      const t = (await now()) + 10n;
      await at(t);
      const tx = plan.connect(alice).subscribeWithPermit(PRICE, allowance, deadline, v, r, s);
      await expect(tx).to.emit(token, "Approval").withArgs(alice.address, planAddress, allowance);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t, t + PERIOD, false, ZeroHash);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 0n, PRICE, t + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
      expect(await token.allowance(alice.address, planAddress)).to.equal(allowance - PRICE);
      expect(await token.nonces(alice.address)).to.equal(1n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
    });

    it("still subscribes when someone front-ran the permit: the allowance it set is used", async () => {
      const { plan, planAddress, token, alice, payee, stranger } = await networkHelpers.loadFixture(permitFixture);
      const allowance = 12n * PRICE;
      const deadline = (await now()) + HOUR;
      const { v, r, s } = await signPermit(token, alice, planAddress, allowance, deadline);
      // Someone saw the permit in the mempool and submitted it first: the plan's own permit call now fails.
      await token.connect(stranger).permit(alice.address, planAddress, allowance, deadline, v, r, s);
      expect(await token.allowance(alice.address, planAddress)).to.equal(allowance);
      const tx = plan.connect(alice).subscribeWithPermit(PRICE, allowance, deadline, v, r, s);
      await expect(tx).to.emit(plan, "Subscribed");
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 0n, PRICE, (await stored(plan, alice.address)).nextChargeAt);
      await expect(tx).to.not.emit(token, "Approval");
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
      expect(await token.allowance(alice.address, planAddress)).to.equal(allowance - PRICE);
    });

    it("reverts with the token's ERC20InsufficientAllowance when the permit fails and no allowance is in place, and creates nothing", async () => {
      const { plan, planAddress, token, alice, payee } = await networkHelpers.loadFixture(permitFixture);
      const allowance = 12n * PRICE;
      // An expired permit: the token refuses it, so nothing approves the plan.
      const deadline = (await now()) - 1n;
      const { v, r, s } = await signPermit(token, alice, planAddress, allowance, deadline);
      const money = await balances(token, [alice, payee]);
      await expect(plan.connect(alice).subscribeWithPermit(PRICE, allowance, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(planAddress, 0n, PRICE);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect((await stored(plan, alice.address)).startedAt).to.equal(0n);
      expect(await token.allowance(alice.address, planAddress)).to.equal(0n);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("subscribes the caller only: someone else's permit neither approves the plan for its signer nor subscribes them", async () => {
      const { plan, planAddress, token, alice, stranger } = await networkHelpers.loadFixture(permitFixture);
      const allowance = 12n * PRICE;
      const deadline = (await now()) + HOUR;
      const { v, r, s } = await signPermit(token, alice, planAddress, allowance, deadline);
      // The permit is applied as permit(caller, ...): alice's signature does not fit the stranger.
      await expect(plan.connect(stranger).subscribeWithPermit(PRICE, allowance, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(planAddress, 0n, PRICE);
      expect(await token.allowance(alice.address, planAddress)).to.equal(0n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await plan.statusOf(stranger.address)).to.equal(BigInt(SubscriptionStatus.None));
    });

    it("with a trial, subscribeWithPermit sets the allowance and starts the trial without pulling anything", async () => {
      const stack = await deployStack(ethers, { terms: { trialPeriod: TRIAL }, funded: [] });
      const { plan, planAddress, token, actors } = stack;
      const { alice, payee } = actors;
      await token.mint(alice.address, FUNDS);
      const allowance = 12n * PRICE;
      const deadline = (await now()) + HOUR;
      const { v, r, s } = await signPermit(token, alice, planAddress, allowance, deadline);
      const t = (await now()) + 10n;
      await at(t);
      const tx = plan.connect(alice).subscribeWithPermit(PRICE, allowance, deadline, v, r, s);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t, t + TRIAL, true, ZeroHash);
      await expect(tx).to.not.emit(plan, "Charged");
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [0n, 0n]);
      expect(await token.allowance(alice.address, planAddress)).to.equal(allowance);
    });
  });

  describe("subscribeBySig: the subscriber's EIP-712 authorization, submitted by anyone", () => {
    it("eip712Domain and SUBSCRIBE_TYPEHASH describe the typed data a subscriber signs", async () => {
      const { plan, planAddress } = await networkHelpers.loadFixture(sigFixture);
      const { chainId } = await ethers.provider.getNetwork();
      const domain = await plan.eip712Domain();
      expect(domain.fields).to.equal("0x0f");
      expect(domain.name).to.equal("Recur Plan");
      expect(domain.version).to.equal("1");
      expect(domain.chainId).to.equal(chainId);
      expect(domain.verifyingContract).to.equal(planAddress);
      expect(domain.salt).to.equal(ZeroHash);
      expect(domain.extensions).to.deep.equal([]);
      const encoded = TypedDataEncoder.from(SUBSCRIBE_TYPES).encodeType("Subscribe");
      expect(encoded).to.equal("Subscribe(address subscriber,uint256 maxAmount,uint256 nonce,uint256 deadline)");
      expect(await plan.SUBSCRIBE_TYPEHASH()).to.equal(ethers.id(encoded));
    });

    it("a relayer submits the subscriber's signature: the subscriber is subscribed and charged, the relayer pays the gas and no tokens", async () => {
      const { plan, planAddress, token, alice, bob: relayer, payee } = await networkHelpers.loadFixture(sigFixture);
      // The relayer holds tokens and has approved the plan too: nothing may be pulled from it.
      expect(await token.allowance(relayer.address, planAddress)).to.equal(FUNDS);
      const auth = await authorization(plan, alice.address);
      expect(auth.nonce).to.equal(0n);
      const signature = await signSubscribe(alice, planAddress, auth);
      const ethBefore = await Promise.all([alice, relayer].map((a) => ethers.provider.getBalance(a.address)));
      const t = (await now()) + 10n;
      await at(t);
      const tx = await plan.connect(relayer).subscribeBySig(alice.address, auth.maxAmount, auth.deadline, signature);
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t, t + PERIOD, false, ZeroHash);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 0n, PRICE, t + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee, relayer], [-PRICE, PRICE, 0n]);
      const receipt = await tx.wait();
      const ethAfter = await Promise.all([alice, relayer].map((a) => ethers.provider.getBalance(a.address)));
      expect(ethAfter).to.deep.equal([ethBefore[0], ethBefore[1]! - receipt!.fee]);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Active));
      expect(await plan.statusOf(relayer.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await plan.nonces(alice.address)).to.equal(1n);
    });

    it("reverts SignatureExpired(deadline, now) one second after the deadline, uses no nonce, and accepts a signature at its deadline", async () => {
      const { plan, planAddress, alice, bob: relayer } = await networkHelpers.loadFixture(sigFixture);
      const late = await authorization(plan, alice.address);
      const lateSignature = await signSubscribe(alice, planAddress, late);
      await at(late.deadline + 1n);
      await expect(plan.connect(relayer).subscribeBySig(alice.address, late.maxAmount, late.deadline, lateSignature))
        .to.be.revertedWithCustomError(plan, "SignatureExpired")
        .withArgs(late.deadline, late.deadline + 1n);
      expect(await plan.nonces(alice.address)).to.equal(0n);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.None));

      const onTime = await authorization(plan, alice.address);
      expect(onTime.nonce).to.equal(0n);
      const onTimeSignature = await signSubscribe(alice, planAddress, onTime);
      await at(onTime.deadline);
      await expect(plan.connect(relayer).subscribeBySig(alice.address, onTime.maxAmount, onTime.deadline, onTimeSignature))
        .to.emit(plan, "Subscribed")
        .withArgs(alice.address, PRICE, onTime.deadline, onTime.deadline + PERIOD, false, ZeroHash);
    });

    it("reverts InvalidSignature(subscriber) when the signer is not the subscriber or a signed value was changed", async () => {
      const { plan, planAddress, token, alice, bob, carol: relayer, payee } = await networkHelpers.loadFixture(sigFixture);
      const auth = await authorization(plan, alice.address);
      const byBob = await signSubscribe(bob, planAddress, auth);
      const byAlice = await signSubscribe(alice, planAddress, auth);
      const aheadNonce = await signSubscribe(alice, planAddress, { ...auth, nonce: auth.nonce + 1n });
      const money = await balances(token, [alice, bob, payee]);
      const as = plan.connect(relayer);
      for (const [subscriber, call] of [
        [alice.address, () => as.subscribeBySig(alice.address, auth.maxAmount, auth.deadline, byBob)], // wrong signer
        [alice.address, () => as.subscribeBySig(alice.address, 2n * PRICE, auth.deadline, byAlice)], // other max amount
        [alice.address, () => as.subscribeBySig(alice.address, auth.maxAmount, auth.deadline + 1n, byAlice)], // other deadline
        [bob.address, () => as.subscribeBySig(bob.address, auth.maxAmount, auth.deadline, byAlice)], // other subscriber
        [alice.address, () => as.subscribeBySig(alice.address, auth.maxAmount, auth.deadline, aheadNonce)], // unused nonce
        [alice.address, () => as.subscribeBySig(alice.address, auth.maxAmount, auth.deadline, "0x1234")], // malformed
      ] as const) {
        await expect(call()).to.be.revertedWithCustomError(plan, "InvalidSignature").withArgs(subscriber);
      }
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await plan.statusOf(bob.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await plan.nonces(alice.address)).to.equal(0n);
      expect(await balances(token, [alice, bob, payee])).to.deep.equal(money);
    });

    it("a signature works once: submitting it again reverts InvalidSignature, its nonce being used", async () => {
      const { plan, planAddress, alice, bob: relayer, stranger } = await networkHelpers.loadFixture(sigFixture);
      const auth = await authorization(plan, alice.address);
      const signature = await signSubscribe(alice, planAddress, auth);
      await plan.connect(relayer).subscribeBySig(alice.address, auth.maxAmount, auth.deadline, signature);
      for (const caller of [relayer, stranger, alice]) {
        await expect(plan.connect(caller).subscribeBySig(alice.address, auth.maxAmount, auth.deadline, signature))
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(alice.address);
      }
      expect(await plan.nonces(alice.address)).to.equal(1n);
    });

    it("replaying a used signature after the subscriber cancelled does not subscribe them again, inside or after the paid time", async () => {
      const { plan, planAddress, token, alice, bob: relayer, payee } = await networkHelpers.loadFixture(sigFixture);
      // A deadline far enough away that only the nonce can stop the replay.
      const auth = await authorization(plan, alice.address, PRICE, 100n * DAY);
      const signature = await signSubscribe(alice, planAddress, auth);
      await plan.connect(relayer).subscribeBySig(alice.address, auth.maxAmount, auth.deadline, signature);
      const due = (await stored(plan, alice.address)).nextChargeAt;
      await plan.connect(alice).cancel();
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, payee]);
      for (const t of [due - 1n, due + 1n]) {
        await at(t);
        await expect(plan.connect(relayer).subscribeBySig(alice.address, auth.maxAmount, auth.deadline, signature))
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(alice.address);
      }
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Cancelled));
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
    });

    it("a signature for one plan is refused by another plan with the same terms (InvalidSignature), and still works on its own", async () => {
      const { plan, planAddress, planB, alice, bob: relayer } = await networkHelpers.loadFixture(twoPlansFixture);
      const auth = await authorization(plan, alice.address);
      expect(await planB.nonces(alice.address)).to.equal(auth.nonce);
      const forPlanA = await signSubscribe(alice, planAddress, auth);
      await expect(planB.connect(relayer).subscribeBySig(alice.address, auth.maxAmount, auth.deadline, forPlanA))
        .to.be.revertedWithCustomError(planB, "InvalidSignature")
        .withArgs(alice.address);
      expect(await planB.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.None));
      await expect(plan.connect(relayer).subscribeBySig(alice.address, auth.maxAmount, auth.deadline, forPlanA)).to.emit(
        plan,
        "Subscribed",
      );
    });

    it("a signature made for another chain id is refused (InvalidSignature)", async () => {
      const { plan, planAddress, alice, bob: relayer } = await networkHelpers.loadFixture(sigFixture);
      const { chainId } = await ethers.provider.getNetwork();
      const auth = await authorization(plan, alice.address);
      const otherChain = await signSubscribe(alice, planAddress, auth, { chainId: chainId + 1n });
      await expect(plan.connect(relayer).subscribeBySig(alice.address, auth.maxAmount, auth.deadline, otherChain))
        .to.be.revertedWithCustomError(plan, "InvalidSignature")
        .withArgs(alice.address);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.None));
    });

    it("an ERC-1271 smart wallet subscribes through its owner's signature: the wallet is subscribed and pays the first period", async () => {
      const { plan, planAddress, token, wallet, walletAddress, dave, bob: relayer, payee } =
        await networkHelpers.loadFixture(walletFixture);
      const auth = await authorization(plan, walletAddress);
      const signature = await signSubscribe(dave, planAddress, auth);
      const tx = plan.connect(relayer).subscribeBySig(walletAddress, auth.maxAmount, auth.deadline, signature);
      await expect(tx).to.emit(plan, "Subscribed");
      await expect(tx).to.changeTokenBalances(ethers, token, [wallet, dave, relayer, payee], [-PRICE, 0n, 0n, PRICE]);
      expect(await plan.statusOf(walletAddress)).to.equal(BigInt(SubscriptionStatus.Active));
      expect(await plan.statusOf(dave.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await plan.nonces(walletAddress)).to.equal(1n);
    });

    it("an ERC-1271 smart wallet subscribes only with its owner's signature: any other reverts InvalidSignature(wallet)", async () => {
      const { plan, planAddress, token, wallet, walletAddress, dave, bob, payee } =
        await networkHelpers.loadFixture(walletFixture);
      const auth = await authorization(plan, walletAddress);
      const money = await balances(token, [{ address: walletAddress }, payee]);
      for (const signer of [bob, payee]) {
        const signature = await signSubscribe(signer, planAddress, auth);
        await expect(plan.connect(dave).subscribeBySig(walletAddress, auth.maxAmount, auth.deadline, signature))
          .to.be.revertedWithCustomError(plan, "InvalidSignature")
          .withArgs(walletAddress);
      }
      // The owner signing for itself (as the subscriber) does not authorize the wallet either.
      const forDave = await signSubscribe(dave, planAddress, await authorization(plan, dave.address));
      await expect(plan.connect(bob).subscribeBySig(walletAddress, auth.maxAmount, auth.deadline, forDave))
        .to.be.revertedWithCustomError(plan, "InvalidSignature")
        .withArgs(walletAddress);
      expect(await plan.statusOf(walletAddress)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await balances(token, [{ address: walletAddress }, payee])).to.deep.equal(money);
    });

    it("follows subscribe's rules: PlanNotActive on hold, MaxAmountExceeded below the price, AlreadySubscribed while live; a refused call uses no nonce", async () => {
      const { plan, planAddress, alice, bob, merchant, carol: relayer } = await networkHelpers.loadFixture(sigFixture);
      const below = await authorization(plan, alice.address, PRICE - 1n);
      await expect(
        plan
          .connect(relayer)
          .subscribeBySig(alice.address, below.maxAmount, below.deadline, await signSubscribe(alice, planAddress, below)),
      )
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(PRICE, PRICE - 1n);

      await subscribe(plan, bob);
      const live = await authorization(plan, bob.address);
      await expect(
        plan.connect(relayer).subscribeBySig(bob.address, live.maxAmount, live.deadline, await signSubscribe(bob, planAddress, live)),
      )
        .to.be.revertedWithCustomError(plan, "AlreadySubscribed")
        .withArgs(bob.address, SubscriptionStatus.Active);

      await plan.connect(merchant).setStatus(PlanStatus.OnHold);
      const onHold = await authorization(plan, alice.address);
      const signature = await signSubscribe(alice, planAddress, onHold);
      await expect(plan.connect(relayer).subscribeBySig(alice.address, onHold.maxAmount, onHold.deadline, signature))
        .to.be.revertedWithCustomError(plan, "PlanNotActive")
        .withArgs(PlanStatus.OnHold);
      expect(await plan.nonces(alice.address)).to.equal(0n);
      expect(await plan.nonces(bob.address)).to.equal(0n);
      // The refused authorization was never used: once the plan is active again, it goes through.
      await plan.connect(merchant).setStatus(PlanStatus.Active);
      await expect(plan.connect(relayer).subscribeBySig(alice.address, onHold.maxAmount, onHold.deadline, signature)).to.emit(
        plan,
        "Subscribed",
      );
    });
  });

  describe("rule 10: one trial per subscriber, however they subscribe", () => {
    it("one trial per subscriber: a trial started by signature is not granted again, by a new signature or by subscribe", async () => {
      const { plan, planAddress, token, alice, bob: relayer, payee } = await networkHelpers.loadFixture(trialFixture);
      const first = await authorization(plan, alice.address, PRICE, 100n * DAY);
      const t = (await now()) + 10n;
      await at(t);
      await expect(
        plan.connect(relayer).subscribeBySig(alice.address, first.maxAmount, first.deadline, await signSubscribe(alice, planAddress, first)),
      )
        .to.emit(plan, "Subscribed")
        .withArgs(alice.address, PRICE, t, t + TRIAL, true, ZeroHash);
      await plan.connect(alice).cancel();
      await time.increaseTo(t + TRIAL);

      // A new signature after the trial ended: charged at once, no second trial.
      const second = await authorization(plan, alice.address, PRICE, 100n * DAY);
      // One nonce used by the first signature, one by the cancel (which voids unsubmitted authorizations).
      expect(second.nonce).to.equal(2n);
      const t2 = (await now()) + 10n;
      await at(t2);
      const tx = plan
        .connect(relayer)
        .subscribeBySig(alice.address, second.maxAmount, second.deadline, await signSubscribe(alice, planAddress, second));
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t2, t2 + PERIOD, false, ZeroHash);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee, relayer], [-PRICE, PRICE, 0n]);

      // And by subscribe, after cancelling and letting the paid period end: charged at once again.
      await plan.connect(alice).cancel();
      await time.increaseTo(t2 + PERIOD);
      const t3 = t2 + PERIOD + 10n;
      await at(t3);
      await expect(plan.connect(alice).subscribe(PRICE))
        .to.emit(plan, "Subscribed")
        .withArgs(alice.address, PRICE, t3, t3 + PERIOD, false, ZeroHash);
    });

    it("one trial per subscriber: after a trial started by subscribe, subscribeBySig charges at once", async () => {
      const { plan, planAddress, token, alice, bob: relayer, payee } = await networkHelpers.loadFixture(trialFixture);
      const sub = await subscribe(plan, alice);
      expect(sub.nextChargeAt - sub.startedAt).to.equal(TRIAL);
      await plan.connect(alice).cancel();
      await time.increaseTo(sub.nextChargeAt);
      const auth = await authorization(plan, alice.address);
      const t = (await now()) + 10n;
      await at(t);
      const tx = plan
        .connect(relayer)
        .subscribeBySig(alice.address, auth.maxAmount, auth.deadline, await signSubscribe(alice, planAddress, auth));
      await expect(tx).to.emit(plan, "Subscribed").withArgs(alice.address, PRICE, t, t + PERIOD, false, ZeroHash);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 0n, PRICE, t + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
    });
  });
});

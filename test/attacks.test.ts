// Attempts that must fail (issue 5), each as a test: pulling from an address that approved a plan but never
// subscribed; subscribing someone else; getting a second period out of one block through a contract;
// replaying a subscribeBySig signature across plans, chains and a cancel; front-running a permit; starving
// a charge of gas; billing on a plan one is not authorized on; the owner redirecting funds. Variants
// already proven elsewhere are referenced, not repeated: gasless.test.ts (signature replay on the same
// plan, after cancel, across two fixed plans, with a forged chain id; a front-run permit on a fixed plan; a
// stranger using someone's permit), chargeMany.test.ts and metered.test.ts (BatchOutOfGas for the batches),
// metered.test.ts (strangers billing usage), factory.test.ts (FixedPricePlan's state-changing functions).
import { expect } from "chai";
import { encodeBytes32String, type Interface, Signature, type Signer } from "ethers";
import { network } from "hardhat";

import {
  ChargeReason,
  createMeteredPlan,
  createPlan,
  fixedTerms,
  meteredTerms,
  SubscriptionStatus,
} from "../scripts/lib/plans.js";
import type { Attacker, FixedPricePlan, MeteredPlan, TestUSDC } from "../typechain-types/index.js";
import {
  balances,
  deployStack,
  fund,
  FUNDS,
  GRACE,
  PERIOD,
  planEvents,
  PRICE,
  revertName,
  stored,
  subscribe,
  type StoredSubscription,
} from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

/** The metered plan's free credits, the usage billed (above the credits), and the max amount its
 * subscribers set (6-decimal token units); the default cap (100.000000) applies. */
const CREDITS = 5_000_000n;
const USAGE = 20_000_000n;
const MAX = 50_000_000n;
const REF = encodeBytes32String("inv-2026-11");
const HOUR = 3_600n;
/**
 * Gas for the Attacker's transactions. Each token pull must be left its whole budget
 * (`TokenCalls.PULL_GAS_NEEDED`, about 206,000) or the plan call reverts `BatchOutOfGas`; the Attacker
 * swallows that revert, so the transaction still succeeds and `eth_estimateGas` settles on a limit (near
 * the gas actually used) at which the inner pulls are refused. A fixed, ample limit lets every pull have
 * its budget, so what the test sees is the plan's rules, not a starved call.
 */
const ATTACKER_GAS = 3_000_000n;

/** `s` after exactly one paid period: one period later, one more period paid. */
const afterOnePeriod = (s: StoredSubscription): StoredSubscription => ({
  ...s,
  nextChargeAt: s.nextChargeAt + PERIOD,
  periodsPaid: s.periodsPaid + 1n,
});

/**
 * One token, one merchant, a fixed plan (`plan`) and a metered plan (`metered`, keeper as reporter) with the
 * same payee. alice, bob, carol and dave hold FUNDS and have approved both plans for FUNDS; nobody is
 * subscribed. `attacker` is an Attacker contract holding FUNDS and approving both plans. `victim` (the
 * eleventh account) holds FUNDS and has approved nothing.
 */
async function world() {
  const stack = await deployStack(ethers, { funded: ["alice", "bob", "carol", "dave"] });
  const { merchant, payee, keeper, alice, bob, carol, dave } = stack.actors;
  const { plan: metered } = await createMeteredPlan(
    ethers,
    stack.factory,
    merchant,
    meteredTerms(stack.tokenAddress, payee.address, { freeCredits: CREDITS }),
  );
  const meteredAddress = await metered.getAddress();
  await metered.connect(merchant).setReporter(keeper.address, true);
  for (const account of [alice, bob, carol, dave]) await fund(stack.token, account, meteredAddress, 0n, FUNDS);

  const attacker = await ethers.deployContract("Attacker");
  const attackerAddress = await attacker.getAddress();
  await stack.token.mint(attackerAddress, FUNDS);
  await attacker.approve(stack.tokenAddress, stack.planAddress, FUNDS);
  await attacker.approve(stack.tokenAddress, meteredAddress, FUNDS);

  const victim = (await ethers.getSigners())[10];
  if (victim === undefined) throw new Error("the test network needs at least 11 accounts");
  await stack.token.mint(victim.address, FUNDS);
  return { ...stack, ...stack.actors, reporter: keeper, metered, meteredAddress, attacker, attackerAddress, victim };
}

/** Each call the Attacker tried in `receipt`, as [function name, "ok" or the plan error's name]. */
function triedCalls(
  attacker: Attacker,
  attackerAddress: string,
  plan: FixedPricePlan | MeteredPlan,
  receipt: { logs: readonly { address: string; topics: readonly string[]; data: string }[] },
): [string, string][] {
  const tried: [string, string][] = [];
  for (const log of receipt.logs) {
    if (log.address.toLowerCase() !== attackerAddress.toLowerCase()) continue;
    const parsed = attacker.interface.parseLog({ topics: [...log.topics], data: log.data });
    if (parsed === null) continue;
    const [, selector, succeeded, returnData] = parsed.args as unknown as [string, string, boolean, string];
    const fn = (plan.interface as Interface).getFunction(selector)?.name ?? selector;
    tried.push([fn, succeeded ? "ok" : revertName(plan.interface, { data: returnData })]);
  }
  return tried;
}

/** Names of the plan events in `receipt`. */
function eventNames(plan: FixedPricePlan | MeteredPlan, planAddress: string, receipt: Parameters<typeof planEvents>[2]) {
  return planEvents(plan, planAddress, receipt).map((e) => e.name);
}

/** The typed data a subscriber signs for `subscribeBySig`. */
const SUBSCRIBE_TYPES = {
  Subscribe: [
    { name: "subscriber", type: "address" },
    { name: "maxAmount", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/** `signer`'s signature of a `Subscribe` for `subscriber` on the plan at `planAddress`, on `chainId`. */
async function signSubscribe(
  signer: Signer,
  planAddress: string,
  chainId: bigint,
  auth: { subscriber: string; maxAmount: bigint; nonce: bigint; deadline: bigint },
): Promise<string> {
  return signer.signTypedData({ name: "Recur Plan", version: "1", chainId, verifyingContract: planAddress }, SUBSCRIBE_TYPES, auth);
}

/** `owner`'s ERC-2612 permit for `spender` to spend `value` of `token` (TestUSDC: "Test USD Coin", "1"). */
async function signPermit(token: TestUSDC, owner: Signer, spender: string, value: bigint, deadline: bigint) {
  const { chainId } = await ethers.provider.getNetwork();
  const ownerAddress = await owner.getAddress();
  const signature = await owner.signTypedData(
    { name: "Test USD Coin", version: "1", chainId, verifyingContract: await token.getAddress() },
    {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    { owner: ownerAddress, spender, value, nonce: await token.nonces(ownerAddress), deadline },
  );
  return Signature.from(signature);
}

/** Each state-changing function of `iface` as "name(type name, …)", sorted. */
function mutatingSignatures(iface: FixedPricePlan["interface"] | MeteredPlan["interface"]): string[] {
  const found: string[] = [];
  iface.forEachFunction((fn) => {
    if (fn.stateMutability === "view" || fn.stateMutability === "pure") return;
    found.push(`${fn.name}(${fn.inputs.map((p) => `${p.type} ${p.name}`).join(", ")})`);
  });
  return found.sort();
}

/** The sign-up functions both plan kinds share: none takes a subscriber but the two signature forms. */
const SIGN_UPS = [
  "subscribe(uint256 maxAmount)",
  "subscribeBySig(address subscriber, uint256 maxAmount, uint256 deadline, bytes signature)",
  "subscribeBySigWithRef(address subscriber, uint256 maxAmount, bytes32 ref, uint256 deadline, bytes signature)",
  "subscribeWithPermit(uint256 maxAmount, uint256 allowance, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
  "subscribeWithPermitAndRef(uint256 maxAmount, bytes32 ref, uint256 allowance, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
  "subscribeWithRef(uint256 maxAmount, bytes32 ref)",
];

/** The state-changing functions both plan kinds share (PlanCore, Ownable2Step). `renounceOwnership` is not
 * one: it is a view that always reverts (`OwnershipCannotBeRenounced`). */
const SHARED_MUTATING = [
  "acceptOwnership()",
  "cancel()",
  "cancelFor(address subscriber)",
  "pause()",
  "resume()",
  "revokeAuthorizations()",
  "setBlocked(address subscriber, bool blocked)",
  "setMaxAmount(uint256 maxAmount)",
  "setPayee(address newPayee)",
  "setStatus(uint8 newStatus)",
  ...SIGN_UPS,
  "transferOwnership(address newOwner)",
];

describe("attacks that must fail", () => {
  // ------------------------------------------------------------------------------------------------
  describe("pulling from an address that approved the plan but never subscribed", () => {
    it("charge reverts NotSubscribed(account) whoever calls, chargeMany skips it without a ChargeFailed, and its balance and allowance are unchanged", async () => {
      const { plan, planAddress, token, dave, merchant, stranger, payee } = await networkHelpers.loadFixture(world);
      const allowance = await token.allowance(dave.address, planAddress);
      const money = await balances(token, [dave, payee]);
      for (const t of [0n, PERIOD, PERIOD + GRACE]) {
        if (t !== 0n) await time.increase(t);
        for (const caller of [stranger, merchant, dave]) {
          await expect(plan.connect(caller).charge(dave.address))
            .to.be.revertedWithCustomError(plan, "NotSubscribed")
            .withArgs(dave.address);
        }
        const batch = await plan.connect(stranger).chargeMany([dave.address, dave.address]);
        expect(eventNames(plan, planAddress, (await batch.wait())!)).to.deep.equal([]);
      }
      expect(await balances(token, [dave, payee])).to.deep.equal(money);
      expect(await token.allowance(dave.address, planAddress)).to.equal(allowance);
      expect(await plan.statusOf(dave.address)).to.equal(BigInt(SubscriptionStatus.None));
    });

    it("on a metered plan, chargeUsage by the owner or a reporter reverts NotSubscribed(account) and chargeUsageMany records UsageChargeFailed(NotSubscribed); nothing moves", async () => {
      const { metered, meteredAddress, token, dave, merchant, reporter, payee } = await networkHelpers.loadFixture(world);
      const money = await balances(token, [dave, payee]);
      await time.increase(PERIOD);
      for (const biller of [merchant, reporter]) {
        await expect(metered.connect(biller).chargeUsage(dave.address, USAGE, REF))
          .to.be.revertedWithCustomError(metered, "NotSubscribed")
          .withArgs(dave.address);
        const batch = await metered.connect(biller).chargeUsageMany([dave.address], [USAGE], [REF]);
        expect(planEvents(metered, meteredAddress, (await batch.wait())!)).to.deep.equal([
          { name: "UsageChargeFailed", args: [dave.address, BigInt(ChargeReason.NotSubscribed), USAGE, REF] },
        ]);
      }
      expect(await balances(token, [dave, payee])).to.deep.equal(money);
      expect(await metered.usageChargeability(dave.address, USAGE)).to.deep.equal([false, BigInt(ChargeReason.NotSubscribed), 0n, USAGE]);
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("subscribing someone else", () => {
    it("no sign-up function takes a subscriber except subscribeBySig, on either plan kind (the ABIs)", async () => {
      const { plan, metered } = await networkHelpers.loadFixture(world);
      for (const iface of [plan.interface, metered.interface]) {
        const signUps = mutatingSignatures(iface).filter((s) => s.startsWith("subscribe"));
        expect(signUps).to.deep.equal(SIGN_UPS);
        // Only the two signature forms name a subscriber, and they check that subscriber's signature.
        expect(signUps.filter((s) => s.includes("address subscriber"))).to.deep.equal([
          "subscribeBySig(address subscriber, uint256 maxAmount, uint256 deadline, bytes signature)",
          "subscribeBySigWithRef(address subscriber, uint256 maxAmount, bytes32 ref, uint256 deadline, bytes signature)",
        ]);
      }
    });

    it("subscribeBySig signed by anyone but the subscriber (a stranger, the plan's owner, its payee, another subscriber) reverts InvalidSignature(subscriber) on a fixed and a metered plan: nothing moves, no nonce is used", async () => {
      const { plan, planAddress, metered, meteredAddress, token, dave, alice, stranger, merchant, payee, keeper: relayer } =
        await networkHelpers.loadFixture(world);
      const { chainId } = await ethers.provider.getNetwork();
      const deadline = BigInt(await time.latest()) + HOUR;
      const money = await balances(token, [dave, payee]);
      for (const [target, address] of [
        [plan, planAddress],
        [metered, meteredAddress],
      ] as const) {
        const auth = { subscriber: dave.address, maxAmount: PRICE, nonce: await target.nonces(dave.address), deadline };
        for (const forger of [stranger, merchant, payee, alice]) {
          const forged = await signSubscribe(forger, address, chainId, auth);
          await expect(target.connect(relayer).subscribeBySig(dave.address, PRICE, deadline, forged))
            .to.be.revertedWithCustomError(target, "InvalidSignature")
            .withArgs(dave.address);
        }
        expect(await target.statusOf(dave.address)).to.equal(BigInt(SubscriptionStatus.None));
        expect(await target.nonces(dave.address)).to.equal(0n);
      }
      expect(await balances(token, [dave, payee])).to.deep.equal(money);
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("a second period in one block, through a contract", () => {
    it("a contract that subscribes and then charges itself over and over pays one period: every charge reverts NotDue and chargeMany charges nobody", async () => {
      const { plan, planAddress, token, attacker, attackerAddress, payee } = await networkHelpers.loadFixture(world);
      const money = await balances(token, [{ address: attackerAddress }, payee]);
      const receipt = (await (await attacker.subscribeThenCharge(planAddress, PRICE, 5n, { gasLimit: ATTACKER_GAS })).wait())!;
      expect(triedCalls(attacker, attackerAddress, plan, receipt)).to.deep.equal([
        ["subscribe", "ok"],
        ...Array.from({ length: 5 }, (): [string, string] => ["charge", "NotDue"]),
        ["chargeMany", "ok"],
      ]);
      expect(eventNames(plan, planAddress, receipt)).to.deep.equal(["Subscribed", "Charged"]);
      expect(await balances(token, [{ address: attackerAddress }, payee])).to.deep.equal([money[0]! - PRICE, money[1]! + PRICE]);
      expect((await stored(plan, attackerAddress)).periodsPaid).to.equal(1n);
    });

    it("when the contract's period is due, one charge succeeds and every other attempt in that transaction is refused", async () => {
      const { plan, planAddress, token, attacker, attackerAddress, payee } = await networkHelpers.loadFixture(world);
      await attacker.run(planAddress, [plan.interface.encodeFunctionData("subscribe", [PRICE])], { gasLimit: ATTACKER_GAS });
      const before = await stored(plan, attackerAddress);
      await time.setNextBlockTimestamp(before.nextChargeAt);
      const money = await balances(token, [{ address: attackerAddress }, payee]);
      const receipt = (await (await attacker.subscribeThenCharge(planAddress, PRICE, 4n, { gasLimit: ATTACKER_GAS })).wait())!;
      expect(triedCalls(attacker, attackerAddress, plan, receipt)).to.deep.equal([
        ["subscribe", "AlreadySubscribed"],
        ["charge", "ok"],
        ["charge", "NotDue"],
        ["charge", "NotDue"],
        ["charge", "NotDue"],
        ["chargeMany", "ok"],
      ]);
      expect(eventNames(plan, planAddress, receipt)).to.deep.equal(["Charged"]);
      expect(await balances(token, [{ address: attackerAddress }, payee])).to.deep.equal([money[0]! - PRICE, money[1]! + PRICE]);
      expect(await stored(plan, attackerAddress)).to.deep.equal(afterOnePeriod(before));
    });

    it("a contract looping cancel, subscribe and charge in one transaction pays at most one period, whether it starts new, due, or lapsed", async () => {
      for (const start of ["new", "due", "lapsed"] as const) {
        const { plan, planAddress, token, attacker, attackerAddress, payee } = await networkHelpers.loadFixture(world);
        if (start !== "new") {
          await attacker.run(planAddress, [plan.interface.encodeFunctionData("subscribe", [PRICE])], { gasLimit: ATTACKER_GAS });
          const { nextChargeAt } = await stored(plan, attackerAddress);
          await time.setNextBlockTimestamp(start === "due" ? nextChargeAt : nextChargeAt + GRACE + 1n);
        }
        const paidBefore = (await stored(plan, attackerAddress)).periodsPaid;
        const money = await balances(token, [{ address: attackerAddress }, payee]);
        const receipt = (await (await attacker.churn(planAddress, PRICE, 4n, { gasLimit: ATTACKER_GAS })).wait())!;
        const names = eventNames(plan, planAddress, receipt);
        expect(names.filter((n) => n === "Charged"), `${start}: ${names.join(", ")}`).to.have.length(1);
        expect(triedCalls(attacker, attackerAddress, plan, receipt).filter(([fn]) => fn === "charge")).to.deep.equal(
          Array.from({ length: 4 }, (): [string, string] => ["charge", "NotDue"]),
        );
        expect(await balances(token, [{ address: attackerAddress }, payee]), start).to.deep.equal([
          money[0]! - PRICE,
          money[1]! + PRICE,
        ]);
        expect((await stored(plan, attackerAddress)).periodsPaid, start).to.equal(paidBefore + 1n);
      }
    });

    it("a reporter contract billing the same ended cycle over and over in one transaction bills it once", async () => {
      const { metered, meteredAddress, merchant, token, attacker, attackerAddress, alice, payee } =
        await networkHelpers.loadFixture(world);
      await metered.connect(merchant).setReporter(attackerAddress, true);
      await metered.connect(alice).subscribe(MAX);
      const before = await stored(metered, alice.address);
      await time.setNextBlockTimestamp(before.nextChargeAt);
      const money = await balances(token, [alice, payee]);
      const bill = (usage: bigint) => metered.interface.encodeFunctionData("chargeUsage", [alice.address, usage, REF]);
      const receipt = (await (
        await attacker.run(meteredAddress, [
          bill(USAGE),
          bill(USAGE),
          bill(1n),
          metered.interface.encodeFunctionData("chargeUsageMany", [[alice.address, alice.address], [USAGE, USAGE], [REF, REF]]),
        ], { gasLimit: ATTACKER_GAS })
      ).wait())!;
      expect(triedCalls(attacker, attackerAddress, metered, receipt)).to.deep.equal([
        ["chargeUsage", "ok"],
        ["chargeUsage", "NotDue"],
        ["chargeUsage", "NotDue"],
        ["chargeUsageMany", "ok"],
      ]);
      expect(eventNames(metered, meteredAddress, receipt)).to.deep.equal(["UsageCharged", "UsageChargeFailed", "UsageChargeFailed"]);
      const pulled = USAGE - CREDITS;
      expect(await balances(token, [alice, payee])).to.deep.equal([money[0]! - pulled, money[1]! + pulled]);
      expect(await stored(metered, alice.address)).to.deep.equal(afterOnePeriod(before));
    });

    it("a contract churning a metered subscription in one transaction is granted the free credits once and moves no token", async () => {
      const { metered, meteredAddress, token, attacker, attackerAddress, payee } = await networkHelpers.loadFixture(world);
      const sub = metered.interface.encodeFunctionData("subscribe", [MAX]);
      const cancel = metered.interface.encodeFunctionData("cancel");
      const money = await balances(token, [{ address: attackerAddress }, payee]);
      const receipt = (await (await attacker.run(meteredAddress, [sub, cancel, sub, cancel, sub], { gasLimit: ATTACKER_GAS })).wait())!;
      expect(eventNames(metered, meteredAddress, receipt)).to.deep.equal([
        "CreditsGranted",
        "Subscribed",
        "Cancelled",
        "Subscribed",
        "Cancelled",
        "Subscribed",
      ]);
      expect(await metered.creditsOf(attackerAddress)).to.equal(CREDITS);
      expect(await balances(token, [{ address: attackerAddress }, payee])).to.deep.equal(money);
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("replaying subscribeBySig signatures", () => {
    it("a signature for the fixed plan is refused by a metered plan of the same merchant and token, and the other way round (InvalidSignature); each still works where it was made for", async () => {
      const { plan, planAddress, metered, meteredAddress, carol, keeper: relayer } = await networkHelpers.loadFixture(world);
      const { chainId } = await ethers.provider.getNetwork();
      const deadline = BigInt(await time.latest()) + HOUR;
      // Same subscriber, max amount, nonce (0 on both) and deadline: only the domain's plan differs.
      const auth = { subscriber: carol.address, maxAmount: MAX, nonce: 0n, deadline };
      const forFixed = await signSubscribe(carol, planAddress, chainId, auth);
      const forMetered = await signSubscribe(carol, meteredAddress, chainId, auth);
      await expect(metered.connect(relayer).subscribeBySig(carol.address, MAX, deadline, forFixed))
        .to.be.revertedWithCustomError(metered, "InvalidSignature")
        .withArgs(carol.address);
      await expect(plan.connect(relayer).subscribeBySig(carol.address, MAX, deadline, forMetered))
        .to.be.revertedWithCustomError(plan, "InvalidSignature")
        .withArgs(carol.address);
      expect(await plan.statusOf(carol.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await metered.statusOf(carol.address)).to.equal(BigInt(SubscriptionStatus.None));
      await expect(plan.connect(relayer).subscribeBySig(carol.address, MAX, deadline, forFixed)).to.emit(plan, "Charged");
      await expect(metered.connect(relayer).subscribeBySig(carol.address, MAX, deadline, forMetered)).to.emit(metered, "Subscribed");
    });

    it("a signature made on one chain is refused on another chain by the same plan at the same address, and the other way round", async () => {
      // Two fresh chains with different chain ids and the same deployments: the plans share an address.
      const chainA = await network.create();
      const chainB = await network.create({ override: { chainId: 31_338 } });
      try {
        const a = await deployStack(chainA.ethers);
        const b = await deployStack(chainB.ethers);
        expect(b.planAddress).to.equal(a.planAddress);
        const idA = (await chainA.ethers.provider.getNetwork()).chainId;
        const idB = (await chainB.ethers.provider.getNetwork()).chainId;
        expect(idA).to.not.equal(idB);
        const [alice, relayer] = [a.actors.alice, a.actors.bob];
        const deadline = BigInt(await chainA.networkHelpers.time.latest()) + 100n * HOUR;
        const auth = { subscriber: alice.address, maxAmount: PRICE, nonce: 0n, deadline };
        const onA = await signSubscribe(alice, a.planAddress, idA, auth);
        const onB = await signSubscribe(alice, b.planAddress, idB, auth);

        await expect(b.plan.connect(b.actors.bob).subscribeBySig(alice.address, PRICE, deadline, onA))
          .to.be.revertedWithCustomError(b.plan, "InvalidSignature")
          .withArgs(alice.address);
        await expect(a.plan.connect(relayer).subscribeBySig(alice.address, PRICE, deadline, onB))
          .to.be.revertedWithCustomError(a.plan, "InvalidSignature")
          .withArgs(alice.address);
        // Used where it was made for, it works; replayed on the other chain after that, it still fails.
        await expect(a.plan.connect(relayer).subscribeBySig(alice.address, PRICE, deadline, onA)).to.emit(a.plan, "Charged");
        await expect(b.plan.connect(b.actors.bob).subscribeBySig(alice.address, PRICE, deadline, onA))
          .to.be.revertedWithCustomError(b.plan, "InvalidSignature")
          .withArgs(alice.address);
        expect(await b.plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.None));
        expect(await b.token.balanceOf(alice.address)).to.equal(FUNDS);
        // Chain B's plan does check against its own chain id: the signature made for it works there.
        await expect(b.plan.connect(b.actors.bob).subscribeBySig(alice.address, PRICE, deadline, onB)).to.emit(b.plan, "Charged");
      } finally {
        await chainA.close();
        await chainB.close();
      }
    });

    it("on a metered plan, replaying the signature that subscribed after a cancel does not re-activate the subscription, even inside the cycle", async () => {
      const { metered, meteredAddress, carol, keeper: relayer } = await networkHelpers.loadFixture(world);
      const { chainId } = await ethers.provider.getNetwork();
      const deadline = BigInt(await time.latest()) + 100n * HOUR;
      const signature = await signSubscribe(carol, meteredAddress, chainId, { subscriber: carol.address, maxAmount: MAX, nonce: 0n, deadline });
      await metered.connect(relayer).subscribeBySig(carol.address, MAX, deadline, signature);
      await metered.connect(carol).cancel();
      const before = await stored(metered, carol.address);
      // A re-subscription inside the cycle would re-activate it (IPlanCore.subscribe): the used nonce is
      // what refuses the replay.
      await expect(metered.connect(relayer).subscribeBySig(carol.address, MAX, deadline, signature))
        .to.be.revertedWithCustomError(metered, "InvalidSignature")
        .withArgs(carol.address);
      expect(await metered.statusOf(carol.address)).to.equal(BigInt(SubscriptionStatus.Cancelled));
      expect(await stored(metered, carol.address)).to.deep.equal(before);
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("front-running a permit", () => {
    it("a front-run permit gives the front-runner nothing on a fixed plan: the approved-but-unsubscribed signer cannot be charged, and their subscribeWithPermit still succeeds", async () => {
      const { plan, planAddress, token, victim, stranger, payee } = await networkHelpers.loadFixture(world);
      const value = await plan.requiredAllowance(12n);
      const deadline = BigInt(await time.latest()) + HOUR;
      const { v, r, s } = await signPermit(token, victim, planAddress, value, deadline);
      await token.connect(stranger).permit(victim.address, planAddress, value, deadline, v, r, s);
      await expect(plan.connect(stranger).charge(victim.address))
        .to.be.revertedWithCustomError(plan, "NotSubscribed")
        .withArgs(victim.address);
      await expect(plan.connect(stranger).chargeMany([victim.address])).to.not.emit(plan, "Charged");
      expect(await token.balanceOf(victim.address)).to.equal(FUNDS);

      const tx = plan.connect(victim).subscribeWithPermit(PRICE, value, deadline, v, r, s);
      await expect(tx).to.changeTokenBalances(ethers, token, [victim, payee, stranger], [-PRICE, PRICE, 0n]);
      await expect(tx).to.emit(plan, "Subscribed");
      expect(await token.allowance(victim.address, planAddress)).to.equal(value - PRICE);
      expect(await token.allowance(victim.address, stranger.address)).to.equal(0n);
    });

    it("the same on a metered plan: nobody can bill the signer before they subscribe, and subscribeWithPermit still subscribes them after a front-run permit", async () => {
      const { metered, meteredAddress, token, victim, stranger, reporter } = await networkHelpers.loadFixture(world);
      const value = await metered.requiredAllowance(12n);
      const deadline = BigInt(await time.latest()) + HOUR;
      const { v, r, s } = await signPermit(token, victim, meteredAddress, value, deadline);
      await token.connect(stranger).permit(victim.address, meteredAddress, value, deadline, v, r, s);
      await expect(metered.connect(reporter).chargeUsage(victim.address, USAGE, REF))
        .to.be.revertedWithCustomError(metered, "NotSubscribed")
        .withArgs(victim.address);

      await expect(metered.connect(victim).subscribeWithPermit(MAX, value, deadline, v, r, s))
        .to.emit(metered, "Subscribed")
        .and.to.not.emit(token, "Approval");
      expect(await metered.statusOf(victim.address)).to.equal(BigInt(SubscriptionStatus.Active));
      expect(await token.allowance(victim.address, meteredAddress)).to.equal(value);
      expect(await token.balanceOf(victim.address)).to.equal(FUNDS);
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("a keeper starving a charge of gas", () => {
    /** alice subscribed, due now; the payee (and the keeper) hold no token yet, so each pull writes a fresh
     * balance slot: the most expensive token call, where starvation would show first. */
    async function starvationStack(keeperFeeBps: bigint) {
      const stack = await deployStack(ethers, { terms: { keeperFeeBps }, funded: ["alice"] });
      await stack.plan.connect(stack.actors.merchant).setPayee(stack.actors.newPayee.address);
      const sub = await subscribe(stack.plan, stack.actors.alice);
      await time.increaseTo(sub.nextChargeAt);
      return { ...stack, ...stack.actors };
    }
    const noFeeFixture = () => starvationStack(0n);
    const feeFixture = () => starvationStack(1_000n);

    /**
     * Sends `charge(alice)` as the keeper at gas limits 100 apart, from a little more than it needs down to
     * just above a transaction's intrinsic cost, and checks
     * each outcome on its own (state restored after each): either one Charged with the full price split as
     * the terms say and the schedule one period on, or a revert with nothing changed. Returns how many
     * attempts went each way.
     */
    async function scan(fixture: typeof noFeeFixture, fee: bigint) {
      const { plan, planAddress, token, alice, keeper, newPayee } = await networkHelpers.loadFixture(fixture);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, newPayee, keeper]);
      const enough = Number(await plan.connect(keeper).charge.estimateGas(alice.address));
      const outcomes = new Map<string, number>();
      // From a little more than the estimate down to just above the intrinsic cost of the transaction.
      for (let gasLimit = enough + 1_000; gasLimit >= 25_000; gasLimit -= 100) {
        const snapshot = await networkHelpers.takeSnapshot();
        let outcome = "charged";
        let receipt: Awaited<ReturnType<Awaited<ReturnType<typeof plan.charge>>["wait"]>> = null;
        try {
          receipt = await (await plan.connect(keeper).charge(alice.address, { gasLimit })).wait();
        } catch (error) {
          outcome = revertName(plan.interface, error);
        }
        if (receipt !== null) {
          expect(eventNames(plan, planAddress, receipt), `events at gasLimit ${gasLimit}`).to.deep.equal(
            fee === 0n ? ["Charged"] : ["KeeperFeePaid", "Charged"],
          );
          expect(await balances(token, [alice, newPayee, keeper]), `balances at gasLimit ${gasLimit}`).to.deep.equal([
            money[0]! - PRICE,
            money[1]! + PRICE - fee,
            money[2]! + fee,
          ]);
          expect(await stored(plan, alice.address), `schedule at gasLimit ${gasLimit}`).to.deep.equal(afterOnePeriod(before));
        } else {
          expect(await stored(plan, alice.address), `schedule after a revert at gasLimit ${gasLimit}`).to.deep.equal(before);
          expect(await balances(token, [alice, newPayee, keeper]), `balances after a revert at gasLimit ${gasLimit}`).to.deep.equal(money);
        }
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        await snapshot.restore();
      }
      return outcomes;
    }

    it("charge either fully succeeds or fully reverts at every gas limit: never a moved schedule without the payment, never a payment without Charged", async () => {
      const outcomes = await scan(noFeeFixture, 0n);
      // Both outcomes were seen, and every failure reverts the whole transaction: refused before the pull
      // when too little gas is left for its whole budget (BatchOutOfGas), or out of gas as a whole.
      expect([...outcomes.keys()].sort(), JSON.stringify([...outcomes])).to.deep.equal(["BatchOutOfGas", "OutOfGas", "charged"]);
    });

    it("on a keeper-fee plan, the payee's share and the keeper's fee are paid together or the charge reverts: a starved fee call never leaves a charge with the fee unpaid", async () => {
      const outcomes = await scan(feeFixture, PRICE / 10n);
      expect([...outcomes.keys()].sort(), JSON.stringify([...outcomes])).to.deep.equal(["BatchOutOfGas", "OutOfGas", "charged"]);
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("billing on a plan one is not authorized on", () => {
    it("a reporter of one metered plan cannot bill a subscriber of another plan of the same merchant: NotAuthorizedReporter, nothing moves", async () => {
      const { factory, tokenAddress, token, metered, merchant, payee, reporter, alice } = await networkHelpers.loadFixture(world);
      const { plan: other } = await createMeteredPlan(ethers, factory, merchant, meteredTerms(tokenAddress, payee.address));
      await token.connect(alice).approve(await other.getAddress(), FUNDS);
      await other.connect(alice).subscribe(MAX);
      await metered.connect(alice).subscribe(MAX);
      expect(await metered.isReporter(reporter.address)).to.equal(true);
      expect(await other.isReporter(reporter.address)).to.equal(false);
      await time.increaseTo((await stored(metered, alice.address)).nextChargeAt);
      const before = await stored(other, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(other.connect(reporter).chargeUsage(alice.address, USAGE, REF))
        .to.be.revertedWithCustomError(other, "NotAuthorizedReporter")
        .withArgs(reporter.address);
      await expect(other.connect(reporter).chargeUsageMany([alice.address], [USAGE], [REF]))
        .to.be.revertedWithCustomError(other, "NotAuthorizedReporter")
        .withArgs(reporter.address);
      expect(await stored(other, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
      // Where it is a reporter, it bills.
      await expect(metered.connect(reporter).chargeUsage(alice.address, USAGE, REF)).to.emit(metered, "UsageCharged");
    });

    it("a keeper authorized on one keeper-restricted plan cannot charge on another: NotAuthorizedKeeper, nothing moves", async () => {
      const { factory, tokenAddress, token, merchant, payee, keeper, alice } = await networkHelpers.loadFixture(world);
      const terms = fixedTerms(tokenAddress, payee.address, { keeperRestricted: true });
      const { plan: mine } = await createPlan(ethers, factory, merchant, terms);
      const { plan: other } = await createPlan(ethers, factory, merchant, terms);
      await mine.connect(merchant).setKeeper(keeper.address, true);
      for (const p of [mine, other]) {
        await token.connect(alice).approve(await p.getAddress(), FUNDS);
        await p.connect(alice).subscribe(PRICE);
      }
      await time.increaseTo((await stored(other, alice.address)).nextChargeAt);
      const before = await stored(other, alice.address);
      const money = await balances(token, [alice, payee]);
      await expect(other.connect(keeper).charge(alice.address))
        .to.be.revertedWithCustomError(other, "NotAuthorizedKeeper")
        .withArgs(keeper.address);
      await expect(other.connect(keeper).chargeMany([alice.address]))
        .to.be.revertedWithCustomError(other, "NotAuthorizedKeeper")
        .withArgs(keeper.address);
      expect(await stored(other, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, payee])).to.deep.equal(money);
      await expect(mine.connect(keeper).charge(alice.address)).to.emit(mine, "Charged");
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("the owner redirecting funds", () => {
    it("FixedPricePlan: no state-changing function takes a recipient or a charge amount; these are all of them, with their parameters", async () => {
      const { plan } = await networkHelpers.loadFixture(world);
      expect(mutatingSignatures(plan.interface)).to.deep.equal(
        [
          ...SHARED_MUTATING,
          "charge(address subscriber)",
          "chargeMany(address[] subscribers)",
          "setKeeper(address keeper, bool authorized)",
        ].sort(),
      );
      expect(plan.interface.fallback).to.equal(null);
      expect(plan.interface.receive).to.equal(false);
    });

    it("MeteredPlan: no state-changing function takes a recipient, and the only amount is the usage (bounded by the cap and the subscriber's max amount); these are all of them, with their parameters", async () => {
      const { metered } = await networkHelpers.loadFixture(world);
      expect(mutatingSignatures(metered.interface)).to.deep.equal(
        [
          ...SHARED_MUTATING,
          "chargeUsage(address subscriber, uint256 usage, bytes32 usageRef)",
          "chargeUsageMany(address[] subscribers, uint256[] usages, bytes32[] usageRefs)",
          "setReporter(address reporter, bool authorized)",
          "writeOff(address subscriber)",
        ].sort(),
      );
      expect(metered.interface.fallback).to.equal(null);
      expect(metered.interface.receive).to.equal(false);
    });

    it("whoever calls, a pull goes only to the payee of the moment: the owner charging or billing receives nothing, the plans hold nothing, and after setPayee the next pull goes to the new payee", async () => {
      const { plan, planAddress, metered, meteredAddress, token, merchant, alice, bob, payee, newPayee } =
        await networkHelpers.loadFixture(world);
      await subscribe(plan, alice);
      await metered.connect(bob).subscribe(MAX);
      await time.increaseTo((await stored(metered, bob.address)).nextChargeAt);
      const pulled = USAGE - CREDITS;
      await expect(plan.connect(merchant).charge(alice.address)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee, merchant],
        [-PRICE, PRICE, 0n],
      );
      await expect(metered.connect(merchant).chargeUsage(bob.address, USAGE, REF)).to.changeTokenBalances(
        ethers,
        token,
        [bob, payee, merchant],
        [-pulled, pulled, 0n],
      );
      expect(await token.balanceOf(planAddress)).to.equal(0n);
      expect(await token.balanceOf(meteredAddress)).to.equal(0n);

      await plan.connect(merchant).setPayee(newPayee.address);
      await time.increaseTo((await stored(plan, alice.address)).nextChargeAt);
      await expect(plan.connect(merchant).charge(alice.address)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee, newPayee, merchant],
        [-PRICE, 0n, PRICE, 0n],
      );
    });
  });
});

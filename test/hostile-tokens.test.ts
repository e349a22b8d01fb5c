// Hostile and odd tokens (issue 5): a token its issuer pauses, a token whose transfer hook re-enters the
// plan, a fee-on-transfer token (unsupported: the limitation is stated here so that it stays visible), 0 and
// 18 decimals, and a blocklisted payee on a metered plan. For each: it works, or fails alone inside a batch
// (ChargeFailed / UsageChargeFailed with the reason, nothing changed for that subscriber, the others
// charged), or is refused with a clear error; and in every case it never pays twice, never pays the wrong
// address and never bricks the plan. The no-return, false-return and blocklist (subscriber, fixed-plan
// payee, keeper) tokens are in tokens.test.ts; a blocklisted subscriber on a metered plan in metered.test.ts.
import { expect } from "chai";
import { encodeBytes32String } from "ethers";
import { network } from "hardhat";

import {
  ChargeReason,
  createMeteredPlan,
  createPlan,
  deployFactory,
  fixedTerms,
  meteredTerms,
  SubscriptionStatus,
} from "../scripts/lib/plans.js";
import type { PlanTermsStruct } from "../typechain-types/contracts/PlanFactory.js";
import type { FixedPricePlan, MeteredPlan } from "../typechain-types/index.js";
import {
  actors,
  balances,
  fund,
  FUNDS,
  GRACE,
  PERIOD,
  planEvents,
  PRICE,
  stored,
  subscribe,
  type StoredSubscription,
} from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

type TokenName =
  | "PausableToken"
  | "ReentrantToken"
  | "FeeOnTransferToken"
  | "ZeroDecimalsToken"
  | "TestToken18"
  | "BlocklistToken";

/** Metered terms used here: a cap of 100.000000 per cycle, 5.000000 of free credits (unless overridden). */
const CAP = 100_000_000n;
const CREDITS = 5_000_000n;
/** The max amount metered subscribers set, and a usage above the credits that pulls USAGE - CREDITS. */
const MAX = 50_000_000n;
const USAGE = 20_000_000n;
const REF = encodeBytes32String("inv-2026-11");

/** `s` after exactly one paid period (or billed cycle): one period later, one more period paid. */
const afterOnePeriod = (s: StoredSubscription): StoredSubscription => ({
  ...s,
  nextChargeAt: s.nextChargeAt + PERIOD,
  periodsPaid: s.periodsPaid + 1n,
});

/** A fixed plan (merchant owner, paying `payee`) on a fresh `name` token; alice, bob, carol funded and approved. */
async function fixedStack(name: TokenName, terms: Partial<PlanTermsStruct> = {}, funds: bigint = FUNDS) {
  const who = await actors(ethers);
  const tokenAddress = await (await ethers.deployContract(name)).getAddress();
  // Every mock shares TestUSDC's mint/approve/balanceOf/allowance: one handle drives them all.
  const token = await ethers.getContractAt("TestUSDC", tokenAddress);
  const factory = await deployFactory(ethers);
  const { plan } = await createPlan(ethers, factory, who.merchant, fixedTerms(tokenAddress, who.payee.address, terms));
  const planAddress = await plan.getAddress();
  for (const account of [who.alice, who.bob, who.carol]) await fund(token, account, planAddress, funds);
  return { ...who, token, tokenAddress, factory, plan, planAddress };
}

/** A metered plan on a fresh `name` token, keeper as reporter; alice, bob (subscribed with MAX, in that
 * order) and carol funded and approved. `due` is bob's cycle end (alice's is a second or so earlier). */
async function meteredStack(name: TokenName, terms: Partial<PlanTermsStruct> = {}) {
  const who = await actors(ethers);
  const tokenAddress = await (await ethers.deployContract(name)).getAddress();
  const token = await ethers.getContractAt("TestUSDC", tokenAddress);
  const factory = await deployFactory(ethers);
  const { plan } = await createMeteredPlan(
    ethers,
    factory,
    who.merchant,
    meteredTerms(tokenAddress, who.payee.address, { perCycleCap: CAP, freeCredits: CREDITS, ...terms }),
  );
  const planAddress = await plan.getAddress();
  await plan.connect(who.merchant).setReporter(who.keeper.address, true);
  for (const account of [who.alice, who.bob, who.carol]) await fund(token, account, planAddress);
  await (await plan.connect(who.alice).subscribe(MAX)).wait();
  await (await plan.connect(who.bob).subscribe(MAX)).wait();
  const aliceDue = (await plan.subscriptionOf(who.alice.address)).nextChargeAt;
  const due = (await plan.subscriptionOf(who.bob.address)).nextChargeAt;
  return { ...who, reporter: who.keeper, token, tokenAddress, factory, plan, planAddress, aliceDue, due };
}

/** The revert data of the plans' reentrancy guard (OpenZeppelin's ReentrancyGuardTransient). */
async function guardRevertData(plan: FixedPricePlan | MeteredPlan): Promise<string> {
  return plan.interface.encodeErrorResult("ReentrancyGuardReentrantCall", []);
}

describe("hostile and odd tokens", () => {
  // ------------------------------------------------------------------------------------------------
  describe("a pausable token (the issuer pauses every transfer)", () => {
    async function pausableFixture() {
      const stack = await fixedStack("PausableToken");
      const a = await subscribe(stack.plan, stack.alice);
      const b = await subscribe(stack.plan, stack.bob);
      const pausable = await ethers.getContractAt("PausableToken", stack.tokenAddress);
      return { ...stack, pausable, aliceDue: a.nextChargeAt, due: b.nextChargeAt };
    }

    async function meteredPausableFixture() {
      const stack = await meteredStack("PausableToken");
      return { ...stack, pausable: await ethers.getContractAt("PausableToken", stack.tokenAddress) };
    }

    it("charge reverts with the token's EnforcedPause and changes nothing; subscribe is refused the same way and creates nothing", async () => {
      const { plan, token, pausable, alice, carol, payee, due } = await networkHelpers.loadFixture(pausableFixture);
      await pausable.pause();
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, carol, payee]);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(pausable, "EnforcedPause");
      await expect(plan.connect(carol).subscribe(PRICE)).to.be.revertedWithCustomError(pausable, "EnforcedPause");
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await plan.statusOf(carol.address)).to.equal(BigInt(SubscriptionStatus.None));
      expect(await balances(token, [alice, carol, payee])).to.deep.equal(money);
      // The rules still say alice is due: only the token refuses (the keeper retries inside grace).
      expect(await plan.isDue(alice.address)).to.equal(true);
    });

    it("chargeMany records ChargeFailed(TransferFailed) for each paused pull, charges nobody and changes nothing", async () => {
      const { plan, planAddress, token, pausable, alice, bob, payee, due } = await networkHelpers.loadFixture(pausableFixture);
      await pausable.pause();
      const before = [await stored(plan, alice.address), await stored(plan, bob.address)];
      const money = await balances(token, [alice, bob, payee]);
      await time.setNextBlockTimestamp(due);
      const tx = await plan.chargeMany([alice.address, bob.address]);
      const events = planEvents(plan, planAddress, (await tx.wait())!);
      expect(events).to.deep.equal([
        { name: "ChargeFailed", args: [alice.address, BigInt(ChargeReason.TransferFailed)] },
        { name: "ChargeFailed", args: [bob.address, BigInt(ChargeReason.TransferFailed)] },
      ]);
      expect([await stored(plan, alice.address), await stored(plan, bob.address)]).to.deep.equal(before);
      expect(await balances(token, [alice, bob, payee])).to.deep.equal(money);
    });

    it("after unpause, the due charge goes through once inside the grace window, on the original schedule", async () => {
      const { plan, token, pausable, alice, bob, carol, payee, aliceDue, due } = await networkHelpers.loadFixture(pausableFixture);
      await pausable.pause();
      await time.setNextBlockTimestamp(due);
      await plan.chargeMany([alice.address, bob.address]);
      await pausable.unpause();
      // The last second of alice's grace window: late, but still collectable, and anchored to the due time.
      await time.setNextBlockTimestamp(aliceDue + GRACE);
      const tx = plan.charge(alice.address);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, aliceDue + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "NotDue");
      // The plan is not bricked: new customers subscribe and pay as usual.
      await expect(plan.connect(carol).subscribe(PRICE)).to.changeTokenBalances(ethers, token, [carol, payee], [-PRICE, PRICE]);
    });

    it("a pause that outlasts the grace window lets the subscription lapse (Expired) rather than charge it late; the subscriber can start again", async () => {
      const { plan, token, pausable, alice, payee, aliceDue } = await networkHelpers.loadFixture(pausableFixture);
      await pausable.pause();
      await time.increaseTo(aliceDue + GRACE + 1n);
      await pausable.unpause();
      const now = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(now);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "SubscriptionExpired")
        .withArgs(alice.address, aliceDue + GRACE, now);
      expect(await plan.statusOf(alice.address)).to.equal(BigInt(SubscriptionStatus.Expired));
      await expect(plan.connect(alice).subscribe(PRICE)).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE]);
      expect((await stored(plan, alice.address)).periodsPaid).to.equal(2n);
    });

    it("on a metered plan: subscribing works while paused (nothing moves); chargeUsage reverts EnforcedPause; chargeUsageMany records UsageChargeFailed(TransferFailed) and keeps the cycle and the credits", async () => {
      const { plan, planAddress, token, pausable, reporter, alice, bob, carol, payee, due } =
        await networkHelpers.loadFixture(meteredPausableFixture);
      await pausable.pause();
      await expect(plan.connect(carol).subscribe(MAX)).to.emit(plan, "Subscribed");
      await time.increaseTo(due);
      const before = [await stored(plan, alice.address), await stored(plan, bob.address)];
      const money = await balances(token, [alice, bob, payee]);
      await expect(plan.connect(reporter).chargeUsage(alice.address, USAGE, REF)).to.be.revertedWithCustomError(
        pausable,
        "EnforcedPause",
      );
      const tx = await plan.connect(reporter).chargeUsageMany([alice.address, bob.address], [USAGE, USAGE], [REF, REF]);
      expect(planEvents(plan, planAddress, (await tx.wait())!)).to.deep.equal([
        { name: "UsageChargeFailed", args: [alice.address, BigInt(ChargeReason.TransferFailed), USAGE, REF] },
        { name: "UsageChargeFailed", args: [bob.address, BigInt(ChargeReason.TransferFailed), USAGE, REF] },
      ]);
      expect([await stored(plan, alice.address), await stored(plan, bob.address)]).to.deep.equal(before);
      expect(await plan.creditsOf(alice.address)).to.equal(CREDITS);
      expect(await plan.creditsOf(bob.address)).to.equal(CREDITS);
      expect(await balances(token, [alice, bob, payee])).to.deep.equal(money);
    });

    it("on a metered plan: a bill the credits cover closes its cycle while paused (no token call); the rest is billed once after unpause, inside grace", async () => {
      const { plan, token, pausable, reporter, alice, bob, payee, aliceDue, due } =
        await networkHelpers.loadFixture(meteredPausableFixture);
      await pausable.pause();
      await time.increaseTo(due);
      await expect(plan.connect(reporter).chargeUsage(alice.address, CREDITS, REF))
        .to.emit(plan, "UsageCharged")
        .withArgs(alice.address, 0n, CREDITS, CREDITS, 0n, aliceDue + PERIOD, REF);
      await pausable.unpause();
      await time.setNextBlockTimestamp(due + GRACE);
      const tx = plan.connect(reporter).chargeUsage(bob.address, USAGE, REF);
      await expect(tx)
        .to.emit(plan, "UsageCharged")
        .withArgs(bob.address, 0n, USAGE, CREDITS, USAGE - CREDITS, due + PERIOD, REF);
      await expect(tx).to.changeTokenBalances(ethers, token, [bob, payee], [-(USAGE - CREDITS), USAGE - CREDITS]);
      await expect(plan.connect(reporter).chargeUsage(bob.address, USAGE, REF)).to.be.revertedWithCustomError(plan, "NotDue");
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("a token whose transfer hook re-enters the plan", () => {
    /**
     * A fixed plan on ReentrantToken; alice and bob subscribed (bob a second later: `due` is his). The
     * token contract itself is funded and has approved the plan (through `execute`), but is not subscribed:
     * so a re-entrant `subscribe` from it would succeed if it were not re-entrant.
     */
    async function reentrantStack(terms: Partial<PlanTermsStruct> = {}) {
      const stack = await fixedStack("ReentrantToken", terms);
      const hooked = await ethers.getContractAt("ReentrantToken", stack.tokenAddress);
      await stack.token.mint(stack.tokenAddress, FUNDS);
      await hooked.execute(stack.tokenAddress, stack.token.interface.encodeFunctionData("approve", [stack.planAddress, FUNDS]));
      const a = await subscribe(stack.plan, stack.alice);
      const b = await subscribe(stack.plan, stack.bob);
      return { ...stack, hooked, aliceDue: a.nextChargeAt, due: b.nextChargeAt };
    }
    const reentrantFixture = () => reentrantStack();
    const reentrantFeeFixture = () => reentrantStack({ keeperFeeBps: 1_000n });
    type Fixed = Awaited<ReturnType<typeof reentrantFixture>>;

    /**
     * Arms the hook on pulls from alice with `inner` (after `prepare`), charges at bob's due time with
     * `charge(alice)` and then, from the same state, with `chargeMany([alice, bob])`, and checks each time:
     * the re-entrant call reverted ReentrancyGuardReentrantCall, the outer call paid each listed subscriber
     * exactly once (balances to the unit, stored schedule one period on), and nothing else changed (bob
     * when not listed, the token's own subscription). Then, hook off, `proof` shows that the same call made
     * outside a transfer is not refused: the guard, not some other rule, stopped it.
     */
    async function expectFixedReentryRefused(
      inner: (f: Fixed) => string,
      prepare: (f: Fixed) => Promise<void>,
      proof: (f: Fixed, data: string) => Promise<void>,
    ) {
      for (const outer of ["charge", "chargeMany"] as const) {
        const f = await networkHelpers.loadFixture(reentrantFixture);
        const { plan, planAddress, token, tokenAddress, hooked, alice, bob, payee, due } = f;
        await prepare(f);
        const data = inner(f);
        await hooked.setHook(alice.address, planAddress, data, false);
        const holders = [alice, bob, { address: tokenAddress }, payee];
        const before = await Promise.all([alice, bob, { address: tokenAddress }].map((a) => stored(plan, a.address)));
        const money = await balances(token, holders);

        await time.setNextBlockTimestamp(due);
        const tx = outer === "charge" ? await plan.charge(alice.address) : await plan.chargeMany([alice.address, bob.address]);
        const receipt = (await tx.wait())!;
        const guard = await guardRevertData(plan);

        await expect(tx).to.emit(hooked, "ReentryAttempted").withArgs(planAddress, data.slice(0, 10), false, guard);
        expect(await hooked.reentries()).to.equal(1n);
        expect(await hooked.lastReentrySucceeded()).to.equal(false);
        expect(await hooked.lastReentryReturnData()).to.equal(guard);

        const bobCharged = outer === "chargeMany";
        expect(planEvents(plan, planAddress, receipt).map((e) => [e.name, e.args[0]])).to.deep.equal(
          bobCharged ? [["Charged", alice.address], ["Charged", bob.address]] : [["Charged", alice.address]],
        );
        const paid = bobCharged ? 2n : 1n;
        expect(await balances(token, holders)).to.deep.equal([
          money[0]! - PRICE,
          money[1]! - (bobCharged ? PRICE : 0n),
          money[2]!,
          money[3]! + paid * PRICE,
        ]);
        expect(await stored(plan, alice.address)).to.deep.equal(afterOnePeriod(before[0]!));
        expect(await stored(plan, bob.address)).to.deep.equal(bobCharged ? afterOnePeriod(before[1]!) : before[1]!);
        expect(await stored(plan, tokenAddress)).to.deep.equal(before[2]!);
        expect(await token.balanceOf(planAddress)).to.equal(0n);

        if (outer === "charge") {
          await hooked.clearHook();
          await proof(f, data);
        }
      }
    }

    const nothing = async () => {};

    it("re-entering charge(bob) from the hook reverts ReentrancyGuardReentrantCall; the outer charge or chargeMany pays each subscriber exactly once", async () => {
      await expectFixedReentryRefused(
        ({ plan, bob }) => plan.interface.encodeFunctionData("charge", [bob.address]),
        nothing,
        async ({ plan, hooked, planAddress, bob, due }, data) => {
          await expect(hooked.execute(planAddress, data)).to.emit(plan, "Charged").withArgs(bob.address, 1n, PRICE, due + PERIOD);
        },
      );
    });

    it("re-entering chargeMany([bob]) from the hook reverts ReentrancyGuardReentrantCall; the outer call pays each subscriber exactly once", async () => {
      await expectFixedReentryRefused(
        ({ plan, bob }) => plan.interface.encodeFunctionData("chargeMany", [[bob.address]]),
        nothing,
        async ({ plan, hooked, planAddress, bob, due }, data) => {
          await expect(hooked.execute(planAddress, data)).to.emit(plan, "Charged").withArgs(bob.address, 1n, PRICE, due + PERIOD);
        },
      );
    });

    it("re-entering cancel() from the hook (the token being a subscriber) reverts ReentrancyGuardReentrantCall and cancels nothing; the outer call pays exactly once", async () => {
      await expectFixedReentryRefused(
        ({ plan }) => plan.interface.encodeFunctionData("cancel"),
        async ({ plan, hooked, planAddress }) => {
          await hooked.execute(planAddress, plan.interface.encodeFunctionData("subscribe", [PRICE]));
        },
        async ({ plan, hooked, planAddress, tokenAddress }, data) => {
          // Live (its own period falls due a second after bob's), not cancelled: the cancel can still happen.
          expect(await plan.statusOf(tokenAddress)).to.equal(BigInt(SubscriptionStatus.PastDue));
          await expect(hooked.execute(planAddress, data)).to.emit(plan, "Cancelled");
        },
      );
    });

    it("re-entering subscribe() from the hook (the token funded and approving) reverts ReentrancyGuardReentrantCall and subscribes nobody; the outer call pays exactly once", async () => {
      await expectFixedReentryRefused(
        ({ plan }) => plan.interface.encodeFunctionData("subscribe", [PRICE]),
        nothing,
        async ({ plan, hooked, planAddress, tokenAddress }, data) => {
          expect(await plan.statusOf(tokenAddress)).to.equal(BigInt(SubscriptionStatus.None));
          await expect(hooked.execute(planAddress, data)).to.emit(plan, "Subscribed");
        },
      );
    });

    it("on a keeper-fee plan the hook fires on both pulls (payee share, keeper fee); both re-entries are refused and the amounts are exact", async () => {
      const { plan, planAddress, token, hooked, alice, bob, keeper, payee, due } =
        await networkHelpers.loadFixture(reentrantFeeFixture);
      const fee = PRICE / 10n;
      await hooked.setHook(alice.address, planAddress, plan.interface.encodeFunctionData("charge", [bob.address]), false);
      const aliceBefore = await stored(plan, alice.address);
      const bobBefore = await stored(plan, bob.address);
      await time.setNextBlockTimestamp(due);
      const tx = plan.connect(keeper).charge(alice.address);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, payee, keeper], [-PRICE, 0n, PRICE - fee, fee]);
      await expect(tx).to.emit(plan, "KeeperFeePaid").withArgs(keeper.address, alice.address, fee);
      expect(await hooked.reentries()).to.equal(2n);
      expect(await hooked.lastReentryReturnData()).to.equal(await guardRevertData(plan));
      expect(await stored(plan, alice.address)).to.deep.equal(afterOnePeriod(aliceBefore));
      expect(await stored(plan, bob.address)).to.deep.equal(bobBefore);
    });

    it("a hook that re-raises the refused re-entry fails that pull: charge reverts ReentrancyGuardReentrantCall and changes nothing; in a batch it fails alone (ChargeFailed TransferFailed) and is charged once the hook is gone", async () => {
      const { plan, planAddress, token, hooked, alice, bob, payee, aliceDue, due } = await networkHelpers.loadFixture(reentrantFixture);
      await hooked.setHook(alice.address, planAddress, plan.interface.encodeFunctionData("charge", [bob.address]), true);
      await time.increaseTo(due);
      const before = await stored(plan, alice.address);
      const money = await balances(token, [alice, bob, payee]);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "ReentrancyGuardReentrantCall");
      expect(await stored(plan, alice.address)).to.deep.equal(before);
      expect(await balances(token, [alice, bob, payee])).to.deep.equal(money);

      const tx = await plan.chargeMany([alice.address, bob.address]);
      expect(planEvents(plan, planAddress, (await tx.wait())!).map((e) => [e.name, e.args[0], e.args[1]])).to.deep.equal([
        ["ChargeFailed", alice.address, BigInt(ChargeReason.TransferFailed)],
        ["Charged", bob.address, 1n],
      ]);
      expect(await balances(token, [alice, bob, payee])).to.deep.equal([money[0]!, money[1]! - PRICE, money[2]! + PRICE]);
      expect(await stored(plan, alice.address)).to.deep.equal(before);

      await hooked.clearHook();
      await expect(plan.charge(alice.address)).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, aliceDue + PERIOD);
    });

    /**
     * A metered plan (no free credits) on ReentrantToken; alice and bob subscribed. The token contract is
     * funded, approves the plan and is an authorized reporter, but is not subscribed: a re-entrant
     * `chargeUsage` from it is refused only because it is re-entrant.
     */
    async function meteredReentrantFixture() {
      const stack = await meteredStack("ReentrantToken", { freeCredits: 0n });
      const hooked = await ethers.getContractAt("ReentrantToken", stack.tokenAddress);
      await stack.token.mint(stack.tokenAddress, FUNDS);
      await hooked.execute(stack.tokenAddress, stack.token.interface.encodeFunctionData("approve", [stack.planAddress, FUNDS]));
      await stack.plan.connect(stack.merchant).setReporter(stack.tokenAddress, true);
      return { ...stack, hooked };
    }
    type Metered = Awaited<ReturnType<typeof meteredReentrantFixture>>;

    /** `expectFixedReentryRefused` for a metered plan: outer `chargeUsage(alice)` then
     * `chargeUsageMany([alice, bob])`, by the reporter, at bob's cycle end. */
    async function expectMeteredReentryRefused(
      inner: (f: Metered) => string,
      prepare: (f: Metered) => Promise<void>,
      proof: (f: Metered, data: string) => Promise<void>,
    ) {
      for (const outer of ["chargeUsage", "chargeUsageMany"] as const) {
        const f = await networkHelpers.loadFixture(meteredReentrantFixture);
        const { plan, planAddress, token, tokenAddress, hooked, reporter, alice, bob, payee, due } = f;
        await prepare(f);
        const data = inner(f);
        await hooked.setHook(alice.address, planAddress, data, false);
        const holders = [alice, bob, { address: tokenAddress }, payee];
        const before = await Promise.all([alice, bob, { address: tokenAddress }].map((a) => stored(plan, a.address)));
        const money = await balances(token, holders);

        await time.setNextBlockTimestamp(due);
        const tx =
          outer === "chargeUsage"
            ? await plan.connect(reporter).chargeUsage(alice.address, USAGE, REF)
            : await plan.connect(reporter).chargeUsageMany([alice.address, bob.address], [USAGE, USAGE], [REF, REF]);
        const receipt = (await tx.wait())!;
        const guard = await guardRevertData(plan);

        await expect(tx).to.emit(hooked, "ReentryAttempted").withArgs(planAddress, data.slice(0, 10), false, guard);
        expect(await hooked.reentries()).to.equal(1n);
        expect(await hooked.lastReentryReturnData()).to.equal(guard);

        const bobBilled = outer === "chargeUsageMany";
        expect(planEvents(plan, planAddress, receipt).map((e) => [e.name, e.args[0]])).to.deep.equal(
          bobBilled ? [["UsageCharged", alice.address], ["UsageCharged", bob.address]] : [["UsageCharged", alice.address]],
        );
        const billed = bobBilled ? 2n : 1n;
        expect(await balances(token, holders)).to.deep.equal([
          money[0]! - USAGE,
          money[1]! - (bobBilled ? USAGE : 0n),
          money[2]!,
          money[3]! + billed * USAGE,
        ]);
        expect(await stored(plan, alice.address)).to.deep.equal(afterOnePeriod(before[0]!));
        expect(await stored(plan, bob.address)).to.deep.equal(bobBilled ? afterOnePeriod(before[1]!) : before[1]!);
        expect(await stored(plan, tokenAddress)).to.deep.equal(before[2]!);
        expect(await token.balanceOf(planAddress)).to.equal(0n);

        if (outer === "chargeUsage") {
          await hooked.clearHook();
          await proof(f, data);
        }
      }
    }

    it("on a metered plan, re-entering chargeUsage(bob) from the hook (as an authorized reporter) reverts ReentrancyGuardReentrantCall; each subscriber is billed exactly once", async () => {
      await expectMeteredReentryRefused(
        ({ plan, bob }) => plan.interface.encodeFunctionData("chargeUsage", [bob.address, USAGE, REF]),
        nothing,
        async ({ plan, hooked, planAddress, bob }, data) => {
          await expect(hooked.execute(planAddress, data)).to.emit(plan, "UsageCharged");
          expect((await stored(plan, bob.address)).periodsPaid).to.equal(1n);
        },
      );
    });

    it("on a metered plan, re-entering chargeUsageMany([bob]) from the hook reverts ReentrancyGuardReentrantCall; each subscriber is billed exactly once", async () => {
      await expectMeteredReentryRefused(
        ({ plan, bob }) => plan.interface.encodeFunctionData("chargeUsageMany", [[bob.address], [USAGE], [REF]]),
        nothing,
        async ({ plan, hooked, planAddress, bob }, data) => {
          await expect(hooked.execute(planAddress, data)).to.emit(plan, "UsageCharged");
          expect((await stored(plan, bob.address)).periodsPaid).to.equal(1n);
        },
      );
    });

    it("on a metered plan, re-entering cancel() from the hook (the token being a subscriber) reverts ReentrancyGuardReentrantCall and cancels nothing", async () => {
      await expectMeteredReentryRefused(
        ({ plan }) => plan.interface.encodeFunctionData("cancel"),
        async ({ plan, hooked, planAddress }) => {
          await hooked.execute(planAddress, plan.interface.encodeFunctionData("subscribe", [MAX]));
        },
        async ({ plan, hooked, planAddress, tokenAddress }, data) => {
          expect(await plan.statusOf(tokenAddress)).to.equal(BigInt(SubscriptionStatus.Active));
          await expect(hooked.execute(planAddress, data)).to.emit(plan, "Cancelled");
        },
      );
    });

    it("on a metered plan, re-entering subscribe() from the hook reverts ReentrancyGuardReentrantCall and subscribes nobody", async () => {
      await expectMeteredReentryRefused(
        ({ plan }) => plan.interface.encodeFunctionData("subscribe", [MAX]),
        nothing,
        async ({ plan, hooked, planAddress, tokenAddress }, data) => {
          expect(await plan.statusOf(tokenAddress)).to.equal(BigInt(SubscriptionStatus.None));
          await expect(hooked.execute(planAddress, data)).to.emit(plan, "Subscribed");
        },
      );
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("a fee-on-transfer token (1% burned on every transfer; NOT supported, see SECURITY.md)", () => {
    const FEE = PRICE / 100n;
    const feeFixture = () => fixedStack("FeeOnTransferToken");
    const meteredFeeFixture = () => meteredStack("FeeOnTransferToken");

    it("LIMITATION: subscribe and charge take exactly the price from the subscriber, but the payee receives the price minus 1% while Charged reports the full price", async () => {
      const { plan, planAddress, token, alice, payee } = await networkHelpers.loadFixture(feeFixture);
      const supply = await token.totalSupply();
      const allowance = await token.allowance(alice.address, planAddress);
      const sub = plan.connect(alice).subscribe(PRICE);
      await expect(sub).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE - FEE]);
      const due = (await stored(plan, alice.address)).nextChargeAt;
      await expect(sub).to.emit(plan, "Charged").withArgs(alice.address, 0n, PRICE, due);
      expect(await token.totalSupply()).to.equal(supply - FEE);
      expect(await token.allowance(alice.address, planAddress)).to.equal(allowance - PRICE);

      await time.setNextBlockTimestamp(due);
      const charge = plan.charge(alice.address);
      await expect(charge).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE - FEE]);
      await expect(charge).to.emit(plan, "Charged").withArgs(alice.address, 1n, PRICE, due + PERIOD);
      expect(await token.balanceOf(planAddress)).to.equal(0n);
    });

    it("the rules still hold: one charge per period (NotDue; a subscriber listed twice is charged once) and never above the subscriber's maxAmount", async () => {
      const { plan, planAddress, token, alice, payee } = await networkHelpers.loadFixture(feeFixture);
      await expect(plan.connect(alice).subscribe(PRICE - 1n))
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(PRICE, PRICE - 1n);
      const sub = await subscribe(plan, alice);
      await time.setNextBlockTimestamp(sub.nextChargeAt);
      const batch = await plan.chargeMany([alice.address, alice.address]);
      expect(planEvents(plan, planAddress, (await batch.wait())!).map((e) => e.name)).to.deep.equal(["Charged"]);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "NotDue");

      // The fee comes out of what the payee receives, never on top of what the subscriber pays: a max
      // amount of exactly the price keeps working, one unit less stops the charge.
      await plan.connect(alice).setMaxAmount(PRICE - 1n);
      const next = sub.nextChargeAt + PERIOD;
      await time.setNextBlockTimestamp(next);
      await expect(plan.charge(alice.address))
        .to.be.revertedWithCustomError(plan, "MaxAmountExceeded")
        .withArgs(PRICE, PRICE - 1n);
      await expect(plan.chargeMany([alice.address]))
        .to.emit(plan, "ChargeFailed")
        .withArgs(alice.address, ChargeReason.MaxAmountExceeded);
      await plan.connect(alice).setMaxAmount(PRICE);
      await expect(plan.charge(alice.address)).to.changeTokenBalances(ethers, token, [alice, payee], [-PRICE, PRICE - FEE]);
      expect((await stored(plan, alice.address)).periodsPaid).to.equal(3n);
    });

    it("LIMITATION on a metered plan: the subscriber pays the amount billed after credits, the payee receives it minus 1%, and UsageCharged reports the full amount pulled", async () => {
      const { plan, token, reporter, alice, payee, aliceDue } = await networkHelpers.loadFixture(meteredFeeFixture);
      const pulled = USAGE - CREDITS;
      await time.increaseTo(aliceDue);
      const tx = plan.connect(reporter).chargeUsage(alice.address, USAGE, REF);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-pulled, pulled - pulled / 100n]);
      await expect(tx).to.emit(plan, "UsageCharged").withArgs(alice.address, 0n, USAGE, CREDITS, pulled, aliceDue + PERIOD, REF);
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("a 0-decimal token", () => {
    const WHOLE_PRICE = 10n;
    const zeroFixture = () => fixedStack("ZeroDecimalsToken", { price: WHOLE_PRICE }, 1_000n);

    it("works with a whole-unit price: subscribe, charge and chargeMany pull exactly the price, once per period", async () => {
      const { plan, planAddress, token, tokenAddress, alice, bob, payee } = await networkHelpers.loadFixture(zeroFixture);
      expect(await (await ethers.getContractAt("ZeroDecimalsToken", tokenAddress)).decimals()).to.equal(0n);
      await expect(plan.connect(alice).subscribe(WHOLE_PRICE)).to.changeTokenBalances(
        ethers,
        token,
        [alice, payee],
        [-WHOLE_PRICE, WHOLE_PRICE],
      );
      const b = await subscribe(plan, bob, WHOLE_PRICE);
      expect(await plan.requiredAllowance(12n)).to.equal(12n * WHOLE_PRICE);
      await time.setNextBlockTimestamp(b.nextChargeAt);
      const tx = plan.chargeMany([alice.address, bob.address, alice.address]);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, payee], [-WHOLE_PRICE, -WHOLE_PRICE, 2n * WHOLE_PRICE]);
      expect(planEvents(plan, planAddress, (await (await tx).wait())!).map((e) => e.name)).to.deep.equal(["Charged", "Charged"]);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "NotDue");
    });

    it("a USD-priced plan on it rounds the converted price up to whole tokens ($9.99 at $1.00 is 10; at $3.00 it is 4)", async () => {
      const { factory, token, tokenAddress, merchant, payee, alice } = await networkHelpers.loadFixture(zeroFixture);
      const feed = await ethers.deployContract("MockAggregator", [8, 100_000_000n]);
      const { plan } = await createPlan(
        ethers,
        factory,
        merchant,
        fixedTerms(tokenAddress, payee.address, { price: 999_000_000n, priceFeed: await feed.getAddress(), maxPriceAge: 3_600n }),
      );
      await token.connect(alice).approve(await plan.getAddress(), 1_000n);
      await expect(plan.connect(alice).subscribe(10n)).to.changeTokenBalances(ethers, token, [alice, payee], [-10n, 10n]);
      const due = (await stored(plan, alice.address)).nextChargeAt;
      await time.setNextBlockTimestamp(due - 60n);
      await feed.setAnswer(300_000_000n);
      await time.setNextBlockTimestamp(due);
      const tx = plan.charge(alice.address);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, payee], [-4n, 4n]);
      await expect(tx).to.emit(plan, "Charged").withArgs(alice.address, 1n, 4n, due + PERIOD);
    });
  });

  describe("an 18-decimal token", () => {
    const price = 10n * 10n ** 18n;
    const token18Fixture = () => fixedStack("TestToken18", { price }, 1_000n * price);

    it("works with an 18-decimal price: the exact base units are pulled, once per period", async () => {
      const { plan, token, alice, payee } = await networkHelpers.loadFixture(token18Fixture);
      await expect(plan.connect(alice).subscribe(price)).to.changeTokenBalances(ethers, token, [alice, payee], [-price, price]);
      const due = (await stored(plan, alice.address)).nextChargeAt;
      await time.setNextBlockTimestamp(due);
      await expect(plan.charge(alice.address)).to.changeTokenBalances(ethers, token, [alice, payee], [-price, price]);
      await expect(plan.charge(alice.address)).to.be.revertedWithCustomError(plan, "NotDue");
    });
  });

  // ------------------------------------------------------------------------------------------------
  describe("a blocklisted payee on a metered plan", () => {
    async function blockedPayeeFixture() {
      const stack = await meteredStack("BlocklistToken");
      const blocklist = await ethers.getContractAt("BlocklistToken", stack.tokenAddress);
      await blocklist.setBlocked(stack.payee.address, true);
      return { ...stack, blocklist };
    }

    it("every bill that pulls fails (chargeUsage reverts AddressBlocked(payee); chargeUsageMany records TransferFailed) and changes nothing, until the owner sets a new payee; then the bills go there, once", async () => {
      const { plan, planAddress, token, blocklist, reporter, merchant, alice, bob, payee, newPayee, aliceDue, due } =
        await networkHelpers.loadFixture(blockedPayeeFixture);
      await time.increaseTo(due);
      const before = [await stored(plan, alice.address), await stored(plan, bob.address)];
      const money = await balances(token, [alice, bob, payee, newPayee]);
      await expect(plan.connect(reporter).chargeUsage(alice.address, USAGE, REF))
        .to.be.revertedWithCustomError(blocklist, "AddressBlocked")
        .withArgs(payee.address);
      const failed = await plan.connect(reporter).chargeUsageMany([alice.address, bob.address], [USAGE, USAGE], [REF, REF]);
      expect(planEvents(plan, planAddress, (await failed.wait())!)).to.deep.equal([
        { name: "UsageChargeFailed", args: [alice.address, BigInt(ChargeReason.TransferFailed), USAGE, REF] },
        { name: "UsageChargeFailed", args: [bob.address, BigInt(ChargeReason.TransferFailed), USAGE, REF] },
      ]);
      expect([await stored(plan, alice.address), await stored(plan, bob.address)]).to.deep.equal(before);
      expect([await plan.creditsOf(alice.address), await plan.creditsOf(bob.address)]).to.deep.equal([CREDITS, CREDITS]);
      expect(await balances(token, [alice, bob, payee, newPayee])).to.deep.equal(money);

      await expect(plan.connect(merchant).setPayee(newPayee.address)).to.emit(plan, "PayeeChanged").withArgs(payee.address, newPayee.address);
      const pulled = USAGE - CREDITS;
      const tx = plan.connect(reporter).chargeUsageMany([alice.address, bob.address, alice.address], [USAGE, USAGE, USAGE], [REF, REF, REF]);
      await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, payee, newPayee], [-pulled, -pulled, 0n, 2n * pulled]);
      await expect(tx).to.emit(plan, "UsageCharged").withArgs(alice.address, 0n, USAGE, CREDITS, pulled, aliceDue + PERIOD, REF);
      await expect(tx).to.emit(plan, "UsageChargeFailed").withArgs(alice.address, ChargeReason.NotDue, USAGE, REF);
    });

    it("a bill the credits cover still closes its cycle while the payee is blocked (no token moves)", async () => {
      const { plan, reporter, alice, aliceDue } = await networkHelpers.loadFixture(blockedPayeeFixture);
      await time.increaseTo(aliceDue);
      await expect(plan.connect(reporter).chargeUsage(alice.address, CREDITS - 1n, REF))
        .to.emit(plan, "UsageCharged")
        .withArgs(alice.address, 0n, CREDITS - 1n, CREDITS - 1n, 0n, aliceDue + PERIOD, REF);
      expect(await plan.creditsOf(alice.address)).to.equal(1n);
    });
  });
});

// chargeMany: every due item charged, items the rules refuse skipped silently, failed pulls recorded
// with ChargeFailed and isolated from the rest of the batch (and changing nothing: rule 12), duplicates
// charged once, and a caller's short gas never turned into a recorded failure.
import { expect } from "chai";
import { network } from "hardhat";

import { ChargeReason } from "../scripts/lib/plans.js";
import { balances, deployStack, GRACE, PERIOD, planEvents, PRICE, revertName, stored, subscribe, UNDER_COVERAGE } from "./helpers/stack.js";
import type { StoredSubscription } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

/** alice, bob and carol subscribed a second apart; `due` is when all three are due. */
async function batchFixture() {
  const stack = await deployStack(ethers, { funded: ["alice", "bob", "carol", "dave"] });
  const { alice, bob, carol } = stack.actors;
  const subs: StoredSubscription[] = [];
  for (const who of [alice, bob, carol]) subs.push(await subscribe(stack.plan, who));
  const dues = subs.map((s) => s.nextChargeAt);
  const due = dues[dues.length - 1]!;
  return { ...stack, ...stack.actors, dues, due };
}

/** Same, on a token with a blocklist. */
async function blocklistBatchFixture() {
  const stack = await deployStack(ethers, { token: "BlocklistToken" });
  const { alice, bob, carol } = stack.actors;
  const subs: StoredSubscription[] = [];
  for (const who of [alice, bob, carol]) subs.push(await subscribe(stack.plan, who));
  const blocklist = await ethers.getContractAt("BlocklistToken", stack.tokenAddress);
  return { ...stack, ...stack.actors, blocklist, due: subs[subs.length - 1]!.nextChargeAt };
}

/**
 * alice subscribed; the payee was then changed to an address that holds no token, so the next pull
 * writes a fresh balance slot (the token call is then expensive enough for its starvation to show).
 */
async function starvationFixture() {
  const stack = await deployStack(ethers);
  const { alice, bob, merchant, newPayee } = stack.actors;
  const a = await subscribe(stack.plan, alice);
  await subscribe(stack.plan, bob);
  await stack.plan.connect(merchant).setPayee(newPayee.address);
  await time.increaseTo(a.nextChargeAt + 1n);
  return { ...stack, ...stack.actors };
}

describe("chargeMany", () => {
  it("charges every due subscriber in the list, emitting Charged for each", async () => {
    const { plan, token, alice, bob, carol, payee, dues, due } = await networkHelpers.loadFixture(batchFixture);
    await time.setNextBlockTimestamp(due);
    const tx = plan.chargeMany([alice.address, bob.address, carol.address]);
    await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, carol, payee], [-PRICE, -PRICE, -PRICE, 3n * PRICE]);
    for (const [i, who] of [alice, bob, carol].entries()) {
      await expect(tx).to.emit(plan, "Charged").withArgs(who.address, 1n, PRICE, dues[i]! + PERIOD);
    }
    await expect(tx).to.not.emit(plan, "ChargeFailed");
  });

  it("returns how many subscribers it charged", async () => {
    const { plan, alice, bob, carol, dave, stranger, due } = await networkHelpers.loadFixture(batchFixture);
    await plan.connect(carol).cancel();
    await time.increaseTo(due);
    const list = [alice.address, bob.address, carol.address, dave.address, stranger.address];
    expect(await plan.chargeMany.staticCall(list)).to.equal(2n);
    expect(await plan.chargeMany.staticCall([])).to.equal(0n);
  });

  it("skips silently the items the rules refuse (not due, paused, cancelled, expired, unknown): no ChargeFailed", async () => {
    const { plan, planAddress, token, alice, bob, carol, dave, stranger, payee, due } =
      await networkHelpers.loadFixture(batchFixture);
    // carol paused, bob cancelled, dave subscribes later (not due), stranger never subscribed.
    await plan.connect(carol).pause();
    await plan.connect(bob).cancel();
    await time.increaseTo(due - 100n);
    await subscribe(plan, dave);
    const money = await balances(token, [bob, carol, dave, stranger]);
    await time.setNextBlockTimestamp(due);
    const tx = await plan.chargeMany([stranger.address, bob.address, carol.address, dave.address, alice.address]);
    const events = planEvents(plan, planAddress, (await tx.wait())!);
    expect(events.map((e) => [e.name, e.args[0]])).to.deep.equal([["Charged", alice.address]]);
    expect(await balances(token, [bob, carol, dave, stranger])).to.deep.equal(money);
    expect(await token.balanceOf(payee.address)).to.equal(5n * PRICE); // 4 subscribes + alice's charge

    // An expired item is skipped silently too.
    const aliceAfter = await stored(plan, alice.address);
    await time.increaseTo(aliceAfter.nextChargeAt + GRACE + 1n);
    const late = await plan.chargeMany([alice.address]);
    expect(planEvents(plan, planAddress, (await late.wait())!)).to.deep.equal([]);
  });

  it("emits ChargeFailed(AllowanceTooLow) for a due subscriber without allowance, and charges the others", async () => {
    const { plan, planAddress, token, alice, bob, carol, payee, due } = await networkHelpers.loadFixture(batchFixture);
    await token.connect(bob).approve(planAddress, PRICE - 1n);
    await time.setNextBlockTimestamp(due);
    const tx = plan.chargeMany([alice.address, bob.address, carol.address]);
    await expect(tx).to.emit(plan, "ChargeFailed").withArgs(bob.address, ChargeReason.AllowanceTooLow);
    await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, carol, payee], [-PRICE, 0n, -PRICE, 2n * PRICE]);
  });

  it("emits ChargeFailed(BalanceTooLow) for a due subscriber with too little balance, and charges the others", async () => {
    const { plan, token, alice, bob, carol, payee, stranger, due } = await networkHelpers.loadFixture(batchFixture);
    await token.connect(bob).transfer(stranger.address, await token.balanceOf(bob.address));
    await time.setNextBlockTimestamp(due);
    const tx = plan.chargeMany([alice.address, bob.address, carol.address]);
    await expect(tx).to.emit(plan, "ChargeFailed").withArgs(bob.address, ChargeReason.BalanceTooLow);
    await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, carol, payee], [-PRICE, 0n, -PRICE, 2n * PRICE]);
  });

  it("emits ChargeFailed(MaxAmountExceeded) for a due subscriber whose max amount is below the price, and charges the others", async () => {
    const { plan, token, alice, bob, carol, payee, due } = await networkHelpers.loadFixture(batchFixture);
    await plan.connect(bob).setMaxAmount(PRICE - 1n);
    await time.setNextBlockTimestamp(due);
    const tx = plan.chargeMany([alice.address, bob.address, carol.address]);
    await expect(tx).to.emit(plan, "ChargeFailed").withArgs(bob.address, ChargeReason.MaxAmountExceeded);
    await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, carol, payee], [-PRICE, 0n, -PRICE, 2n * PRICE]);
  });

  it("emits ChargeFailed(TransferFailed) for a blocklisted subscriber, and charges the others", async () => {
    const { plan, token, blocklist, alice, bob, carol, payee, due } = await networkHelpers.loadFixture(blocklistBatchFixture);
    await blocklist.setBlocked(bob.address, true);
    await time.setNextBlockTimestamp(due);
    const tx = plan.chargeMany([alice.address, bob.address, carol.address]);
    await expect(tx).to.emit(plan, "ChargeFailed").withArgs(bob.address, ChargeReason.TransferFailed);
    await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, carol, payee], [-PRICE, 0n, -PRICE, 2n * PRICE]);
  });

  it("a failed item changes nothing for its subscriber, who is charged on the original schedule once fixed", async () => {
    const { plan, planAddress, token, alice, bob, carol, dues, due } = await networkHelpers.loadFixture(batchFixture);
    await token.connect(bob).approve(planAddress, 0n);
    const bobBefore = await stored(plan, bob.address);
    const bobMoney = await token.balanceOf(bob.address);
    await time.setNextBlockTimestamp(due);
    await expect(plan.chargeMany([alice.address, bob.address, carol.address]))
      .to.emit(plan, "ChargeFailed")
      .withArgs(bob.address, ChargeReason.AllowanceTooLow);
    expect(await stored(plan, bob.address)).to.deep.equal(bobBefore);
    expect(await token.balanceOf(bob.address)).to.equal(bobMoney);
    expect(await plan.isDue(bob.address)).to.equal(true);

    await token.connect(bob).approve(planAddress, PRICE);
    await time.setNextBlockTimestamp(dues[1]! + GRACE);
    await expect(plan.chargeMany([bob.address]))
      .to.emit(plan, "Charged")
      .withArgs(bob.address, 1n, PRICE, dues[1]! + PERIOD);
  });

  it("a subscriber listed twice is charged once", async () => {
    const { plan, planAddress, token, alice, bob, payee, due } = await networkHelpers.loadFixture(batchFixture);
    await time.increaseTo(due);
    const list = [alice.address, alice.address, bob.address, alice.address, bob.address];
    expect(await plan.chargeMany.staticCall(list)).to.equal(2n);
    const tx = plan.chargeMany(list);
    await expect(tx).to.changeTokenBalances(ethers, token, [alice, bob, payee], [-PRICE, -PRICE, 2n * PRICE]);
    const events = planEvents(plan, planAddress, (await (await tx).wait())!);
    expect(events.map((e) => [e.name, e.args[0]])).to.deep.equal([
      ["Charged", alice.address],
      ["Charged", bob.address],
    ]);
  });

  it("a subscriber listed twice in a batch made at the last second of grace is still charged once", async () => {
    const { plan, token, alice, payee, dues } = await networkHelpers.loadFixture(batchFixture);
    await time.setNextBlockTimestamp(dues[0]! + GRACE);
    await expect(plan.chargeMany([alice.address, alice.address])).to.changeTokenBalances(
      ethers,
      token,
      [alice, payee],
      [-PRICE, PRICE],
    );
  });

  it("chargeMany of a batch already charged in the same period charges nobody", async () => {
    const { plan, token, alice, bob, payee, due } = await networkHelpers.loadFixture(batchFixture);
    await time.increaseTo(due);
    await plan.chargeMany([alice.address, bob.address]);
    await expect(plan.chargeMany([alice.address, bob.address])).to.changeTokenBalances(
      ethers,
      token,
      [alice, bob, payee],
      [0n, 0n, 0n],
    );
  });

  describe("too little gas", () => {
    /**
     * Sends chargeMany with `gasLimit` and classifies the outcome. A mined revert comes back as an error
     * carrying the revert data (if any); the batch either went through or changed nothing.
     */
    async function attempt(list: string[], gasLimit: number) {
      const { plan } = await networkHelpers.loadFixture(starvationFixture);
      try {
        const tx = await plan.chargeMany(list, { gasLimit });
        const receipt = await tx.wait();
        return { reverted: false as const, error: undefined, receipt: receipt! };
      } catch (e) {
        return { reverted: true as const, error: revertName(plan.interface, e), receipt: undefined };
      }
    }

    it("never records a funded subscriber as ChargeFailed: each gas limit either charges the batch or reverts it", async function () {
      if (UNDER_COVERAGE) this.skip();
      const { plan, planAddress, token, alice, bob, newPayee } = await networkHelpers.loadFixture(starvationFixture);
      const list = [alice.address, bob.address];
      const enough = Number(await plan.chargeMany.estimateGas(list));
      const outcomes = new Map<string, number>();
      let charged = 0;
      for (let gasLimit = enough; gasLimit >= enough - 40_000; gasLimit -= 150) {
        const outcome = await attempt(list, gasLimit);
        if (outcome.reverted) {
          outcomes.set(outcome.error, (outcomes.get(outcome.error) ?? 0) + 1);
          continue;
        }
        charged += 1;
        // loadFixture restored the pre-batch state, so this batch's events are all there is to see.
        const events = planEvents(plan, planAddress, outcome.receipt);
        expect(events.map((e) => e.name), `events at gasLimit ${gasLimit}`).to.deep.equal(["Charged", "Charged"]);
      }
      // The scan covered both outcomes, and the starved token call was reported as such at least once.
      expect(charged).to.be.greaterThan(0);
      expect(outcomes.get("BatchOutOfGas") ?? 0, JSON.stringify([...outcomes])).to.be.greaterThan(0);
      // State as before every attempt: nobody charged, nothing recorded.
      await networkHelpers.loadFixture(starvationFixture);
      expect(await plan.isDue(alice.address)).to.equal(true);
      expect(await plan.isDue(bob.address)).to.equal(true);
      expect(await token.balanceOf(newPayee.address)).to.equal(0n);
    });

    it("reverts BatchOutOfGas(subscriber) when the token call is starved, instead of recording a failure", async function () {
      if (UNDER_COVERAGE) this.skip();
      const { plan, alice } = await networkHelpers.loadFixture(starvationFixture);
      const enough = Number(await plan.chargeMany.estimateGas([alice.address]));
      let starved: number | undefined;
      for (let gasLimit = enough; gasLimit >= enough - 40_000; gasLimit -= 100) {
        const outcome = await attempt([alice.address], gasLimit);
        if (outcome.reverted && outcome.error === "BatchOutOfGas") {
          starved = gasLimit;
          break;
        }
      }
      expect(starved, "no gas limit starved the token call with gas left to report it").to.not.equal(undefined);
      await networkHelpers.loadFixture(starvationFixture);
      await expect(plan.chargeMany([alice.address], { gasLimit: starved! }))
        .to.be.revertedWithCustomError(plan, "BatchOutOfGas")
        .withArgs(alice.address);
      expect(await plan.isDue(alice.address)).to.equal(true);
    });
  });
});

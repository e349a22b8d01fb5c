// The keeper's schedules and lists, as pure functions (src/charging/backoff.ts, src/charging/policy.ts);
// the end-to-end tests (retries.test.ts, hostile.test.ts) show them at work on a real node.
import { expect } from "chai";

import { DEFAULT_BACKOFF, lastTryAt, nextRetryAt, planBackoffUntil, quarantineUntil } from "../../src/charging/backoff.ts";
import { planInterface } from "../../src/chain/abi.ts";
import { parseDuration } from "../../src/cli/config.ts";
import { KeeperError } from "../../src/errors.ts";
import { isPlanFault, namedSubscriber } from "../../src/charging/pass.ts";
import { RpcError } from "../../src/chain/rpc.ts";
import { NO_LISTS, refusal } from "../../src/charging/policy.ts";

const H = 3_600;
const D = 86_400;
const SCHEDULE = DEFAULT_BACKOFF.retrySchedule;

describe("keeper back-off schedules and plan lists", () => {
  it("retries at each delay of the schedule after the first failure, then never again for that due time", () => {
    const failedAt = 1_000_000;
    const tries = [1, 2, 3, 4, 5].map((n) => nextRetryAt(SCHEDULE, failedAt, failedAt + 3 * D, n));
    expect(tries).to.deep.equal([failedAt + H, failedAt + 6 * H, failedAt + D, failedAt + 2 * D, null]);
  });

  it("scales the schedule down so that the last try falls at 90% of what is left of a short grace window", () => {
    const failedAt = 0;
    const tries = [1, 2, 3, 4].map((n) => nextRetryAt(SCHEDULE, failedAt, 10 * H, n)!);
    expect(tries[3]).to.equal(9 * H);
    expect(tries).to.deep.equal([Math.floor((H * 9 * H) / (2 * D)), Math.floor((6 * H * 9 * H) / (2 * D)), Math.floor((D * 9 * H) / (2 * D)), 9 * H]);
    for (let i = 1; i < tries.length; i++) expect(tries[i]).to.be.greaterThan(tries[i - 1]!);
    // A window already closed still gets one try a second later, never one in the past.
    expect(nextRetryAt(SCHEDULE, 100, 50, 1)).to.equal(101);
    expect(lastTryAt(1_000, 10 * H)).to.equal(1_000 + 9 * H);
  });

  it("backs off a plan on the schedule from its first failure, then every last delay", () => {
    const since = 0;
    expect(planBackoffUntil(SCHEDULE, since, 3 * D, 1, 0)).to.equal(H);
    expect(planBackoffUntil(SCHEDULE, since, 3 * D, 4, D)).to.equal(2 * D);
    expect(planBackoffUntil(SCHEDULE, since, 3 * D, 5, 2 * D)).to.equal(4 * D);
  });

  it("quarantines after N failing passes in a row, doubling up to the cap", () => {
    const c = { ...DEFAULT_BACKOFF, quarantineAfter: 3, quarantineBase: 600, quarantineMax: 3_000 };
    expect([1, 2, 3, 4, 5, 6, 60].map((f) => quarantineUntil(c, 0, f))).to.deep.equal([0, 0, 600, 1_200, 2_400, 3_000, 3_000]);
  });

  it("reads durations in seconds, minutes, hours and days, and nothing else", () => {
    expect(["90s", "10m", "6h", "2d", "45"].map(parseDuration)).to.deep.equal([90, 600, 6 * H, 2 * D, 45]);
    for (const bad of ["", "1w", "-1h", "1.5h", "h"]) expect(parseDuration(bad), bad).to.equal(null);
  });

  it("lists: a deny list wins, and every allow list that is set must match", () => {
    const plan = { address: "0xa", owner: "0xo", token: "0xt" };
    const lists = (over: Partial<Record<keyof typeof NO_LISTS, string[]>>) => ({ ...NO_LISTS, ...Object.fromEntries(Object.entries(over).map(([k, v]) => [k, new Set(v)])) });
    expect(refusal(NO_LISTS, plan)).to.equal(null);
    expect(refusal(lists({ allowPlans: ["0xa"], denyOwners: ["0xo"] }), plan)).to.equal("DeniedOwner");
    expect(refusal(lists({ denyTokens: ["0xt"] }), plan)).to.equal("DeniedToken");
    expect(refusal(lists({ denyPlans: ["0xa"] }), plan)).to.equal("DeniedPlan");
    expect(refusal(lists({ allowTokens: ["0xt"], allowOwners: ["0xother"] }), plan)).to.equal("OwnerNotAllowed");
    expect(refusal(lists({ allowTokens: ["0xt"], allowOwners: ["0xo"] }), plan)).to.equal(null);
    expect(refusal(lists({ allowPlans: ["0xb"] }), plan)).to.equal("PlanNotAllowed");
    expect(refusal(lists({ allowTokens: ["0xu"] }), plan)).to.equal("TokenNotAllowed");
  });
});

describe("keeper: whose fault a failed call is", () => {
  const attacker = "0x00000000000000000000000000000000000000aa";
  const honest = "0x00000000000000000000000000000000000000bb";
  const batchOutOfGas = planInterface.encodeErrorResult("BatchOutOfGas", [attacker]);

  it("a revert that names a subscriber of the batch (BatchOutOfGas) names it, in either place a node puts the data", () => {
    expect(namedSubscriber(new RpcError("eth_estimateGas", 3, "execution reverted", batchOutOfGas), [honest, attacker])).to.equal(attacker);
    expect(namedSubscriber(new RpcError("eth_estimateGas", -32603, "reverted", { data: batchOutOfGas }), [honest, attacker])).to.equal(attacker);
    // Not one of this batch, not decodable, or no data: nobody is named (the batch is halved instead).
    expect(namedSubscriber(new RpcError("eth_estimateGas", 3, "execution reverted", batchOutOfGas), [honest])).to.equal(null);
    expect(namedSubscriber(new RpcError("eth_estimateGas", 3, "execution reverted", "0xdeadbeef"), [honest, attacker])).to.equal(null);
    expect(namedSubscriber(new RpcError("eth_estimateGas", -32603, "ran out of gas", undefined), [honest, attacker])).to.equal(null);
  });

  it("the plan answers for a call the node ran and refused; the keeper's own account and the node's faults are not the plan's", () => {
    expect(isPlanFault(new RpcError("eth_call", -32603, "Transaction ran out of gas", undefined))).to.equal(true);
    expect(isPlanFault(new RpcError("eth_estimateGas", 3, "execution reverted", batchOutOfGas))).to.equal(true);
    expect(isPlanFault(Object.assign(new Error("could not decode result data"), { code: "BAD_DATA" }))).to.equal(true);
    expect(isPlanFault(new RpcError("eth_estimateGas", -32000, "insufficient funds for gas * price + value", undefined))).to.equal(false);
    expect(isPlanFault(new RpcError("eth_sendRawTransaction", -32000, "nonce too low", undefined))).to.equal(false);
    expect(isPlanFault(new KeeperError("RPC_TRANSPORT", "eth_call: fetch failed", { retryable: true }))).to.equal(false);
    expect(isPlanFault(new KeeperError("FEE_CAP", "base fee above the cap"))).to.equal(false);
  });
});

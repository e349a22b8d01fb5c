// The status the reports derive (src/reports/status.ts statusAt, and the store's SQL for the counts)
// against the contracts' rules (BillingMath.statusOf, MeteredPlan's retirement rule), on a store filled
// by hand: every state, every time around the due time and the grace window, fixed and metered plans,
// active and retired.
import { expect } from "chai";

import { Store } from "../../src/index/store.ts";
import type { PlanRow, SubscriptionRow } from "../../src/index/store.ts";
import { parseTime, refMatches, refText } from "../../src/reports/format.ts";
import { parseStatuses, statusAt } from "../../src/reports/status.ts";

const ZERO = "0x0000000000000000000000000000000000000000";
const PERIOD = 1000;
const GRACE = 100;
const RETIRED_AT = 5000;

function plan(address: string, billingMode: number, status: number): PlanRow {
  return {
    address, owner: "0x01", token: "0x02", price: 10n, period: PERIOD, grace: GRACE, keeperFeeBps: 0, keeperRestricted: false, status,
    createdBlock: 1n, billingMode, payee: "0x01", trial: 0, priceFeed: ZERO, maxPriceAge: 0, allowanceBufferBps: 0, perCycleCap: 0n,
    freeCredits: 0n, createdAt: 1,
  };
}

/** The contracts' rule, written from BillingMath.statusOf and MeteredPlan._statusOf / _retiredFor. */
function expected(p: PlanRow, s: SubscriptionRow, now: number): string {
  const retiredFor = p.status === 2 && (p.billingMode === 0 || (s.nextChargeAt >= RETIRED_AT + PERIOD && !s.beforeRetirement));
  if (s.state === "cancelled") return "Cancelled";
  if (s.state === "paused") return "Paused";
  let current: string;
  if (now >= s.nextChargeAt) current = retiredFor || now > s.nextChargeAt + GRACE ? "Expired" : "PastDue";
  else current = p.billingMode === 1 || s.periodsPaid > 0 ? "Active" : "Trialing";
  if (p.billingMode === 1 && current === "Active" && retiredFor) current = "Expired";
  return current;
}

describe("merchant reports: subscription status as the chain derives it", () => {
  it("statusAt and the store's status counts agree with BillingMath.statusOf on every state, time and plan kind", () => {
    const store = new Store(":memory:");
    const plans = [plan("0xf0", 0, 0), plan("0xf2", 0, 2), plan("0xm0", 1, 0), plan("0xm2", 1, 2)];
    for (const p of plans) store.upsertPlan(p);
    for (const p of plans.filter((x) => x.status === 2)) {
      store.addActivity({
        block: 10n, logIndex: p.billingMode, txHash: "0xaa", time: RETIRED_AT, plan: p.address, subscriber: null, kind: "plan_status_changed",
        amount: null, periodIndex: null, reason: null, usage: null, fromCredits: null, ref: null, data: { oldStatus: "0", newStatus: "2" },
      });
    }
    const retiredAt = store.reportRetiredAt();
    expect([...retiredAt]).to.deep.equal([["0xf2", RETIRED_AT], ["0xm2", RETIRED_AT]]);
    const dues = [RETIRED_AT - 10, RETIRED_AT + PERIOD - 1, RETIRED_AT + PERIOD, RETIRED_AT + 3 * PERIOD];
    for (const now of [RETIRED_AT - 20, RETIRED_AT + PERIOD - 1, RETIRED_AT + PERIOD + GRACE, RETIRED_AT + PERIOD + GRACE + 1, RETIRED_AT + 2 * PERIOD]) {
      const want = new Map<string, Record<string, number>>();
      let n = 0;
      for (const p of plans) {
        for (const state of ["live", "paused", "cancelled"] as const) {
          for (const nextChargeAt of dues) {
            for (const [periodsPaid, beforeRetirement] of [[0, false], [2, false], [2, true]] as const) {
              const sub: SubscriptionRow = {
                plan: p.address, subscriber: `0x${(n++).toString(16).padStart(40, "0")}`, state, nextChargeAt, maxAmount: 10n, periodsPaid,
                lastReason: null, ref: `0x${"0".repeat(64)}`, startedAt: 1, trial: false, totalPaid: 0n, pausedAt: 0, cancelledBy: null, endedAt: 0, blocked: false,
                beforeRetirement,
              };
              store.putSubscription(sub);
              const status = expected(p, sub, now);
              const got = statusAt({ ...p, retiredAt: retiredAt.get(p.address) ?? null }, sub, now);
              expect(got, `${p.address} ${state} next=${nextChargeAt} paid=${periodsPaid} before=${beforeRetirement} now=${now}`).to.equal(status);
              const counts = want.get(p.address) ?? {};
              counts[status] = (counts[status] ?? 0) + 1;
              want.set(p.address, counts);
            }
          }
        }
      }
      expect(store.reportStatusCounts(now), `counts at ${now}`).to.deep.equal(want);
      n = 0;
    }
    store.close();
  });

  it("--status names the bad value and the allowed ones; refs print as text when they are right-padded ASCII", () => {
    const fail = (bad: string, allowed: string) => new Error(`--status: expected one or more of ${allowed}, got ${bad}`);
    expect([...parseStatuses("pastdue, Active", fail)]).to.deep.equal(["PastDue", "Active"]);
    expect(() => parseStatuses("Active,Late", fail)).to.throw("--status: expected one or more of Trialing, Active, PastDue, Paused, Cancelled, Expired, got Late");
    const ref = `0x${Buffer.from("order-42").toString("hex").padEnd(64, "0")}`;
    expect(refText(ref)).to.equal("order-42");
    expect(refText(`0x${"0".repeat(64)}`)).to.equal(null);
    const binary = `0x01${"ff".repeat(31)}`;
    expect(refText(binary)).to.equal(binary);
    expect(refMatches(ref, "order-42")).to.equal(true);
    expect(refMatches(ref, ref.toUpperCase().replace("0X", "0x"))).to.equal(true);
    expect(refMatches(ref, "order-4")).to.equal(false);
    expect(parseTime("--since", "2027-01-01")).to.equal(Date.UTC(2027, 0, 1) / 1000);
    expect(parseTime("--since", "2027-01-01T12:00:00+02:00")).to.equal(Date.UTC(2027, 0, 1, 10) / 1000);
    for (const bad of ["2027-02-30", "2027-1-1", "yesterday", "2027-01-01T12:00"]) expect(() => parseTime("--since", bad), bad).to.throw("--since: expected");
  });
});

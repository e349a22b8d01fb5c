// Webhooks without a chain: signatures against the Standard Webhooks spec's published vector, several
// signatures and secret rotation, the retry schedule and Retry-After, stable ids, the config file's
// one-line errors, and the outbox's rules in the store (ids kept across a rebuild, a reorg deletes only
// what was not delivered).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Webhook } from "standardwebhooks";

import { Store } from "../../src/index/store.ts";
import { parseWebhooksConfig } from "../../src/webhooks/config.ts";
import { chainEventId, timeEventId } from "../../src/webhooks/ids.ts";
import { DEFAULT_RETRY_SCHEDULE_MS, nextDelay, parseRetryAfter, scheduleSpanMs } from "../../src/webhooks/schedule.ts";
import { isSecret, signHeaders, verifyRequest } from "../../src/webhooks/sign.ts";
import { fanOut, initCursors } from "../../src/webhooks/worker.ts";

// The spec's published vector: standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts,
// test "sign function works" (commit 10d3e46d720c4e5861a792bec25792a04ad4e2b3); the same values appear
// in the spec's other libraries' tests.
const VECTOR = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const SECRET_B = "whsec_" + Buffer.alloc(32, 7).toString("base64");

describe("webhooks: signing (Standard Webhooks)", () => {
  it("signs the spec's published test vector to its published signature", () => {
    const headers = signHeaders([VECTOR.secret], VECTOR.id, VECTOR.timestamp, VECTOR.body);
    expect(headers).to.deep.equal({ "webhook-id": VECTOR.id, "webhook-timestamp": String(VECTOR.timestamp), "webhook-signature": VECTOR.signature });
  });

  it("verifies the spec's vector, and refuses a changed body, a wrong secret, and an old timestamp unless told to ignore its age", () => {
    const headers = { "webhook-id": VECTOR.id, "webhook-timestamp": String(VECTOR.timestamp), "webhook-signature": VECTOR.signature };
    expect(verifyRequest(VECTOR.secret, headers, VECTOR.body, VECTOR.timestamp + 10)).to.deep.equal({ ok: true });
    expect(verifyRequest(VECTOR.secret, headers, VECTOR.body + " ", VECTOR.timestamp).ok).to.equal(false);
    expect(verifyRequest(SECRET_B, headers, VECTOR.body, VECTOR.timestamp).ok).to.equal(false);
    const old = verifyRequest(VECTOR.secret, headers, VECTOR.body, VECTOR.timestamp + 3600);
    expect(old.ok === false && old.reason).to.match(/^webhook-timestamp: 3600 s from now/);
    expect(verifyRequest(VECTOR.secret, headers, VECTOR.body, VECTOR.timestamp + 3600, true).ok).to.equal(true);
    const missing = verifyRequest(VECTOR.secret, { ...headers, "webhook-id": undefined }, VECTOR.body, VECTOR.timestamp);
    expect(missing.ok === false && missing.reason).to.equal("webhook-id: missing");
  });

  it("signs with every secret of an endpoint, space-separated: a receiver holding either secret verifies (rotation without downtime)", () => {
    const now = Math.floor(Date.now() / 1000);
    const headers = signHeaders([VECTOR.secret, SECRET_B], "evt_x", now, '{"a":1}');
    expect(headers["webhook-signature"]!.split(" ")).to.have.length(2);
    for (const secret of [VECTOR.secret, SECRET_B]) {
      // The spec's own library, as a merchant's receiver would use it.
      expect(new Webhook(secret).verify('{"a":1}', headers)).to.deep.equal({ a: 1 });
      expect(verifyRequest(secret, headers, '{"a":1}', now).ok).to.equal(true);
    }
    const after = signHeaders([SECRET_B], "evt_x", now, '{"a":1}');
    expect(() => new Webhook(VECTOR.secret).verify('{"a":1}', after)).to.throw();
  });

  it("accepts only whsec_ secrets of 24 to 64 bytes", () => {
    expect(isSecret(VECTOR.secret)).to.equal(true);
    expect(isSecret(SECRET_B)).to.equal(true);
    expect(isSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).to.equal(false);
    expect(isSecret("whsec_" + Buffer.alloc(8).toString("base64"))).to.equal(false);
  });
});

describe("webhooks: retries", () => {
  it("the default schedule has 12 attempts over about three days", () => {
    expect(DEFAULT_RETRY_SCHEDULE_MS.length + 1).to.equal(12);
    const hours = scheduleSpanMs(DEFAULT_RETRY_SCHEDULE_MS) / 3_600_000;
    expect(hours).to.be.within(66, 78);
    for (let i = 1; i < DEFAULT_RETRY_SCHEDULE_MS.length; i++) expect(DEFAULT_RETRY_SCHEDULE_MS[i]!).to.be.at.least(DEFAULT_RETRY_SCHEDULE_MS[i - 1]!);
  });

  it("jitters each delay by at most 10 %, waits at least the receiver's Retry-After (capped at a day), and ends with the schedule", () => {
    const schedule = [1000, 60_000];
    expect(nextDelay(1, schedule, null, () => 0)).to.equal(900);
    expect(nextDelay(1, schedule, null, () => 0.999999)).to.equal(1100);
    expect(nextDelay(2, schedule, null, () => 0.5)).to.equal(60_000);
    expect(nextDelay(1, schedule, 30_000, () => 0.5)).to.equal(30_000);
    expect(nextDelay(1, schedule, 10 * 86_400_000, () => 0.5)).to.equal(86_400_000);
    expect(nextDelay(3, schedule, null)).to.equal(null);
  });

  it("reads Retry-After as delay-seconds or an HTTP date, and ignores anything else", () => {
    const now = Date.parse("2027-01-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).to.equal(120_000);
    expect(parseRetryAfter("Fri, 01 Jan 2027 00:02:00 GMT", now)).to.equal(120_000);
    expect(parseRetryAfter("Thu, 31 Dec 2026 00:00:00 GMT", now)).to.equal(0);
    expect(parseRetryAfter("soon", now)).to.equal(null);
    expect(parseRetryAfter("-5", now)).to.equal(null);
    expect(parseRetryAfter(null, now)).to.equal(null);
  });
});

describe("webhooks: ids", () => {
  it("one id per fact: the same inputs give the same id; another log, type, chain or due time another", () => {
    const tx = "0x" + "ab".repeat(32);
    const a = chainEventId(31337n, tx, 3, "charge.succeeded");
    expect(a).to.match(/^evt_[0-9a-f]{32}$/);
    expect(chainEventId(31337n, tx.toUpperCase().replace("0X", "0x"), 3, "charge.succeeded")).to.equal(a);
    expect(chainEventId(31337n, tx, 4, "charge.succeeded")).to.not.equal(a);
    expect(chainEventId(1n, tx, 3, "charge.succeeded")).to.not.equal(a);
    expect(chainEventId(31337n, tx, 3, "charge.failed")).to.not.equal(a);
    const plan = "0x" + "11".repeat(20);
    const who = "0x" + "22".repeat(20);
    const t = timeEventId(31337n, plan, who, "charge.upcoming", 1_800_000_000);
    expect(timeEventId(31337n, plan.toUpperCase().replace("0X", "0x"), who, "charge.upcoming", 1_800_000_000)).to.equal(t);
    expect(timeEventId(31337n, plan, who, "charge.upcoming", 1_800_000_001)).to.not.equal(t);
    expect(timeEventId(31337n, plan, who, "subscription.past_due", 1_800_000_000)).to.not.equal(t);
  });
});

describe("webhooks: config file", () => {
  const ok = { endpoints: [{ url: "http://127.0.0.1:9/hook", secrets: [VECTOR.secret] }] };
  it("reads endpoints with their defaults", () => {
    const c = parseWebhooksConfig("RECUR_WEBHOOKS w.json", "w.json", ok);
    expect(c.endpoints[0]!.name).to.equal("127.0.0.1:9/hook");
    expect(c.timeoutMs).to.equal(15_000);
    expect(c.upcomingLeadSeconds).to.equal(3 * 86_400);
    expect(c.retryScheduleMs).to.equal(DEFAULT_RETRY_SCHEDULE_MS);
  });
  it("stops on a bad value with one line naming it, and never shows a secret", () => {
    const bad = (json: unknown) => {
      try {
        parseWebhooksConfig("RECUR_WEBHOOKS w.json", "w.json", json);
      } catch (error) {
        return (error as Error).message;
      }
      return "no error";
    };
    expect(bad({ endpoints: [{ url: "ftp://x", secrets: [VECTOR.secret] }] })).to.equal('RECUR_WEBHOOKS w.json: endpoints[0].url: expected an http(s) URL, got "\\"ftp://x\\""');
    const secret = bad({ endpoints: [{ url: "http://x", secrets: ["whsec_short-secret-value"] }] });
    expect(secret).to.match(/^RECUR_WEBHOOKS w.json: endpoints\[0\].secrets\[0\]: expected a Standard Webhooks secret/);
    expect(secret).to.not.include("short-secret-value");
    expect(bad({ ...ok, timeout: "forever" })).to.match(/^RECUR_WEBHOOKS w.json: timeout: expected a duration/);
    expect(bad({ endpoints: [{ url: "http://x", secrets: [VECTOR.secret], events: ["charge.maybe"] }] })).to.match(/endpoints\[0\].events: expected event types among subscription.created/);
    expect(bad({ ...ok, colour: "blue" })).to.match(/: colour: expected one of endpoints/);
  });
});

describe("webhooks: the outbox in the store", () => {
  const store = () => new Store(path.join(mkdtempSync(path.join(tmpdir(), "recur-wh-")), "s.sqlite"));
  const event = (id: string, block: bigint | null) => ({ id, type: "charge.succeeded", plan: "0xp", subscriber: "0xs", occurredAt: 100, block, payload: { a: 1 }, createdAt: 1000 });
  const endpoint = { url: "http://a", name: "a", secrets: [VECTOR.secret], plans: null, events: null };

  it("keeps one row per id, reports depth and the oldest pending age, and a reorg deletes only the undelivered events of its blocks", () => {
    const s = store();
    initCursors(s, [endpoint]);
    expect(s.addWebhookEvent(event("evt_1", 10n))).to.equal(true);
    expect(s.addWebhookEvent(event("evt_1", 10n))).to.equal(false);
    s.addWebhookEvent(event("evt_2", 11n));
    s.addWebhookEvent(event("evt_3", 12n));
    expect(fanOut(s, [endpoint], 5000)).to.equal(3);
    expect(fanOut(s, [endpoint], 5000)).to.equal(0);
    expect(s.webhookOutboxStats(61)).to.deep.equal({ depth: 3, oldestAgeSeconds: 60 });
    expect(s.webhookOutboxStats(61, ["http://elsewhere"]), "only the endpoints asked about").to.deep.equal({ depth: 0, oldestAgeSeconds: null });
    const d2 = s.delivery(s.webhookEvent("evt_2")!.seq, "http://a")!;
    s.setDelivery({ ...d2, state: "delivered", attempts: 1, deliveredAt: 6000 });
    s.transaction(() => s.rollbackAbove(10n));
    expect(s.webhookEvent("evt_1")).to.not.equal(undefined);
    expect(s.webhookEvent("evt_3"), "undelivered, rolled back: never sent").to.equal(undefined);
    expect(s.webhookEvent("evt_2"), "delivered before the reorg: kept").to.not.equal(undefined);
    expect(s.webhookEventsAfter(0, 10).map((e) => e.id), "and sent to no one else").to.deep.equal(["evt_1"]);
    expect(s.webhookOutboxStats(61).depth).to.equal(1);
    s.close();
  });

  it("starts a new endpoint at the outbox's end", () => {
    const s = store();
    s.addWebhookEvent(event("evt_1", 10n));
    initCursors(s, [endpoint]);
    expect(fanOut(s, [endpoint], 0)).to.equal(0);
    s.addWebhookEvent(event("evt_2", 11n));
    expect(fanOut(s, [endpoint], 0)).to.equal(1);
    s.close();
  });
});

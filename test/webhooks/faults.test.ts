// Webhooks under faults, end to end (real hardhat node, the keeper as a process, a real receiver): a
// receiver that answers 500, hangs, or is down for a while gets every event later with the same id; a
// 410 stops that endpoint and no other; the keeper SIGKILLed mid-delivery and restarted delivers the rest
// with no new ids; a reorg drops the events of the orphaned blocks before they are ever sent.
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

import { expect } from "chai";

import { runKeeper, startKeeper, poll, useSharedNode } from "../keeper/support/chain.ts";
import type { Node } from "../keeper/support/chain.ts";
import { setUp, subscribeNew } from "../keeper/support/scenario.ts";
import { NEW_SECRET, ok, OLD_SECRET, tmp, writeConfig } from "./support/helpers.ts";
import { startReceiver } from "./support/receiver.ts";
import type { Receiver } from "./support/receiver.ts";

/** Every event id in the keeper's outbox, with the fact it stands for. */
function outbox(file: string): Map<string, string> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare("SELECT id, type, payload, subscriber FROM webhook_events").all() as { id: string; type: string; payload: string; subscriber: string }[];
    return new Map(rows.map((r) => {
      const p = JSON.parse(r.payload) as Record<string, unknown>;
      return [r.id, `${r.type}|${String(p.txHash ?? "")}|${String(p.logIndex ?? "")}|${r.subscriber}|${String(p.dueAt ?? "")}`];
    }));
  } finally {
    db.close();
  }
}

/** Same id, same bytes: every request of one id carried one body. */
function expectStableBodies(receiver: Receiver): void {
  const bodies = new Map<string, string>();
  for (const r of receiver.requests) {
    if (bodies.has(r.id)) expect(r.body, `body of ${r.id} across attempts`).to.equal(bodies.get(r.id));
    else bodies.set(r.id, r.body);
  }
}

describe("webhooks: faults, end to end", function () {
  this.timeout(600_000);
  let node!: Node;
  useSharedNode((started) => (node = started));

  it("a receiver that answers 500, hangs past the timeout, then is down for a while gets every event later, same ids, nothing lost; another endpoint's 410 stops only it", async () => {
    const dir = tmp();
    const receiver = await startReceiver();
    const goneReceiver = await startReceiver();
    goneReceiver.mode = { kind: "status", status: 410 };
    try {
      const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: path.join(dir, "keeper.sqlite") });
      const webhooks = writeConfig(dir, {
        endpoints: [{ url: receiver.url, secrets: [OLD_SECRET] }, { url: goneReceiver.url, secrets: [NEW_SECRET], name: "gone" }],
        retrySchedule: Array(30).fill("150ms"), timeout: "400ms", interval: "50ms",
      });
      // 500s (with a Retry-After of 0) for the first 4 requests, then 3 that hang, then fine.
      let n = 0;
      receiver.mode = () => (++n <= 4 ? { kind: "status", status: 500, retryAfter: "0" } : n <= 7 ? { kind: "hang" } : { kind: "ok" });
      const keeper = startKeeper(["run", "--poll-interval", "1"], s.env({ RECUR_WEBHOOKS: webhooks, RECUR_LOG_LEVEL: "info" }));
      await keeper.waitForLine((l) => l.event === "start");
      for (let i = 0; i < 3; i++) await subscribeNew(node, s.token, s.deployer, s.plans[0]!);
      await keeper.waitForLine((l) => l.event === "webhook_failed" && String(l.error).startsWith("no answer within"), 60_000);
      // Down: connections refused for a while, then back on the same port.
      await receiver.stop();
      for (let i = 0; i < 2; i++) await subscribeNew(node, s.token, s.deployer, s.plans[0]!);
      await node.mineAt(Number(await node.latestTimestamp()) + 1);
      await keeper.waitForLine((l) => l.event === "webhook_failed" && /ECONNREFUSED/.test(String(l.error)), 60_000);
      await receiver.start();
      // 5 sign-ups: 5 subscription.created and 5 charge.succeeded.
      await poll("every event delivered", async () => (receiver.delivered().size >= 10 ? true : undefined), 90_000, 100);
      keeper.kill("SIGTERM");
      await keeper.waitForExit(30_000);

      const ids = outbox(path.join(dir, "keeper.sqlite"));
      expect(ids.size).to.equal(10);
      expect(new Set(ids.values()).size, "one id per fact").to.equal(ids.size);
      expect([...receiver.delivered().keys()].sort()).to.deep.equal([...ids.keys()].sort());
      expect(receiver.requests.length, "retries reached the receiver").to.be.greaterThan(10);
      for (const r of receiver.requests) expect(receiver.verifies(r, [OLD_SECRET])).to.equal(true);
      expectStableBodies(receiver);
      expect(keeper.lines.filter((l) => l.event === "webhook_endpoint_gone")).to.have.length(1);
      // Only what was already in flight when the 410 came (perEndpoint: 2), nothing after.
      expect(goneReceiver.requests.length, "after its 410, the endpoint is sent nothing more").to.be.within(1, 2);
      const list = ok(await runKeeper(["webhooks", "list", "--json"], s.env({ RECUR_WEBHOOKS: webhooks })));
      const endpoints = (JSON.parse(list.stdout) as { endpoints: { name: string; state: string; pending: number; delivered: number; dead: number }[] }).endpoints;
      expect(endpoints.find((e) => e.name === "gone")).to.include({ state: "gone (410)", pending: 10, delivered: 0, dead: 0 });
      expect(endpoints.find((e) => e.name !== "gone")).to.include({ state: "active", pending: 0, delivered: 10, dead: 0 });
    } finally {
      await receiver.stop();
      await goneReceiver.stop();
    }
  });

  it("the keeper SIGKILLed mid-delivery and restarted delivers the rest, with no new ids and none missing", async () => {
    const dir = tmp();
    const receiver = await startReceiver();
    try {
      const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: path.join(dir, "keeper.sqlite") });
      const webhooks = writeConfig(dir, { endpoints: [{ url: receiver.url, secrets: [OLD_SECRET] }], retrySchedule: ["100ms"], timeout: "60s", concurrency: 2, perEndpoint: 2 });
      const env = s.env({ RECUR_WEBHOOKS: webhooks });
      ok(await runKeeper(["run", "--once"], env));
      for (let i = 0; i < 4; i++) await subscribeNew(node, s.token, s.deployer, s.plans[0]!);
      await node.mineAt(Number(await node.latestTimestamp()) + 1);
      // The first two requests are answered; the third hangs: the keeper is killed while it waits.
      let n = 0;
      receiver.mode = () => (++n <= 2 ? { kind: "ok" } : { kind: "hang" });
      const first = startKeeper(["run", "--once"], env);
      await poll("a delivery in flight", async () => (receiver.requests.length >= 3 ? true : undefined), 60_000, 50);
      first.kill("SIGKILL");
      const killed = await first.exited;
      expect(killed.signal).to.equal("SIGKILL");
      const before = outbox(path.join(dir, "keeper.sqlite"));
      expect(before.size).to.equal(8);
      receiver.mode = { kind: "ok" };
      ok(await runKeeper(["run", "--once"], env));
      const after = outbox(path.join(dir, "keeper.sqlite"));
      expect([...after.keys()].sort(), "no new ids").to.deep.equal([...before.keys()].sort());
      expect([...receiver.delivered().keys()].sort(), "none missing").to.deep.equal([...after.keys()].sort());
      const inFlight = receiver.requests.filter((r) => r.answered === "hang").map((r) => r.id);
      for (const id of inFlight) expect(receiver.requests.filter((r) => r.id === id && r.answered === "ok"), `${id}: sent again after the kill`).to.have.length(1);
      expectStableBodies(receiver);
    } finally {
      await receiver.stop();
    }
  });

  it("a reorg drops the events of the orphaned blocks: indexed but not yet delivered, they are never sent", async () => {
    const dir = tmp();
    const receiver = await startReceiver();
    try {
      const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: path.join(dir, "keeper.sqlite") });
      const webhooks = writeConfig(dir, { endpoints: [{ url: receiver.url, secrets: [OLD_SECRET] }], retrySchedule: ["100ms", "100ms"], timeout: "5s" });
      const env = s.env({ RECUR_WEBHOOKS: webhooks, RECUR_CONFIRMATIONS: "2" });
      const kept = await subscribeNew(node, s.token, s.deployer, s.plans[0]!);
      await node.mineAt(Number(await node.latestTimestamp()) + 1);
      ok(await runKeeper(["run", "--once"], env));
      // The receiver is down while the doomed branch is indexed (confirmed by 2 blocks): its events wait.
      const snapshot = await node.send("evm_snapshot", []);
      await receiver.stop();
      const doomed = await subscribeNew(node, s.token, s.deployer, s.plans[0]!);
      await node.mineAt(Number(await node.latestTimestamp()) + 1);
      ok(await runKeeper(["run", "--once"], env));
      const doomedIds = [...outbox(path.join(dir, "keeper.sqlite"))].filter(([, fact]) => fact.includes(doomed.address.toLowerCase())).map(([id]) => id);
      expect(doomedIds, "the doomed sign-up reached the outbox").to.have.length(2);
      expect(await node.send("evm_revert", [snapshot])).to.equal(true);
      (s.deployer as unknown as { reset(): void }).reset();
      for (let i = 0; i < 8; i++) await node.mineAt(Number(await node.latestTimestamp()) + 1);
      await receiver.start();
      const run = ok(await runKeeper(["run", "--once"], env));
      expect(run.lines.some((l) => l.event === "reorg")).to.equal(true);
      ok(await runKeeper(["run", "--once"], env));
      const left = outbox(path.join(dir, "keeper.sqlite"));
      for (const id of doomedIds) expect(left.has(id), `${id} left the outbox`).to.equal(false);
      const received = [...receiver.delivered().values()].map((d) => String(d.json.data.subscriber));
      expect(received).to.not.include(doomed.address.toLowerCase());
      expect(received.filter((who) => who === kept.address.toLowerCase())).to.have.length(2);
    } finally {
      await receiver.stop();
    }
  });
});

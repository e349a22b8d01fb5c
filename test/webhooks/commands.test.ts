// `recur webhooks …` end to end (real hardhat node, the command as a process, a real receiver): dead
// letters after the last attempt and their replay with the same ids, `test`, `verify` on a captured
// request (no node needed), a secret rotated across three config files with every delivery verifiable,
// and two keepers with their own stores on one chain giving every fact the same id.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

import { expect } from "chai";

import { runKeeper, useSharedNode } from "../keeper/support/chain.ts";
import type { Node } from "../keeper/support/chain.ts";
import { setUp, subscribeNew } from "../keeper/support/scenario.ts";
import { NEW_SECRET, ok, OLD_SECRET, tmp, writeConfig } from "./support/helpers.ts";
import { startReceiver } from "./support/receiver.ts";
import type { Receiver } from "./support/receiver.ts";

const ids = (file: string): string[] => {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare("SELECT id FROM webhook_events ORDER BY id").all() as { id: string }[]).map((r) => r.id);
  } finally {
    db.close();
  }
};

describe("webhooks: the commands, end to end", function () {
  this.timeout(600_000);
  let node!: Node;
  let receiver!: Receiver;
  useSharedNode((started) => (node = started));
  beforeEach(async () => {
    receiver = await startReceiver();
  });
  afterEach(async () => receiver?.stop());

  it("dead-letters a delivery after its last attempt, and replay (--since, --id) sends it again with the same id", async () => {
    const dir = tmp();
    const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: path.join(dir, "keeper.sqlite") });
    const env = s.env({ RECUR_WEBHOOKS: writeConfig(dir, { endpoints: [{ url: receiver.url, secrets: [OLD_SECRET], name: "shop" }], retrySchedule: ["10ms", "10ms"] }) });
    receiver.mode = { kind: "status", status: 503 };
    ok(await runKeeper(["webhooks", "deliver", "--once"], env));
    await subscribeNew(node, s.token, s.deployer, s.plans[0]!);
    await node.mineAt(Number(await node.latestTimestamp()) + 1);
    for (let i = 0; i < 3; i++) ok(await runKeeper(["webhooks", "deliver", "--once"], env));
    const failedIds = [...new Set(receiver.requests.map((r) => r.id))].sort();
    expect(failedIds).to.have.length(2);
    expect(receiver.requests, "3 attempts each").to.have.length(6);
    const list = JSON.parse(ok(await runKeeper(["webhooks", "list", "--json"], env)).stdout) as { endpoints: Record<string, unknown>[] };
    expect(list.endpoints[0]).to.include({ name: "shop", pending: 0, delivered: 0, dead: 2 });
    ok(await runKeeper(["webhooks", "deliver", "--once"], env));
    expect(receiver.requests, "a dead letter is not retried").to.have.length(6);

    receiver.mode = { kind: "ok" };
    const replay = ok(await runKeeper(["webhooks", "replay", "--since", "2000-01-01", "--json"], env));
    expect(JSON.parse(replay.stdout)).to.deep.equal({ events: 2, queued: 2 });
    ok(await runKeeper(["webhooks", "deliver", "--once"], env));
    expect([...receiver.delivered().keys()].sort()).to.deep.equal(failedIds);
    ok(await runKeeper(["webhooks", "replay", "--id", failedIds[0]!], env));
    ok(await runKeeper(["webhooks", "deliver", "--once"], env));
    expect(receiver.requests.filter((r) => r.id === failedIds[0] && r.answered === "ok")).to.have.length(2);
    const bad = await runKeeper(["webhooks", "replay", "--id", "evt_nope"], env);
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim()).to.equal('recur: --id: expected an event id evt_ + 32 hex characters, got "evt_nope"');
  });

  it("test sends a signed webhook.test; verify checks a captured request (exit 0 valid, 1 with the reason), without a node", async () => {
    const dir = tmp();
    const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: path.join(dir, "keeper.sqlite") });
    const env = s.env({ RECUR_WEBHOOKS: writeConfig(dir, { endpoints: [{ url: receiver.url, secrets: [OLD_SECRET] }] }) });
    ok(await runKeeper(["webhooks", "test"], env));
    const captured = receiver.requests[0]!;
    expect(JSON.parse(captured.body)).to.include({ type: "webhook.test" });
    expect(receiver.verifies(captured, [OLD_SECRET])).to.equal(true);
    const headers = path.join(dir, "headers.txt");
    writeFileSync(headers, `webhook-id: ${captured.id}\r\nwebhook-timestamp: ${captured.timestamp}\r\nwebhook-signature: ${captured.signature}\r\n`);
    const body = path.join(dir, "body.json");
    writeFileSync(body, captured.body);
    const valid = await runKeeper(["webhooks", "verify", "--secret", OLD_SECRET, "--headers", headers, "--body", body], {});
    expect(valid.code, valid.stderr).to.equal(0);
    expect(valid.stdout).to.equal(`valid: ${captured.id} is signed with this secret\n`);
    const wrong = await runKeeper(["webhooks", "verify", "--secret", NEW_SECRET, "--id", captured.id, "--timestamp", captured.timestamp, "--signature", captured.signature, "--body", body], {});
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(/^recur: invalid: webhook-signature: no v1 signature matches this secret and body/);
    expect(wrong.stderr.trim().split("\n")).to.have.length(1);
    writeFileSync(body, captured.body.replace("test", "tesT"));
    const tampered = await runKeeper(["webhooks", "verify", "--secret", OLD_SECRET, "--headers", headers, "--body", body, "--json"], {});
    expect(tampered.code).to.equal(1);
    expect(JSON.parse(tampered.stdout)).to.include({ valid: false, id: captured.id });
  });

  it("a secret rotated in three steps (old; old and new; new) keeps every delivery verifiable by the receiver's secret of the moment", async () => {
    const dir = tmp();
    const s = await setUp(node, { planCount: 1, perPlan: 0, storePath: path.join(dir, "keeper.sqlite") });
    const step = async (secrets: string[]) => {
      const env = s.env({ RECUR_WEBHOOKS: writeConfig(dir, { endpoints: [{ url: receiver.url, secrets }] }) });
      await subscribeNew(node, s.token, s.deployer, s.plans[0]!);
      await node.mineAt(Number(await node.latestTimestamp()) + 1);
      const before = receiver.requests.length;
      ok(await runKeeper(["webhooks", "deliver", "--once"], env));
      return receiver.requests.slice(before);
    };
    ok(await runKeeper(["webhooks", "deliver", "--once"], s.env({ RECUR_WEBHOOKS: writeConfig(dir, { endpoints: [{ url: receiver.url, secrets: [OLD_SECRET] }] }) })));
    const one = await step([OLD_SECRET]);
    const two = await step([OLD_SECRET, NEW_SECRET]);
    const three = await step([NEW_SECRET]);
    for (const [batch, holds, refused] of [[one, OLD_SECRET, NEW_SECRET], [two, OLD_SECRET, null], [two, NEW_SECRET, null], [three, NEW_SECRET, OLD_SECRET]] as const) {
      expect(batch).to.have.length(2);
      for (const r of batch) {
        expect(receiver.verifies(r, [holds])).to.equal(true);
        if (refused !== null) expect(receiver.verifies(r, [refused])).to.equal(false);
      }
    }
  });

  it("two keepers with their own stores on one chain give every fact the same id", async () => {
    const dir = tmp();
    const s = await setUp(node, { planCount: 1, perPlan: 2, storePath: path.join(dir, "a.sqlite") });
    const webhooks = writeConfig(dir, { endpoints: [{ url: receiver.url, secrets: [OLD_SECRET] }] });
    ok(await runKeeper(["webhooks", "deliver", "--once"], s.env({ RECUR_WEBHOOKS: webhooks })));
    ok(await runKeeper(["webhooks", "deliver", "--once"], s.env({ RECUR_WEBHOOKS: webhooks, RECUR_STORE: path.join(dir, "b.sqlite") })));
    const a = ids(path.join(dir, "a.sqlite"));
    expect(a).to.have.length(4);
    expect(ids(path.join(dir, "b.sqlite"))).to.deep.equal(a);
  });
});

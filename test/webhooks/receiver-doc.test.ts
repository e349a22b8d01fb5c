// docs/WEBHOOKS.md's receiver in Node works as written: run as its own process, it accepts a request
// signed as the keeper signs it (204), deduplicates a second delivery of the same id, and refuses a
// request whose body was changed (400).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

import { expect } from "chai";

import { freePort, poll, ROOT } from "../keeper/support/chain.ts";
import { signHeaders } from "../../src/webhooks/sign.ts";
import { OLD_SECRET } from "./support/helpers.ts";

describe("docs/WEBHOOKS.md: the receiver in Node", function () {
  this.timeout(60_000);

  it("verifies the signature (204), deduplicates by id, and refuses a changed body (400)", async () => {
    const docs = readFileSync(path.join(ROOT, "docs/WEBHOOKS.md"), "utf8");
    const code = /## A receiver in Node\n\n```js\n([\s\S]*?)```/.exec(docs)![1]!;
    expect(code.trim().split("\n").length, "about 20 lines").to.be.at.most(30);
    // In the repository, so that `standardwebhooks` resolves from its node_modules.
    const dir = mkdtempSync(path.join(ROOT, "test/webhooks/.receiver-"));
    const file = path.join(dir, "receiver.mjs");
    writeFileSync(file, code);
    const port = await freePort();
    const child = spawn(process.execPath, [file], { env: { PATH: process.env.PATH ?? "", PORT: String(port), RECUR_WEBHOOK_SECRET: OLD_SECRET }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      const body = JSON.stringify({ type: "charge.succeeded", timestamp: "2027-01-01T00:00:00Z", data: { subscriber: "0xabc" } });
      const post = (b: string) =>
        fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { ...signHeaders([OLD_SECRET], "evt_doc", Math.floor(Date.now() / 1000), body), "content-type": "application/json" }, body: b });
      const first = await poll("the receiver up", async () => post(body).catch(() => undefined), 20_000, 100);
      expect(first.status).to.equal(204);
      expect((await post(body)).status, "a second delivery of one id").to.equal(204);
      expect((await post(body.replace("0xabc", "0xabd"))).status).to.equal(400);
      expect(out.trim().split("\n"), "acted on once").to.deep.equal(["charge.succeeded 0xabc"]);
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

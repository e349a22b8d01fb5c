// Webhooks benchmark (issue 12): 10,000 events through a local receiver. Prints deliveries per second
// and the latency from the event's index time (its created_at: the transaction that indexed it) to its
// delivery (the receiver's 2xx recorded), p50 / p95 / max, and writes bench/results/webhooks.json.
//   npm run bench:webhooks
//   npm run bench:webhooks -- --scale 0.1    (or RECUR_BENCH_SCALE=0.1): 1,000 events, for a quick look
//
// What runs for real: the store (SQLite, WAL, synchronous=FULL, as the keeper opens it), the worker
// (src/webhooks/worker.ts: fan-out, rendering, Standard Webhooks signing, Node's fetch, the outcome written
// per delivery), and a receiver in its own process (node:http) that verifies every signature with the
// spec's library and answers 204. The events are written into the outbox through the store's own
// addWebhookEvent, as the indexer does inside its page transaction; the chain is not involved (the
// indexing itself is measured by bench/keeper.ts), and the token's decimals are already known.
// Two runs:
//   burst:  all the events indexed at once, then delivered: throughput, and latency under a backlog;
//   steady: the events indexed at a fixed rate (RATE per second, in pages of 100, as an indexer writes
//           them) while the daemon's worker loop (runWebhookWorker, default interval 1 s) delivers them:
//           the latency a merchant sees.
// Each with the default limits (8 in flight, 2 per endpoint), and the burst again with 8 per endpoint.
// Not part of CI.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { DatabaseSync } from "node:sqlite";
import { Writable } from "node:stream";

import { createRpc } from "../src/chain/rpc.ts";
import { Store } from "../src/index/store.ts";
import { createLogger } from "../src/log.ts";
import { parseWebhooksConfig } from "../src/webhooks/config.ts";
import { chainEventId } from "../src/webhooks/ids.ts";
import { deliverDue, initCursors, runWebhookWorker } from "../src/webhooks/worker.ts";
import { benchScale, writeResults } from "./lib/results.ts";

const SCALE = benchScale(process.argv.slice(2), process.env.RECUR_BENCH_SCALE, { min: 0.01, max: 1, integer: false });
const EVENTS = Math.round(10_000 * SCALE);
const RATE = 200;
const PAGE = 100;
const SECRET = "whsec_" + Buffer.alloc(32, 9).toString("base64");
const TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
const PLAN = "0x" + "11".repeat(20);

const RECEIVER = `
const { createServer } = require("node:http");
const { Webhook } = require("standardwebhooks");
const wh = new Webhook(process.argv[1]);
let bad = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    try { wh.verify(Buffer.concat(chunks).toString("utf8"), req.headers); } catch { bad++; }
    res.writeHead(204).end();
  });
});
server.listen(0, "127.0.0.1", () => process.stdout.write(JSON.stringify({ port: server.address().port }) + "\\n"));
process.on("SIGTERM", () => { process.stdout.write(JSON.stringify({ bad }) + "\\n"); process.exit(0); });
`;

async function startReceiver(): Promise<{ url: string; stop(): Promise<number> }> {
  const child = spawn(process.execPath, ["-e", RECEIVER, SECRET], { cwd: path.dirname(new URL(import.meta.url).pathname), stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  let pending = "";
  const waiters: (() => void)[] = [];
  child.stdout.on("data", (d: Buffer) => {
    pending += d.toString();
    const parts = pending.split("\n");
    pending = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  const next = async (): Promise<Record<string, number>> => {
    while (lines.length === 0) await new Promise<void>((r) => waiters.push(r));
    return JSON.parse(lines.shift()!) as Record<string, number>;
  };
  const { port } = await next();
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    async stop() {
      child.kill("SIGTERM");
      return (await next()).bad!;
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Writes `count` events from `from` into the outbox in one transaction (one indexer page). */
function index(store: Store, from: number, count: number): void {
  store.transaction(() => {
    for (let i = from; i < from + count; i++) {
      const txHash = "0x" + i.toString(16).padStart(64, "0");
      const subscriber = "0x" + (i + 1).toString(16).padStart(40, "0");
      store.addWebhookEvent({
        id: chainEventId(31337n, txHash, 0, "charge.succeeded"), type: "charge.succeeded", plan: PLAN, subscriber, occurredAt: 1_800_000_000 + i, block: BigInt(i + 1),
        payload: { chainId: "31337", plan: PLAN, subscriber, token: TOKEN, txHash, block: String(i + 1), logIndex: 0, amount: "9990000", periodIndex: 3, nextChargeAt: 1_802_592_000 + i, ref: null },
        createdAt: Date.now(),
      });
    }
  });
}

function latencies(file: string): { p50: number; p95: number; max: number; delivered: number } {
  const db = new DatabaseSync(file, { readOnly: true });
  const rows = db.prepare("SELECT d.delivered_at - e.created_at AS ms FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq WHERE d.state = 'delivered' ORDER BY ms").all() as { ms: number }[];
  db.close();
  const ms = rows.map((r) => Number(r.ms));
  return { p50: percentile(ms, 50), p95: percentile(ms, 95), max: ms.at(-1)!, delivered: ms.length };
}

async function run(kind: "burst" | "steady", perEndpoint = 2): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "recur-bench-wh-"));
  const file = path.join(dir, "keeper.sqlite");
  const store = new Store(file);
  store.putWebhookToken(TOKEN, 6, "USDC");
  const receiver = await startReceiver();
  const config = parseWebhooksConfig("bench", "bench", { endpoints: [{ url: receiver.url, secrets: [SECRET] }], perEndpoint });
  const log = createLogger(new Writable({ write: (_c, _e, cb) => cb() }), { level: "error" });
  const rpc = createRpc("http://127.0.0.1:9", { timeoutMs: 100, retries: 0, backoffMs: 1, signal: new AbortController().signal });
  initCursors(store, config.endpoints);
  const controller = new AbortController();
  const deps = { store, rpc, log, config, chainId: 31337n, clock: () => Date.now(), signal: controller.signal };
  const started = performance.now();
  const progress = process.env.BENCH_DEBUG === undefined ? undefined : setInterval(() => console.error(kind, JSON.stringify([...store.webhookCounts()])), 1000);
  if (kind === "burst") {
    for (let i = 0; i < EVENTS; i += PAGE) index(store, i, Math.min(PAGE, EVENTS - i));
    await deliverDue(deps);
  } else {
    const worker = runWebhookWorker(deps);
    for (let i = 0; i < EVENTS; i += PAGE) {
      const due = started + (i / RATE) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      index(store, i, Math.min(PAGE, EVENTS - i));
    }
    while (store.webhookCounts().get(receiver.url)?.delivered !== EVENTS) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await worker;
  }
  clearInterval(progress);
  const seconds = (performance.now() - started) / 1000;
  const bad = await receiver.stop();
  const l = latencies(file);
  store.close();
  rmSync(dir, { recursive: true, force: true });
  if (l.delivered !== EVENTS || bad !== 0) throw new Error(`${kind}: ${l.delivered} of ${EVENTS} delivered, ${bad} bad signatures`);
  return { events: EVENTS, seconds: Math.round(seconds * 100) / 100, deliveriesPerSecond: Math.round(EVENTS / seconds), latencyP50Ms: l.p50, latencyP95Ms: l.p95, latencyMaxMs: l.max, badSignatures: bad };
}

const burst = await run("burst");
const burstWide = await run("burst", 8);
const steady = await run("steady");
console.log(`webhooks: ${EVENTS} events, one endpoint on 127.0.0.1 (a separate process verifying every signature), 8 in flight, 2 per endpoint`);
console.log(`  burst (all indexed at once):   ${burst.deliveriesPerSecond} deliveries/s; index → delivered p50 ${burst.latencyP50Ms} ms, p95 ${burst.latencyP95Ms} ms, max ${burst.latencyMaxMs} ms`);
console.log(`  burst, 8 per endpoint:         ${burstWide.deliveriesPerSecond} deliveries/s; index → delivered p50 ${burstWide.latencyP50Ms} ms, p95 ${burstWide.latencyP95Ms} ms, max ${burstWide.latencyMaxMs} ms`);
console.log(`  steady (${RATE} events/s, daemon loop): ${steady.deliveriesPerSecond} deliveries/s; index → delivered p50 ${steady.latencyP50Ms} ms, p95 ${steady.latencyP95Ms} ms, max ${steady.latencyMaxMs} ms`);
const written = writeResults("webhooks", SCALE, { machine: `${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? "?"}`, node: process.version, burst, burstPerEndpoint8: burstWide, steady, rateEventsPerSecond: RATE });
console.log(`written: ${written}`);

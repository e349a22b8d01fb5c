// Merchant reports benchmark (issue 11): an index of 100,000 subscriptions and 1,000,000 charge events;
// each report timed on the warm index, through the real binary (`node bin/recur.ts …`, as a merchant runs
// it) and in-process (src/cli/main.ts's `main`, the same code without Node's start-up), and the catch-up
// of 10,000 new blocks. Prints a table and writes bench/results/merchant.json (one entry per scale). Not
// part of CI; takes a few minutes.
//   npm run bench:merchant
//   npm run bench:merchant -- --scale 0.1    (or RECUR_BENCH_SCALE=0.1): a tenth of the index, for a quick look
//
// The chain is real: a local `hardhat node` with the token, a price feed, the factory and 11 plans (9 fixed,
// 1 fixed and USD-priced, 1 metered) created at the start of a two-year history of 12-second blocks
// (`hardhat_mine`), and 20 real subscribers per plan (their own mint, approve and subscribe transactions)
// a month before the head, so that the reports' chain reads (token decimals and symbol, the batched
// chargeabilityMany prediction of each plan) run for real, against real and synthetic subscribers.
// The real events are indexed by the indexer itself (src/index/indexer.ts `sync`).
//
// The big index is synthetic, written in one store transaction through the store's own write methods
// (Store.putSubscription and Store.addActivity, whose prepared statements the store caches): 100,000
// subscriptions in all spread over the plans (a fifth on the biggest), and about 1,000,000 charge events
// (Charged; ChargeFailed, most recovered inside the grace window by a later Charged, some never;
// UsageCharged and UsageChargeFailed on the metered plan), with their Subscribed, Cancelled and Paused
// events, at the block times of the history's blocks (each event in an empty block of the mined stretches,
// with a unique log index and a transaction hash). Each subscription row is what the indexer would have
// derived from its events (state, schedule, periods and total paid, last failure, pause, cancellation).
// The raw `logs` table holds only the real logs: a reorg's replay would drop the synthetic rows, which no
// report does. The checkpoints are the chain's real hashes (the mined stretches hold no logs, so they are
// checkpointed without being fetched), the last one the head's; the log range kept (meta `logRange`) is
// the maximum, as a store that indexed two years would have left it.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { DatabaseSync } from "node:sqlite";
import { Writable } from "node:stream";

import { Interface, Wallet } from "ethers";
import type { Contract, Signer } from "ethers";

import { meteredTerms } from "../scripts/lib/plans.ts";
import { createRpc } from "../src/chain/rpc.ts";
import type { Block, Rpc } from "../src/chain/rpc.ts";
import { main } from "../src/cli/main.ts";
import { sync } from "../src/index/indexer.ts";
import { Store } from "../src/index/store.ts";
import type { ActivityKind, ActivityRow, SubscriptionRow } from "../src/index/store.ts";
import { createLogger } from "../src/log.ts";
import { accountKey, accounts, deploy, ROOT, startNode } from "../test/keeper/support/chain.ts";
import type { Node } from "../test/keeper/support/chain.ts";
import { GRACE, PERIOD, PRICE, terms } from "../test/keeper/support/scenario.ts";
import { CHAIN_ID, hex, rpc, rpcMany, sign, walletsFor } from "./lib/rpc.ts";
import { benchScale, writeResults } from "./lib/results.ts";

const SCALE = benchScale(process.argv.slice(2), process.env.RECUR_BENCH_SCALE, { min: 0.01, max: 1, integer: false });
const SUBSCRIPTIONS = Math.round(100_000 * SCALE);
const CHARGE_EVENTS = Math.round(1_000_000 * SCALE);
const FIXED_PLANS = 10; // plan 1 of them USD-priced
const USD_PLAN = 1;
const BIG_PLAN = 0;
const REAL_PER_PLAN = 20;
const CONFIRMATIONS = 1;
const LOG_RANGE = 2_000n; // RECUR_LOG_RANGE's default
const BLOCK_TIME = 12;
const HISTORY = 730 * 86_400; // two years
const CATCH_UP_BLOCKS = 10_000;
const RUNS = 3;
const SLOW_MS = 15_000;
/** RECUR_BENCH_ONLY: a regular expression; only the reports whose name matches run (a quick look). */
const ONLY = process.env.RECUR_BENCH_ONLY === undefined ? null : new RegExp(process.env.RECUR_BENCH_ONLY);
const TARGET_REPORT_MS = 1_000;
const USD_PRICE = 1_000_000_000n; // $10.00 (8 decimals)
const FEED_ANSWER = 100_000_000n; // 1 token = $1.00
const METERED_CAP = 100_000_000n;

const here = path.dirname(new URL(import.meta.url).pathname);
const RECUR_BIN = path.join(ROOT, "bin/recur.ts");
const TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : null;

const abi = (file: string) => (JSON.parse(readFileSync(path.join(ROOT, "artifacts", file), "utf8")) as { abi: never[] }).abi;
const tokenIface = new Interface(abi("test/mocks/TestUSDC.sol/TestUSDC.json"));
const planIface = new Interface(abi("contracts/FixedPricePlan.sol/FixedPricePlan.json"));
const feedIface = new Interface(abi("test/mocks/MockAggregator.sol/MockAggregator.json"));

// --- the synthetic history ------------------------------------------------------------------------------

/** A stretch of empty blocks mined by hardhat_mine: block `first` at `time`, one every BLOCK_TIME s. */
interface Stretch {
  first: number;
  last: number;
  time: number;
}

interface PlanSpec {
  address: string;
  kind: "fixed" | "usd" | "metered";
  /** What one charge pulls, base units (the USD plan's at the feed's answer). */
  amount: bigint;
  maxAmount: bigint;
  period: number;
  grace: number;
  /** Synthetic subscriptions (besides the real ones). */
  count: number;
}

/** mulberry32: a small seeded generator, so that every run writes the same index. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const FAIL_REASONS = ["BalanceTooLow", "AllowanceTooLow", "BalanceTooLow", "MaxAmountExceeded"] as const;

type Emit = (kind: ActivityKind, time: number, fields: Partial<ActivityRow>, sameTxAsLast?: boolean) => void;

/** One subscription's life from `start` to `end` (the head's time): its events through `emit` and its
 * row as the indexer derives it. Returns the number of charge events. */
function lifeOf(plan: PlanSpec, subscriber: string, start: number, end: number, rand: () => number, emit: Emit, ref: string): { row: SubscriptionRow; charges: number } {
  const { period: P, grace: G } = plan;
  const metered = plan.kind === "metered";
  const fate = rand();
  const cancelAt = fate < 0.15 ? start + 3_600 + Math.floor(rand() * (end - start - 3_600)) : Infinity;
  const pauseAt = fate >= 0.15 && fate < 0.18 ? start + 3_600 + Math.floor(rand() * (end - start - 3_600)) : Infinity;
  const stopAt = Math.min(cancelAt, pauseAt, end);
  let charges = 0;
  let paid = 0;
  let total = 0n;
  let lastReason: string | null = null;
  let next = start + P;
  emit("subscribed", start, { ref, data: { maxAmount: plan.maxAmount.toString(), startedAt: String(start), nextChargeAt: String(start + P), trial: "false" } });
  const charged = (time: number, sameTx: boolean) => {
    const amount = metered ? 1_000_000n + BigInt(Math.floor(rand() * Number(METERED_CAP - 1_000_000n))) : plan.amount;
    const periodIndex = paid;
    paid++;
    total += amount;
    lastReason = null;
    next = start + (metered ? paid + 1 : paid) * P;
    emit(metered ? "usage_charged" : "charged", time, metered
      ? { amount, periodIndex, usage: amount, fromCredits: 0n, ref: "0x" + periodIndex.toString(16).padStart(64, "0"), data: { nextChargeAt: String(next) } }
      : { amount, periodIndex, data: { nextChargeAt: String(next) } }, sameTx);
    charges++;
  };
  // A fixed plan pulls its first period at subscribe (no trial); a metered plan bills each cycle at its end.
  if (!metered) charged(start, true);
  let stopped = false;
  while (!stopped) {
    const due = next;
    if (due > stopAt) break;
    if (rand() < 0.04) {
      const reason = FAIL_REASONS[Math.floor(rand() * FAIL_REASONS.length)]!;
      const failedAt = due + Math.floor(rand() * 3_600);
      if (failedAt > stopAt) break;
      emit(metered ? "usage_failed" : "charge_failed", failedAt, metered ? { reason, usage: 5_000_000n, ref: "0x" + "ab".repeat(32) } : { reason });
      charges++;
      lastReason = reason;
      const recoveredAt = rand() < 0.7 ? failedAt + 3_600 + Math.floor(rand() * (G - 7_200)) : Infinity;
      if (recoveredAt > stopAt) {
        stopped = true;
        break;
      }
      charged(recoveredAt, false);
    } else {
      const at = due + Math.floor(rand() * 600);
      if (at > stopAt) break;
      charged(at, false);
    }
  }
  const row: SubscriptionRow = {
    plan: plan.address, subscriber, state: "live", nextChargeAt: next, maxAmount: plan.maxAmount, periodsPaid: paid, lastReason, ref,
    startedAt: start, trial: false, totalPaid: total, pausedAt: 0, cancelledBy: null, endedAt: 0, blocked: false, beforeRetirement: false,
  };
  if (!stopped && cancelAt <= end) {
    emit("cancelled", cancelAt, { data: { by: subscriber, paidThrough: String(next) } });
    Object.assign(row, { state: "cancelled", cancelledBy: subscriber, endedAt: cancelAt });
  } else if (!stopped && pauseAt <= end) {
    emit("paused", pauseAt, { data: { pausedAt: String(pauseAt) } });
    Object.assign(row, { state: "paused", pausedAt: pauseAt });
  }
  return { row, charges };
}

/** 32 bytes of hex from a label (sha256: synthetic hashes need only be unique and look like hashes). */
const hash32 = (label: string): string => createHash("sha256").update(label).digest("hex");

const ZERO_REF = "0x" + "0".repeat(64);
const refOf = (n: number): string => "0x" + Buffer.from(`order-${n}`).toString("hex").padEnd(64, "0");

/** Every synthetic subscription's life, with starts skewed by `skew` toward the head (a growing business):
 * start = end - history × u^skew. Calls `emit` for every event; returns the rows and the charge count. */
function history(plans: PlanSpec[], from: number, end: number, skew: number, emit: Emit | null, put: ((row: SubscriptionRow) => void) | null): number {
  const rand = prng(11);
  let charges = 0;
  let n = 0;
  const noop: Emit = () => {};
  for (const plan of plans) {
    for (let i = 0; i < plan.count; i++, n++) {
      const subscriber = "0x" + hash32(`recur-bench-merchant/${plan.address}/${i}`).slice(-40);
      const start = Math.max(from, Math.floor(end - (end - from) * rand() ** skew - 3_600));
      const ref = rand() < 0.2 ? refOf(n) : ZERO_REF;
      const life = lifeOf(plan, subscriber, start, end, rand, emit === null ? noop : (kind, time, fields, sameTx) => emit(kind, time, { plan: plan.address, subscriber, ...fields }, sameTx), ref);
      charges += life.charges;
      put?.(life.row);
    }
  }
  return charges;
}

/** The skew that gives about CHARGE_EVENTS charge events (a bisection over dry runs of the same draws). */
function calibrate(plans: PlanSpec[], from: number, end: number): { skew: number; charges: number } {
  let lo = 0.2;
  let hi = 5;
  for (let i = 0; i < 18; i++) {
    const mid = (lo + hi) / 2;
    // More skew: younger subscriptions, fewer charges.
    if (history(plans, from, end, mid, null, null) > CHARGE_EVENTS) lo = mid;
    else hi = mid;
  }
  return { skew: hi, charges: history(plans, from, end, hi, null, null) };
}

// --- the chain ---------------------------------------------------------------------------------------

async function createPlan(factory: Contract, merchant: Signer, planTerms: unknown): Promise<string> {
  const receipt = await (await (factory.connect(merchant) as Contract).getFunction("createPlan")(planTerms)).wait();
  const event = receipt.logs.map((l: { topics: string[]; data: string }) => factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
  return String(event.args.plan).toLowerCase();
}

async function block(url: string, tag: bigint | "latest"): Promise<Block> {
  const b = await rpc<{ number: string; hash: string; timestamp: string; baseFeePerGas?: string }>(url, "eth_getBlockByNumber", [typeof tag === "bigint" ? hex(tag) : tag, false]);
  return { number: BigInt(b.number), hash: b.hash, timestamp: BigInt(b.timestamp), ...(b.baseFeePerGas === undefined ? {} : { baseFeePerGas: BigInt(b.baseFeePerGas) }) } as Block;
}

/** Mines `count` empty blocks BLOCK_TIME s apart; returns the stretch. */
async function mineStretch(url: string, count: number): Promise<Stretch> {
  const before = await block(url, "latest");
  await rpc(url, "hardhat_mine", [hex(count), hex(BLOCK_TIME)]);
  const first = await block(url, before.number + 1n);
  const last = await block(url, "latest");
  const stretch = { first: Number(first.number), last: Number(last.number), time: Number(first.timestamp) };
  if (Number(last.timestamp) !== stretch.time + (stretch.last - stretch.first) * BLOCK_TIME) throw new Error("hardhat_mine: block times not evenly spaced");
  return stretch;
}

/** Signed transactions sent while automine is off, then mined together in one block at `timestamp`. */
async function mineTogether(node: Node, raws: string[], timestamp: number): Promise<bigint> {
  await rpc(node.url, "evm_setAutomine", [false]);
  try {
    await rpcMany(node.url, raws.map((raw) => ["eth_sendRawTransaction", [raw]]));
    await rpc(node.url, "evm_setNextBlockTimestamp", [timestamp]);
    await rpc(node.url, "evm_mine", []);
  } finally {
    await rpc(node.url, "evm_setAutomine", [true]);
  }
  const b = await rpc<{ transactions: string[]; number: string }>(node.url, "eth_getBlockByNumber", ["latest", false]);
  if (b.transactions.length !== raws.length) throw new Error(`block ${BigInt(b.number)} holds ${b.transactions.length} of ${raws.length} transactions`);
  const receipts = await rpcMany(node.url, b.transactions.map((h) => ["eth_getTransactionReceipt", [h]]));
  const failed = receipts.filter((r) => (r as { status: string }).status !== "0x1").length;
  if (failed > 0) throw new Error(`block ${BigInt(b.number)}: ${failed} of ${raws.length} transactions reverted`);
  return BigInt(b.number);
}

/** Each wallet mints, approves and subscribes (nonces 0, 1, 2); some approve or hold too little for the
 * next charge, so that the plans' predictions differ. */
async function subscriptionTxs(node: Node, token: string, entries: { wallet: Wallet; plan: PlanSpec }[]): Promise<string[]> {
  await rpcMany(node.url, entries.map(({ wallet }) => ["hardhat_setBalance", [wallet.address, hex(10n ** 18n)]]));
  const raws: string[] = [];
  entries.forEach(({ wallet, plan }, i) => {
    const metered = plan.kind === "metered";
    const balance = i % 7 === 3 ? plan.amount : 100n * (metered ? METERED_CAP : plan.amount);
    const allowance = i % 5 === 2 ? plan.amount : 24n * (metered ? METERED_CAP : plan.amount);
    raws.push(sign(wallet, 0, token, tokenIface.encodeFunctionData("mint", [wallet.address, balance]), 120_000));
    raws.push(sign(wallet, 1, token, tokenIface.encodeFunctionData("approve", [plan.address, allowance]), 80_000));
    raws.push(sign(wallet, 2, plan.address, planIface.encodeFunctionData("subscribe", [plan.maxAmount]), 400_000));
  });
  return raws;
}

// --- running the reports --------------------------------------------------------------------------------

interface Run {
  ms: number;
  code: number | null;
  bytes: number;
  maxRssMb: number | null;
  stderr: string;
}

function runProcess(args: string[], env: Record<string, string>): Promise<Run> {
  const cmd = [process.execPath, "--disable-warning=ExperimentalWarning", RECUR_BIN, ...args];
  const [command, ...rest] = TIME === null ? cmd : [TIME, "-v", ...cmd];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command!, rest, { cwd: ROOT, env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let bytes = 0;
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (bytes += d.length));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-65_536)));
    child.once("error", reject);
    child.once("close", (code) => {
      const ms = performance.now() - started;
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({ ms, code, bytes, maxRssMb: rss === null ? null : Math.round(Number(rss[1]) / 102.4) / 10, stderr });
    });
  });
}

/** The same command through src/cli/main.ts in this process: everything but Node's start-up and module
 * loading (the catch-up, here nothing to do, the chain reads, the report and its output). */
async function runInProcess(args: string[], env: Record<string, string>): Promise<Run> {
  let bytes = 0;
  let stderr = "";
  const stdout = new Writable({ write: (chunk: Buffer, _enc, done) => ((bytes += chunk.length), done()) });
  const errStream = new Writable({ write: (chunk: Buffer, _enc, done) => ((stderr += chunk.toString()), done()) });
  const started = performance.now();
  const code = await main(args, env, { stdout: stdout as never, stderr: errStream as never, signal: new AbortController().signal });
  return { ms: performance.now() - started, code, bytes, maxRssMb: null, stderr };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Figure {
  name: string;
  args: string[];
  processMs: number;
  processRunsMs: number[];
  inProcessMs: number;
  inProcessRunsMs: number[];
  outputBytes: number;
  peakRssMb: number | null;
  met: boolean;
}

async function measure(name: string, args: string[], env: Record<string, string>): Promise<Figure> {
  const proc: Run[] = [];
  const inproc: Run[] = [];
  // A run over SLOW_MS is not repeated (the median of one): the figure is far over the target anyway.
  for (let i = 0; i < RUNS && (i === 0 || proc[0]!.ms < SLOW_MS); i++) {
    const p = await runProcess(args, env);
    if (p.code !== 0) throw new Error(`recur ${args.join(" ")}: exit ${p.code}\n${p.stderr.slice(-2000)}`);
    proc.push(p);
  }
  for (let i = 0; i < RUNS && (i === 0 || inproc[0]!.ms < SLOW_MS); i++) {
    const r = await runInProcess(args, env);
    if (r.code !== 0) throw new Error(`in-process recur ${args.join(" ")}: exit ${r.code}\n${r.stderr.slice(-2000)}`);
    inproc.push(r);
  }
  const processMs = Math.round(median(proc.map((r) => r.ms)));
  const inProcessMs = Math.round(median(inproc.map((r) => r.ms)));
  const rss = proc.map((r) => r.maxRssMb).filter((x): x is number => x !== null);
  const figure = {
    name, args, processMs, processRunsMs: proc.map((r) => Math.round(r.ms)), inProcessMs, inProcessRunsMs: inproc.map((r) => Math.round(r.ms)),
    outputBytes: proc[0]!.bytes, peakRssMb: rss.length === 0 ? null : Math.max(...rss), met: processMs < TARGET_REPORT_MS,
  };
  console.log(`  ${name.padEnd(58)} ${String(processMs).padStart(6)} ms  in-process ${String(inProcessMs).padStart(6)} ms  ${(figure.outputBytes / 1024).toFixed(0).padStart(7)} KiB  RSS ${figure.peakRssMb ?? "n/a"} MB`);
  return figure;
}

// --- the benchmark ----------------------------------------------------------------------------------

const t0 = performance.now();
const ms = (from: number) => Math.round(performance.now() - from);
const storeDir = mkdtempSync(path.join(os.tmpdir(), "recur-bench-merchant-"));
let node: Node | undefined;
let exitCode = 0;
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    stopping = true;
    console.error(`bench: ${signal}, stopping the node`);
    void Promise.allSettled([node?.stop()]).finally(() => {
      rmSync(storeDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

const quiet = createLogger(new Writable({ write: (_c, _e, done) => done() }), { level: "error" });

try {
  // 1. The chain: token, feed, factory, plans; two years of blocks with real subscribers a month before the head.
  const setupStarted = performance.now();
  node = await startNode();
  const url = node.url;
  const [deployer, merchant] = accounts(node.provider, 2);
  const merchantAddress = await merchant!.getAddress();
  const token = await deploy("TestUSDC", deployer!);
  const tokenAddress = (await token.getAddress()).toLowerCase();
  const feed = await deploy("MockAggregator", deployer!, [8, FEED_ANSWER]);
  const feedAddress = (await feed.getAddress()).toLowerCase();
  const factory = await deploy("PlanFactory", deployer!);
  const factoryBlock = BigInt((await factory.deploymentTransaction()!.wait())!.blockNumber);
  const factoryAddress = (await factory.getAddress()).toLowerCase();
  const totalReal = REAL_PER_PLAN * (FIXED_PLANS + 1);
  const synthetic = SUBSCRIPTIONS - totalReal;
  const bigShare = Math.round(synthetic * 0.2);
  const meteredShare = Math.round(synthetic * 0.05);
  const otherShare = Math.floor((synthetic - bigShare - meteredShare) / (FIXED_PLANS - 1));
  const plans: PlanSpec[] = [];
  for (let p = 0; p < FIXED_PLANS; p++) {
    const usd = p === USD_PLAN;
    const address = await createPlan(factory, merchant!, terms(tokenAddress, merchantAddress, usd ? { price: USD_PRICE, priceFeed: feedAddress, maxPriceAge: 3_600n } : {}));
    const count = p === BIG_PLAN ? bigShare : p === FIXED_PLANS - 1 ? synthetic - bigShare - meteredShare - otherShare * (FIXED_PLANS - 2) : otherShare;
    plans.push({ address, kind: usd ? "usd" : "fixed", amount: PRICE, maxAmount: 12n * PRICE, period: Number(PERIOD), grace: Number(GRACE), count });
  }
  const metered = meteredTerms(tokenAddress, merchantAddress);
  plans.push({
    address: await createPlan(factory, merchant!, metered), kind: "metered", amount: METERED_CAP, maxAmount: METERED_CAP,
    period: Number(metered.period), grace: Number(metered.gracePeriod), count: meteredShare,
  });
  const plansHead = await block(url, "latest");
  const start = Number(plansHead.timestamp);
  const end = start + HISTORY;
  const month = Number(PERIOD);
  const stretchA = await mineStretch(url, Math.floor((HISTORY - month - 60) / BLOCK_TIME));
  // The real subscribers, at a fresh feed answer (the USD plan prices its pull through it).
  const deployerWallet = new Wallet(accountKey(0));
  let deployerNonce = Number(BigInt(await rpc<string>(url, "eth_getTransactionCount", [deployerWallet.address, "latest"])));
  const setAnswer = () => sign(deployerWallet, deployerNonce++, feedAddress, feedIface.encodeFunctionData("setAnswer", [FEED_ANSWER]), 100_000);
  const realWallets = walletsFor("real", totalReal, "recur-bench-merchant");
  const realEntries = realWallets.map((wallet, i) => ({ wallet, plan: plans[Math.floor(i / REAL_PER_PLAN)]! }));
  const gasLimitBefore = BigInt((await rpc<{ gasLimit: string }>(url, "eth_getBlockByNumber", ["latest", false])).gasLimit);
  await rpc(url, "evm_setBlockGasLimit", [hex(1_000_000_000)]);
  const subTime = stretchA.time + (stretchA.last - stretchA.first + 1) * BLOCK_TIME;
  const feedBlock = await mineTogether(node, [setAnswer()], subTime);
  const subBlock = await mineTogether(node, await subscriptionTxs(node, tokenAddress, realEntries), subTime + BLOCK_TIME);
  await rpc(url, "evm_setBlockGasLimit", [hex(gasLimitBefore)]);
  const stretchB = await mineStretch(url, Math.floor((end - (subTime + BLOCK_TIME)) / BLOCK_TIME));
  const head = await block(url, "latest");
  const chainMs = ms(setupStarted);

  // 2. The index: the real events by the indexer, the stretches checkpointed, then the synthetic history.
  const storePath = path.join(storeDir, "index.sqlite");
  const nodeRpc: Rpc = createRpc(url, { timeoutMs: 60_000, retries: 2, backoffMs: 250 });
  const deps = { rpc: nodeRpc, store: undefined as unknown as Store, log: quiet, factory: factoryAddress, factoryBlock, confirmations: CONFIRMATIONS, logRange: LOG_RANGE, chainId: 31337n };
  const indexStarted = performance.now();
  const store = new Store(storePath);
  deps.store = store;
  await sync(deps, plansHead);
  store.addCheckpoint(BigInt(stretchA.last), (await block(url, BigInt(stretchA.last))).hash);
  await sync(deps, await block(url, subBlock));
  if (feedBlock + 1n !== subBlock) throw new Error("setup: the subscriptions' block is not the feed's next");
  const calibration = calibrate(plans, start + 3_600, end);
  const blockOf = (time: number): number => {
    const inA = Math.floor((time - stretchA.time) / BLOCK_TIME);
    if (inA <= stretchA.last - stretchA.first) return stretchA.first + Math.max(inA, 0);
    return stretchB.first + Math.max(0, Math.min(Math.floor((time - stretchB.time) / BLOCK_TIME), stretchB.last - stretchB.first));
  };
  const timeOf = (b: number): number => (b <= stretchA.last ? stretchA.time + (b - stretchA.first) * BLOCK_TIME : stretchB.time + (b - stretchB.first) * BLOCK_TIME);
  const nextLogIndex = new Map<number, number>();
  let txCounter = 0;
  let lastTx = { hash: "", block: 0 };
  const counts = new Map<string, number>();
  let rows = 0;
  const fillStarted = performance.now();
  store.transaction(() => {
    history(plans, start + 3_600, end, calibration.skew, (kind, time, fields, sameTx) => {
      const b = sameTx === true ? lastTx.block : blockOf(time);
      const logIndex = nextLogIndex.get(b) ?? 0;
      nextLogIndex.set(b, logIndex + 1);
      const txHash = sameTx === true ? lastTx.hash : "0x" + hash32(`tx/${txCounter++}`);
      lastTx = { hash: txHash, block: b };
      store.addActivity({
        block: BigInt(b), logIndex, txHash, time: timeOf(b), plan: fields.plan!, subscriber: fields.subscriber ?? null, kind,
        amount: fields.amount ?? null, periodIndex: fields.periodIndex ?? null, reason: fields.reason ?? null, usage: fields.usage ?? null,
        fromCredits: fields.fromCredits ?? null, ref: fields.ref ?? null, data: fields.data ?? null,
      });
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }, (row) => {
      store.putSubscription(row);
      rows++;
    });
    store.addCheckpoint(head.number, head.hash);
    store.setMeta("logRange", LOG_RANGE.toString());
  });
  const fillMs = ms(fillStarted);
  store.close();
  const db = new DatabaseSync(storePath);
  const sizes = {
    subscriptions: Number((db.prepare("SELECT COUNT(*) AS n FROM subscriptions").get() as { n: number }).n),
    activity: Number((db.prepare("SELECT COUNT(*) AS n FROM activity").get() as { n: number }).n),
    chargeEvents: Number((db.prepare("SELECT COUNT(*) AS n FROM activity WHERE kind IN ('charged', 'charge_failed', 'usage_charged', 'usage_failed')").get() as { n: number }).n),
    byKind: Object.fromEntries((db.prepare("SELECT kind, COUNT(*) AS n FROM activity GROUP BY kind ORDER BY kind").all() as { kind: string; n: number }[]).map((r) => [r.kind, Number(r.n)])),
    biggestPlanSubscribers: Number((db.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE plan = ?").get(plans[BIG_PLAN]!.address) as { n: number }).n),
    realSubscriptions: totalReal,
    plans: plans.length,
  };
  db.close();
  const indexMs = ms(indexStarted);
  const fileMb = (f: string) => (existsSync(f) ? Math.round(statSync(f).size / 1024 / 102.4) / 10 : 0);
  const storeMb = fileMb(storePath);
  console.log(`setup: chain ${(chainMs / 1000).toFixed(1)} s (head block ${head.number}, ${new Date(Number(head.timestamp) * 1000).toISOString()}); index ${(indexMs / 1000).toFixed(1)} s (synthetic fill ${(fillMs / 1000).toFixed(1)} s: ${rows} subscriptions, ${[...counts.values()].reduce((a, b) => a + b, 0)} activity rows); store ${storeMb} MB`);
  console.log(`index: ${sizes.subscriptions} subscriptions (${sizes.biggestPlanSubscribers} on the biggest plan), ${sizes.activity} activity rows, ${sizes.chargeEvents} charge events; ${JSON.stringify(sizes.byKind)}`);

  // 3. The reports on the warm index.
  const env = {
    RECUR_RPC_URL: url, RECUR_CHAIN_ID: CHAIN_ID.toString(), RECUR_FACTORY: factoryAddress, RECUR_FACTORY_BLOCK: factoryBlock.toString(),
    RECUR_STORE: storePath, RECUR_CONFIRMATIONS: String(CONFIRMATIONS),
  };
  const big = plans[BIG_PLAN]!.address;
  const usdPlan = plans[USD_PLAN]!.address;
  const day = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
  const lastMonth = day(end - month);
  const all = day(start);
  const reports: [string, string[]][] = [
    ["plans --json", ["plans", "--json"]],
    ["plans --csv", ["plans", "--csv"]],
    ["subscribers --plan BIG --json", ["subscribers", "--plan", big, "--json"]],
    ["subscribers --plan BIG --csv", ["subscribers", "--plan", big, "--csv"]],
    ["subscribers --plan BIG --status PastDue --json", ["subscribers", "--plan", big, "--status", "PastDue", "--json"]],
    ["subscribers --plan BIG --status PastDue --csv", ["subscribers", "--plan", big, "--status", "PastDue", "--csv"]],
    ["subscribers --plan USD --json", ["subscribers", "--plan", usdPlan, "--json"]],
    [`charges --plan BIG --since ${lastMonth} --json`, ["charges", "--plan", big, "--since", lastMonth, "--json"]],
    [`charges --plan BIG --since ${lastMonth} --csv`, ["charges", "--plan", big, "--since", lastMonth, "--csv"]],
    [`charges --since ${lastMonth} --json (all plans)`, ["charges", "--since", lastMonth, "--json"]],
    [`charges --since ${lastMonth} --csv (all plans)`, ["charges", "--since", lastMonth, "--csv"]],
    ["revenue --by month --json (all plans)", ["revenue", "--by", "month", "--json"]],
    ["revenue --by month --csv (all plans)", ["revenue", "--by", "month", "--csv"]],
    ["revenue --plan BIG --by day --json", ["revenue", "--plan", big, "--by", "day", "--json"]],
    ["revenue --plan BIG --by day --csv", ["revenue", "--plan", big, "--by", "day", "--csv"]],
    // The whole history at once: every charge event in the window.
    [`revenue --by month --since ${all} --json (all plans, two years)`, ["revenue", "--by", "month", "--since", all, "--json"]],
  ];
  console.log(`\nreports on the warm index (median of ${RUNS}; process wall time, then in-process):`);
  const figures: Figure[] = [];
  for (const [name, args] of reports) if (ONLY === null || ONLY.test(name)) figures.push(await measure(name, args, env));

  // What the revenue report's store queries cost on this index (each once, in-process), over the last 30
  // days and over the whole history.
  const queries: Record<string, Record<string, number>> = {};
  {
    const q = new Store(storePath);
    const addresses = plans.map((p) => p.address);
    const now = Number(head.timestamp);
    const time = (fn: () => unknown) => {
      const t = performance.now();
      fn();
      return Math.round(performance.now() - t);
    };
    for (const [label, since] of [["last 30 days", now + 1 - month], ["two years", start]] as const) {
      queries[label] = {
        reportStatusCounts: time(() => q.reportStatusCounts(now)),
        reportRetiredAt: time(() => q.reportRetiredAt()),
        reportCollectedByMonth: time(() => q.reportCollected(addresses, since, now + 1, "month")),
        reportCollectedByDayBigPlan: time(() => q.reportCollected([big], since, now + 1, "day")),
        reportEventCounts: time(() => q.reportEventCounts(addresses, ["subscribed", "cancelled"], since, now + 1)),
        reportExpiredBetween: time(() => q.reportExpiredBetween(addresses, since, now + 1, now)),
        reportRecovery: time(() => q.reportRecovery(addresses, since, now + 1)),
        reportDueBy7Days: time(() => q.reportDueBy(addresses, now, now + 7 * 86_400)),
        subscriptionsOfBigPlan: time(() => q.subscriptionsOf(big)),
      };
    }
    q.close();
    console.log(`store queries (ms): ${JSON.stringify(queries)}`);
  }

  // 4. Catch-up: 10,000 new blocks with real plan events in some of them, then one report's catch-up.
  const catchStarted = performance.now();
  const newWallets = walletsFor("catch-up", 100, "recur-bench-merchant");
  let mined = 0;
  const gap = async (n: number) => {
    if (n <= 0) return;
    await rpc(url, "hardhat_mine", [hex(n), hex(BLOCK_TIME)]);
    mined += n;
  };
  const nextTime = async () => Number((await block(url, "latest")).timestamp) + BLOCK_TIME;
  const keeper = new Wallet(accountKey(5));
  await rpc(url, "hardhat_setBalance", [keeper.address, hex(10n ** 18n)]);
  let keeperNonce = 0;
  let txs = 0;
  await gap(499);
  // The real fixed-plan subscribers are due: a fresh price, then one chargeMany per fixed plan.
  const chargeRaws = [setAnswer()];
  for (let p = 0; p < FIXED_PLANS; p++) {
    const subs = realEntries.filter((e) => e.plan === plans[p]).map((e) => e.wallet.address);
    chargeRaws.push(sign(keeper, keeperNonce++, plans[p]!.address, planIface.encodeFunctionData("chargeMany", [subs]), 5_000_000));
  }
  await mineTogether(node, chargeRaws, await nextTime());
  mined++;
  txs += chargeRaws.length;
  for (let g = 0; g < 4; g++) {
    await gap(2_000 - 1);
    const entries = newWallets.slice(g * 25, (g + 1) * 25).map((wallet, i) => ({ wallet, plan: plans[(g * 25 + i) % FIXED_PLANS === USD_PLAN ? 0 : (g * 25 + i) % FIXED_PLANS]! }));
    const raws = await subscriptionTxs(node, tokenAddress, entries);
    await mineTogether(node, raws, await nextTime());
    mined++;
    txs += raws.length;
  }
  await gap(CATCH_UP_BLOCKS - mined);
  const newHead = await block(url, "latest");
  if (newHead.number - head.number !== BigInt(CATCH_UP_BLOCKS)) throw new Error(`catch-up: ${newHead.number - head.number} new blocks, expected ${CATCH_UP_BLOCKS}`);
  const catchSetupMs = ms(catchStarted);
  // Two copies of the warm index: one caught up by the indexer in this process, one by a report.
  const copy = (to: string) => {
    copyFileSync(storePath, to);
    for (const ext of ["-wal", "-shm"]) if (existsSync(storePath + ext)) copyFileSync(storePath + ext, to + ext);
  };
  const syncPath = path.join(storeDir, "sync.sqlite");
  const reportPath = path.join(storeDir, "report.sqlite");
  copy(syncPath);
  copy(reportPath);
  const syncStore = new Store(syncPath);
  const syncStarted = performance.now();
  const synced = await sync({ ...deps, store: syncStore }, newHead);
  const syncMs = ms(syncStarted);
  syncStore.close();
  const catchUpReport = await runProcess(["plans", "--json"], { ...env, RECUR_STORE: reportPath });
  if (catchUpReport.code !== 0) throw new Error(`catch-up report: exit ${catchUpReport.code}\n${catchUpReport.stderr.slice(-2000)}`);
  const warmPlans = figures.find((x) => x.name === "plans --json")?.processMs ?? null;
  const catchUp = {
    newBlocks: CATCH_UP_BLOCKS, transactions: txs, logs: synced.logs, pages: synced.pages, from: synced.from.toString(), to: synced.to.toString(),
    setupMs: catchSetupMs, syncInProcessMs: syncMs, reportWithCatchUpMs: Math.round(catchUpReport.ms), warmReportMs: warmPlans,
    reportPeakRssMb: catchUpReport.maxRssMb,
  };
  console.log(`\ncatch-up of ${CATCH_UP_BLOCKS} blocks (${txs} transactions, ${synced.logs} logs, ${synced.pages} pages): indexer sync ${syncMs} ms in-process; \`recur plans --json\` with its catch-up ${catchUp.reportWithCatchUpMs} ms (warm: ${warmPlans} ms)`);

  // 5. Figures and targets.
  const over = figures.filter((f) => !f.met);
  const met = over.length === 0;
  const peakRss = Math.max(...figures.map((f) => f.peakRssMb ?? 0));
  const f = (n: number) => n.toLocaleString("en-US");
  console.log(`\nmerchant benchmark: ${f(sizes.subscriptions)} subscriptions, ${f(sizes.chargeEvents)} charge events (${f(sizes.activity)} activity rows), ${plans.length} plans; Node ${process.version}, ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB\n`);
  console.log(`${"report".padEnd(58)} ${"process".padStart(8)} ${"in-proc".padStart(8)} ${"output".padStart(10)} ${"RSS".padStart(8)}  target`);
  for (const x of figures) {
    console.log(`${x.name.padEnd(58)} ${`${x.processMs} ms`.padStart(8)} ${`${x.inProcessMs} ms`.padStart(8)} ${`${(x.outputBytes / 1024).toFixed(0)} KiB`.padStart(10)} ${`${x.peakRssMb ?? "n/a"} MB`.padStart(8)}  ${x.met ? "met" : "NOT met"}`);
  }
  console.log(`${"catch-up of 10,000 blocks: indexer sync".padEnd(58)} ${"-".padStart(8)} ${`${syncMs} ms`.padStart(8)}`);
  console.log(`${"catch-up of 10,000 blocks: recur plans --json".padEnd(58)} ${`${catchUp.reportWithCatchUpMs} ms`.padStart(8)}`);
  console.log(`\ntarget: every report under ${TARGET_REPORT_MS} ms (process wall time, warm index) — ${met ? "met" : `NOT met (${over.map((x) => `${x.name}: ${x.processMs} ms`).join("; ")})`}`);
  console.log(`peak RSS of the report processes: ${peakRss} MB; total run ${(ms(t0) / 1000).toFixed(1)} s`);

  const results = {
    measuredAt: new Date().toISOString(),
    command: `npm run bench:merchant${SCALE === 1 ? "" : ` -- --scale ${SCALE}`}`,
    environment: {
      node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      hardhatNode: "hardhat node (EDR), automine, 12 s blocks mined by hardhat_mine",
    },
    index: {
      ...sizes, storeMb, headBlock: head.number.toString(), headTime: new Date(Number(head.timestamp) * 1000).toISOString(),
      history: `${new Date(start * 1000).toISOString()} to ${new Date(end * 1000).toISOString()}`, startSkew: Number(calibration.skew.toFixed(4)),
      writtenWith: "Store.putSubscription and Store.addActivity in one transaction", fillMs, indexMs, chainSetupMs: chainMs,
    },
    runs: RUNS,
    reports: figures,
    storeQueriesMs: queries,
    catchUp,
    targets: { reportUnderMs: TARGET_REPORT_MS, measuredOn: "process wall time, median of 3", met, over: over.map((x) => ({ name: x.name, processMs: x.processMs, inProcessMs: x.inProcessMs })) },
    peakRssMb: peakRss,
  };
  writeResults("merchant", SCALE, results);
  console.log(`\nwrote bench/results/merchant.json (scale ${SCALE}); target ${met ? "met" : "NOT met"}`);
  if (!met) exitCode = 1;
} catch (error) {
  if (!stopping) console.error(error);
  exitCode = 1;
} finally {
  await node?.stop();
  rmSync(storeDir, { recursive: true, force: true });
}
process.exitCode = exitCode;


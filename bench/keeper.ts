// Keeper benchmark (SPEC §4): 10,000 subscriptions on 10 plans, 1,000 of them due; one
// `recur run --once` pass, as an operator runs it (a child process), against a local
// `hardhat node`, with every JSON-RPC call counted by method at a proxy in front of the node.
// Prints a table and writes bench/results/keeper.json (one entry per scale). Not part of CI; takes a
// few minutes (scale 10: about half an hour).
//   npm run bench:keeper
//   npm run bench:keeper -- --scale 10     (or RECUR_BENCH_SCALE=10): 100,000 subscriptions, 10,000 due
//
// Setup is fast but honest: every subscription is the subscriber's own `subscribe` transaction
// (after its own `mint` and `approve`), signed locally with explicit nonces from deterministic keys
// and sent as raw transactions in JSON-RPC batches while automine is off, then mined 1,000
// subscribers per block. Only gas money is conjured (hardhat_setBalance).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";

import { Interface, Wallet } from "ethers";
import type { Contract, Signer } from "ethers";

import { accountKey, accounts, deploy, onLogLines, ROOT, startNode } from "../test/keeper/support/chain.ts";
import type { Node } from "../test/keeper/support/chain.ts";
import { DAY, GRACE, PERIOD, PRICE, terms } from "../test/keeper/support/scenario.ts";
import { PLAN_RETIRED } from "../src/chain/abi.ts";
import { Store } from "../src/index/store.ts";
import { startProxy } from "./lib/proxy.ts";
import { CHAIN_ID, hex, rpc, rpcMany, sign, walletsFor } from "./lib/rpc.ts";
import { benchScale, writeResults } from "./lib/results.ts";
import type { CountingProxy } from "./lib/proxy.ts";

/** `--scale N` or RECUR_BENCH_SCALE: N × 1,000 subscriptions per plan, N × 100 of them due. */
const SCALE = benchScale(process.argv.slice(2), process.env.RECUR_BENCH_SCALE, { min: 1, max: 100, integer: true });
const PLAN_COUNT = 10;
const PER_PLAN = 1_000 * SCALE;
const DUE_PER_PLAN = 100 * SCALE;
const SUBSCRIPTIONS = PLAN_COUNT * PER_PLAN;
const DUE = PLAN_COUNT * DUE_PER_PLAN;
const BATCH_SIZE = 250;
const CONFIRMATIONS = 1; // a local automining node: a mined block is final
const TX_GAS_CAP = 16_777_216n; // Hardhat's per-transaction gas cap (EIP-7825)
const TARGET_CALLS_PER_CHARGE = 0.05;
/** Issue 10 §4, for the measured pass (at scale 10 too): its time on 2 cores and the keeper's peak RSS. */
const TARGET_PASS_MS = 60_000;
const TARGET_PEAK_RSS_MB = 300;
/** An idle pass (nothing due) may make this many calls at most, whatever the number of subscriptions. */
const IDLE_PASS_MAX_CALLS = 10;

const SUBSCRIBERS_PER_BLOCK = 1_000;
const SETUP_BLOCK_GAS_LIMIT = 1_000_000_000;

const here = path.dirname(new URL(import.meta.url).pathname);
const KEEPER_BIN = path.join(ROOT, "bin/recur.ts");
const TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : null;
const KEEPER_TIMEOUT_MS = 300_000 * SCALE;

const abi = (file: string) => (JSON.parse(readFileSync(path.join(ROOT, "artifacts", file), "utf8")) as { abi: never[] }).abi;
const tokenIface = new Interface(abi("test/mocks/TestUSDC.sol/TestUSDC.json"));
const planIface = new Interface(abi("contracts/FixedPricePlan.sol/FixedPricePlan.json"));
const SUBSCRIBED = planIface.getEvent("Subscribed")!.topicHash;
const CHARGED = planIface.getEvent("Charged")!.topicHash;

// --- subscribers -----------------------------------------------------------------------------------

interface Entry {
  wallet: Wallet;
  plan: string;
}

/** Each entry's wallet mints itself tokens, approves its plan and subscribes: three transactions of
 * its own, signed here with nonces 0, 1, 2. Yields now and then, so that requests in flight progress. */
async function signSubscriptions(token: string, entries: Entry[]): Promise<string[]> {
  const subscribe = planIface.encodeFunctionData("subscribe", [PRICE]);
  const raws: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const { wallet, plan } = entries[i]!;
    raws.push(sign(wallet, 0, token, tokenIface.encodeFunctionData("mint", [wallet.address, 100n * PRICE]), 120_000));
    raws.push(sign(wallet, 1, token, tokenIface.encodeFunctionData("approve", [plan, 12n * PRICE]), 80_000));
    // The pull inside subscribe needs its whole gas budget (TokenCalls.PULL_GAS_NEEDED, about 206,000)
    // on top of the ~50,000 spent before it, or subscribe reverts (BatchOutOfGas).
    raws.push(sign(wallet, 2, plan, subscribe, 400_000));
    if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
  }
  return raws;
}

/** Gives the entries gas money, sends their signed transactions and mines them all in one block at
 * `timestamp` (automine must be off). */
async function mineSubscriptions(node: Node, entries: Entry[], raws: string[], timestamp: bigint): Promise<void> {
  await rpcMany(node.url, entries.map(({ wallet }) => ["hardhat_setBalance", [wallet.address, hex(10n ** 18n)]]));
  await rpcMany(node.url, raws.map((raw) => ["eth_sendRawTransaction", [raw]]));
  await rpc(node.url, "evm_setNextBlockTimestamp", [Number(timestamp)]);
  await rpc(node.url, "evm_mine", []);
  const block = await rpc<{ transactions: string[]; number: string }>(node.url, "eth_getBlockByNumber", ["latest", false]);
  if (block.transactions.length !== raws.length) {
    throw new Error(`setup: block ${BigInt(block.number)} holds ${block.transactions.length} of ${raws.length} transactions`);
  }
}

/** Subscribes every group, one block per group at its timestamp; the next group is signed while the
 * node takes in and mines the current one. Returns the number of transactions. */
async function subscribeInBlocks(node: Node, token: string, groups: { entries: Entry[]; timestamp: bigint }[]): Promise<number> {
  let count = 0;
  let raws = await signSubscriptions(token, groups[0]!.entries);
  for (let k = 0; k < groups.length; k++) {
    const { entries, timestamp } = groups[k]!;
    const [, next] = await Promise.all([
      mineSubscriptions(node, entries, raws, timestamp),
      k + 1 < groups.length ? signSubscriptions(token, groups[k + 1]!.entries) : Promise.resolve([]),
    ]);
    count += raws.length;
    raws = next;
  }
  return count;
}

async function createPlans(factory: Contract, merchant: Signer, token: string, count: number): Promise<string[]> {
  const merchantAddress = await merchant.getAddress();
  const plans: string[] = [];
  for (let p = 0; p < count; p++) {
    const tx = await (factory.connect(merchant) as Contract).getFunction("createPlan")(terms(token, merchantAddress));
    const receipt = await tx.wait();
    const event = receipt.logs.map((l: { topics: string[]; data: string }) => factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
    plans.push(String(event.args.plan).toLowerCase());
  }
  return plans;
}

// --- the keeper as a child process ------------------------------------------------------------------

interface PassReport {
  exitCode: number | null;
  wallMs: number;
  summary: Record<string, unknown>;
  calls: Record<string, number>;
  rpcCalls: number;
  httpRequests: number;
  maxRssMb: number | null;
  /** the keeper's due query on its store at the pass's moment, timed apart from the pass */
  dueQuery?: { rows: number; ms: number };
}

function runKeeperOnce(env: Record<string, string>, cwd: string): Promise<{ code: number | null; lines: Record<string, unknown>[]; stderr: string; wallMs: number; maxRssKb: number | null }> {
  const node = [process.execPath, "--disable-warning=ExperimentalWarning", KEEPER_BIN, "run", "--once"];
  const [command, ...args] = TIME === null ? node : [TIME, "-v", ...node];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // Its own process group, so that a kill reaches the keeper under /usr/bin/time too.
    const child = spawn(command!, args, { cwd, env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const killGroup = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    };
    liveKeeper = killGroup;
    const timer = setTimeout(killGroup, KEEPER_TIMEOUT_MS);
    const lines: Record<string, unknown>[] = [];
    let stderr = "";
    // Keep the lines a report needs, not one per charge.
    onLogLines(child.stdout, (line) => {
      if (line.event !== "charged") lines.push(line);
    });
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-65_536)));
    child.once("error", (error) => {
      clearTimeout(timer);
      liveKeeper = undefined;
      reject(error);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      liveKeeper = undefined;
      const wallMs = performance.now() - started;
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({ code, lines, stderr, wallMs, maxRssKb: rss === null ? null : Number(rss[1]) });
    });
  });
}

async function keeperPass(proxy: CountingProxy, env: Record<string, string>, cwd: string, label: string): Promise<PassReport> {
  proxy.reset();
  const run = await runKeeperOnce(env, cwd);
  const summary = run.lines.find((l) => l.event === "pass");
  if (run.code !== 0 || summary === undefined) {
    const tail = run.lines.slice(-5).map((l) => JSON.stringify(l)).join("\n");
    throw new Error(`${label} pass: keeper exited with ${run.code}\n${tail}\n${run.stderr.slice(-2000)}`);
  }
  const calls = Object.fromEntries([...proxy.calls.entries()].sort(([a], [b]) => a.localeCompare(b)));
  return {
    exitCode: run.code,
    wallMs: Math.round(run.wallMs),
    summary,
    calls,
    rpcCalls: proxy.total(),
    httpRequests: proxy.requests(),
    maxRssMb: run.maxRssKb === null ? null : Math.round(run.maxRssKb / 102.4) / 10,
  };
}

/** Times the keeper's due query on its store (best of 5) at `now`: the index on nextChargeAt makes it
 * cost what it returns, not the number of subscriptions stored. */
function timeDueQuery(storePath: string, now: bigint): { rows: number; ms: number } {
  const store = new Store(storePath);
  try {
    let best = Infinity;
    let rows = 0;
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      rows = store.due(Number(now), { index: 0, count: 1 }, PLAN_RETIRED).length;
      best = Math.min(best, performance.now() - started);
    }
    return { rows, ms: Number(best.toFixed(2)) };
  } finally {
    store.close();
  }
}

// --- the benchmark ----------------------------------------------------------------------------------

const t0 = performance.now();
const ms = (from: number) => Math.round(performance.now() - from);
const storeDir = mkdtempSync(path.join(os.tmpdir(), "recur-bench-keeper-"));
let node: Node | undefined;
let proxy: CountingProxy | undefined;
let exitCode = 0;
let liveKeeper: (() => void) | undefined;
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    stopping = true;
    console.error(`bench: ${signal}, stopping the keeper, the proxy and the node`);
    liveKeeper?.();
    void Promise.allSettled([proxy?.close(), node?.stop()]).finally(() => {
      rmSync(storeDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

try {
  node = await startNode();
  const [deployer, merchant] = accounts(node.provider, 2);
  const keeperKey = accountKey(5);
  const keeperAddress = new Wallet(keeperKey).address;
  const token = await deploy("TestUSDC", deployer!);
  const tokenAddress = (await token.getAddress()).toLowerCase();
  const gasLimitBefore = BigInt((await rpc<{ gasLimit: string }>(node.url, "eth_getBlockByNumber", ["latest", false])).gasLimit);

  // 1. chargeMany gas at the keeper's batch size, on a plan of a separate factory (so the keeper,
  //    which reads only the benchmark factory's plans, never sees it).
  const setupStarted = performance.now();
  const probeFactory = await deploy("PlanFactory", deployer!);
  const [probePlan] = await createPlans(probeFactory, merchant!, tokenAddress, 1);
  await rpc(node.url, "evm_setBlockGasLimit", [hex(SETUP_BLOCK_GAS_LIMIT)]);
  await rpc(node.url, "evm_setAutomine", [false]);
  const probeWallets = walletsFor("probe", BATCH_SIZE);
  let now = BigInt((await node.provider.getBlock("latest"))!.timestamp);
  await subscribeInBlocks(node, tokenAddress, [{ entries: probeWallets.map((wallet) => ({ wallet, plan: probePlan! })), timestamp: now + 60n }]);
  now += 60n + PERIOD;
  await node.mineAt(now);
  const chargeManyData = planIface.encodeFunctionData("chargeMany", [probeWallets.map((w) => w.address)]);
  const probeEstimate = BigInt(await rpc<string>(node.url, "eth_estimateGas", [{ from: keeperAddress, to: probePlan, data: chargeManyData }]));
  const keeperGasLimit = (probeEstimate * 12n) / 10n + 10_000n; // as src/chain/sender.ts sets it
  await rpc(node.url, "evm_setAutomine", [true]);
  const probeTx = await deployer!.sendTransaction({ to: probePlan!, data: chargeManyData, gasLimit: keeperGasLimit });
  const probeReceipt = (await probeTx.wait())!;
  const probeCharged = probeReceipt.logs.filter((l) => l.topics[0] === CHARGED).length;
  if (probeCharged !== BATCH_SIZE) throw new Error(`probe: chargeMany charged ${probeCharged} of ${BATCH_SIZE}`);
  if (keeperGasLimit > TX_GAS_CAP) throw new Error(`probe: a batch of ${BATCH_SIZE} needs a gas limit of ${keeperGasLimit}, over the cap ${TX_GAS_CAP}`);
  const probe = {
    batchSize: BATCH_SIZE,
    gasUsed: Number(probeReceipt.gasUsed),
    perSubscriber: Math.round(Number(probeReceipt.gasUsed) / BATCH_SIZE),
    estimate: Number(probeEstimate),
    keeperGasLimit: Number(keeperGasLimit),
    txGasCap: Number(TX_GAS_CAP),
  };
  await rpc(node.url, "evm_setAutomine", [false]);

  // 2. The benchmark's factory and plans; 100 subscribers per plan at T0 (due at the measured moment),
  //    900 per plan a day later (not due yet).
  const factory = await withAutomine(node, () => deploy("PlanFactory", deployer!));
  const factoryBlock = BigInt((await factory.deploymentTransaction()!.wait())!.blockNumber);
  const plans = await withAutomine(node, () => createPlans(factory, merchant!, tokenAddress, PLAN_COUNT));
  const deployMs = ms(setupStarted);

  const subscribeStarted = performance.now();
  const wallets = walletsFor("main", SUBSCRIPTIONS);
  const walletsMs = ms(subscribeStarted);
  const entries: (Entry & { due: boolean })[] = [];
  for (let p = 0; p < PLAN_COUNT; p++) {
    for (let j = 0; j < PER_PLAN; j++) entries.push({ wallet: wallets[p * PER_PLAN + j]!, plan: plans[p]!, due: j < DUE_PER_PLAN });
  }
  const dueEntries = entries.filter((e) => e.due);
  const laterEntries = entries.filter((e) => !e.due);
  now = BigInt((await node.provider.getBlock("latest"))!.timestamp);
  const T0 = now + 60n;
  // The due ones in blocks of SUBSCRIBERS_PER_BLOCK a second apart from T0 (at scale 1, one block at
  // T0): a block of 10,000 subscribers would not fit the setup's block gas limit.
  const groups: { entries: Entry[]; timestamp: bigint }[] = [];
  for (let i = 0; i < dueEntries.length; i += SUBSCRIBERS_PER_BLOCK) {
    groups.push({ entries: dueEntries.slice(i, i + SUBSCRIBERS_PER_BLOCK), timestamp: T0 + BigInt(groups.length) });
  }
  const dueBlocks = BigInt(groups.length);
  for (let i = 0; i < laterEntries.length; i += SUBSCRIBERS_PER_BLOCK) {
    groups.push({ entries: laterEntries.slice(i, i + SUBSCRIBERS_PER_BLOCK), timestamp: T0 + DAY + BigInt(groups.length) * 60n });
  }
  const setupTxs = await subscribeInBlocks(node, tokenAddress, groups);
  const setupBlocks = groups.length;
  await rpc(node.url, "evm_setBlockGasLimit", [hex(gasLimitBefore)]);
  await rpc(node.url, "evm_setAutomine", [true]);
  const subscribeMs = ms(subscribeStarted);

  // Every subscription landed.
  const subscribedLogs = await rpc<{ address: string }[]>(node.url, "eth_getLogs", [{ address: plans, topics: [SUBSCRIBED], fromBlock: hex(factoryBlock), toBlock: "latest" }]);
  for (const plan of plans) {
    const n = subscribedLogs.filter((l) => l.address.toLowerCase() === plan).length;
    if (n !== PER_PLAN) throw new Error(`setup: plan ${plan} has ${n} subscriptions, expected ${PER_PLAN}`);
  }
  const setupMs = ms(setupStarted);
  console.log(`setup: ${SUBSCRIPTIONS} subscriptions on ${PLAN_COUNT} plans in ${(setupMs / 1000).toFixed(1)} s (${setupTxs} transactions in ${setupBlocks} blocks)`);

  // 3. The keeper, through the counting proxy.
  proxy = await startProxy(node.url);
  const env = {
    RECUR_RPC_URL: proxy.url,
    RECUR_CHAIN_ID: CHAIN_ID.toString(),
    RECUR_FACTORY: String(factory.target),
    RECUR_FACTORY_BLOCK: factoryBlock.toString(),
    RECUR_PRIVATE_KEY: keeperKey,
    RECUR_CONFIRMATIONS: String(CONFIRMATIONS),
    RECUR_BATCH_SIZE: String(BATCH_SIZE),
    RECUR_STORE: path.join(storeDir, "keeper.sqlite"),
    RECUR_TX_TIMEOUT: "60",
  };

  // Warm-up: nothing is due; the pass indexes every subscription.
  const warmup = await keeperPass(proxy, env, storeDir, "warm-up");
  if (Number(warmup.summary.due) !== 0) throw new Error(`warm-up: ${String(warmup.summary.due)} due, expected 0`);
  console.log(`warm-up pass: ${warmup.wallMs} ms, indexed ${String(warmup.summary.indexedLogs)} logs, peak RSS ${warmup.maxRssMb ?? "n/a"} MB`);
  // Straight JSON-RPC from here on, not the ethers provider: see `post` on idle kept-alive sockets.
  const headTime = async () => BigInt((await rpc<{ timestamp: string }>(node!.url, "eth_getBlockByNumber", ["latest", false])).timestamp);
  warmup.dueQuery = timeDueQuery(env.RECUR_STORE, await headTime());

  // The measured moment: one period and an hour after T0.
  await rpc(node.url, "evm_setNextBlockTimestamp", [Number(T0 + PERIOD + 3_600n)]);
  await rpc(node.url, "evm_mine", []);
  const beforeMeasured = BigInt(await rpc<string>(node.url, "eth_blockNumber"));
  const dueQueryMeasured = timeDueQuery(env.RECUR_STORE, await headTime());
  const measured = await keeperPass(proxy, env, storeDir, "measured");
  measured.dueQuery = dueQueryMeasured;
  console.log(`measured pass: ${measured.wallMs} ms, charged ${String(measured.summary.charged)}, peak RSS ${measured.maxRssMb ?? "n/a"} MB`);
  const idle = await keeperPass(proxy, env, storeDir, "idle");
  idle.dueQuery = timeDueQuery(env.RECUR_STORE, await headTime());

  // 4. On-chain checks, outside the measured passes: every due subscription charged exactly once, the
  //    others untouched.
  const checkStarted = performance.now();
  const views = await rpcMany(
    node.url,
    entries.map(({ wallet, plan }) => ["eth_call", [{ to: plan, data: planIface.encodeFunctionData("subscriptionOf", [wallet.address]) }, "latest"]]),
  );
  const wrong: string[] = [];
  entries.forEach((e, i) => {
    const [sub] = planIface.decodeFunctionResult("subscriptionOf", views[i] as string) as unknown as [{ periodsPaid: bigint; nextChargeAt: bigint; startedAt: bigint }];
    const wantPaid = e.due ? 2n : 1n;
    const wantNext = sub.startedAt + (e.due ? 2n : 1n) * PERIOD;
    if (sub.periodsPaid !== wantPaid || sub.nextChargeAt !== wantNext || (e.due && (sub.startedAt < T0 || sub.startedAt >= T0 + dueBlocks))) {
      wrong.push(`${e.plan}/${e.wallet.address}: periodsPaid ${sub.periodsPaid}, nextChargeAt ${sub.nextChargeAt}`);
    }
  });
  const chargedLogs = await rpc<{ topics: string[]; address: string }[]>(node.url, "eth_getLogs", [{ address: plans, topics: [CHARGED], fromBlock: hex(beforeMeasured + 1n), toBlock: "latest" }]);
  const chargedKeys = chargedLogs.map((l) => `${l.address.toLowerCase()}/${"0x" + l.topics[1]!.slice(26)}`);
  const dueKeys = new Set(dueEntries.map((e) => `${e.plan}/${e.wallet.address.toLowerCase()}`));
  const chargedOnce = chargedKeys.length === DUE && new Set(chargedKeys).size === DUE && chargedKeys.every((k) => dueKeys.has(k));
  const checkMs = ms(checkStarted);
  if (wrong.length > 0) console.error(`on-chain check: ${wrong.length} subscriptions wrong, e.g.\n  ${wrong.slice(0, 5).join("\n  ")}`);

  // 5. Figures and targets.
  const charged = Number(measured.summary.charged);
  const callsPerCharge = measured.rpcCalls / Math.max(charged, 1);
  const expectedBatches = PLAN_COUNT * Math.ceil(DUE_PER_PLAN / BATCH_SIZE);
  const targets = {
    allDueChargedInOnePass: { met: charged === DUE && chargedOnce && wrong.length === 0, value: `${charged}/${DUE} charged; ${wrong.length} subscriptions wrong on-chain` },
    rpcCallsPerCharge: { met: callsPerCharge <= TARGET_CALLS_PER_CHARGE, value: Number(callsPerCharge.toFixed(4)), target: TARGET_CALLS_PER_CHARGE },
    discoveryOrderDue: {
      met: idle.rpcCalls <= IDLE_PASS_MAX_CALLS && (idle.calls.eth_call ?? 0) === 0 && (measured.calls.eth_call ?? 0) <= expectedBatches,
      value: `idle pass ${idle.rpcCalls} calls (max ${IDLE_PASS_MAX_CALLS}), ${idle.calls.eth_call ?? 0} eth_call; measured pass ${measured.calls.eth_call ?? 0} eth_call for ${expectedBatches} batches`,
    },
  };
  const peakRss = Math.max(...[warmup, measured, idle].map((p) => p.maxRssMb ?? 0));
  const limits = {
    measuredPassTime: { met: Number(measured.summary.durationMs) < TARGET_PASS_MS, value: Number(measured.summary.durationMs), target: TARGET_PASS_MS },
    peakRssMb: { met: peakRss > 0 && peakRss < TARGET_PEAK_RSS_MB, value: peakRss, target: TARGET_PEAK_RSS_MB },
  };
  const met = Object.values(targets).every((t) => t.met) && Object.values(limits).every((t) => t.met);

  const f = (n: unknown) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n));
  const passes = [warmup, measured, idle];
  const methods = [...new Set(passes.flatMap((p) => Object.keys(p.calls)))].sort();
  const rows: [string, ...string[]][] = [
    ["", "warm-up", "measured", "idle after"],
    ["subscriptions due at the pass", ...passes.map((p) => f(p.summary.due))],
    ["logs indexed", ...passes.map((p) => f(p.summary.indexedLogs))],
    ["charges", ...passes.map((p) => f(p.summary.charged))],
    ["transactions", ...passes.map((p) => f(p.summary.transactions))],
    ["gas used", ...passes.map((p) => f(Number(p.summary.gasUsed)))],
    ["gas per charge", ...passes.map((p) => (Number(p.summary.charged) > 0 ? f(Math.round(Number(p.summary.gasUsed) / Number(p.summary.charged))) : "-"))],
    ["pass time, keeper's own (ms)", ...passes.map((p) => f(p.summary.durationMs))],
    ["process wall time (ms)", ...passes.map((p) => f(p.wallMs))],
    ["peak RSS of the keeper (MB)", ...passes.map((p) => (p.maxRssMb === null ? "n/a" : f(p.maxRssMb)))],
    ["store due query: ms (rows)", ...passes.map((p) => (p.dueQuery === undefined ? "-" : `${p.dueQuery.ms} (${f(p.dueQuery.rows)})`))],
    ["RPC calls at the proxy", ...passes.map((p) => f(p.rpcCalls))],
    ...methods.map((m): [string, ...string[]] => [`  ${m}`, ...passes.map((p) => f(p.calls[m] ?? 0))]),
    ["HTTP requests at the proxy", ...passes.map((p) => f(p.httpRequests))],
    ["RPC calls counted by the keeper", ...passes.map((p) => f(p.summary.rpcCalls))],
    ["RPC calls per charge", ...passes.map((p) => (Number(p.summary.charged) > 0 ? (p.rpcCalls / Number(p.summary.charged)).toFixed(4) : "-"))],
  ];
  const width = [34, 12, 12, 12];
  console.log(`\nkeeper benchmark: ${f(SUBSCRIPTIONS)} subscriptions on ${PLAN_COUNT} plans, ${f(DUE)} due; batch size ${BATCH_SIZE}, confirmations ${CONFIRMATIONS}; Node ${process.version}, ${os.cpus().length} CPUs`);
  console.log(`setup: ${f(setupMs)} ms = contracts and chargeMany probe ${f(deployMs)} ms + ${f(SUBSCRIPTIONS)} subscribers ${f(subscribeMs)} ms (keys ${f(walletsMs)} ms; ${f(setupTxs)} transactions signed, sent and mined in ${setupBlocks} blocks)`);
  console.log(`chargeMany of ${BATCH_SIZE}: ${f(probe.gasUsed)} gas (${f(probe.perSubscriber)} per subscriber); the keeper's gas limit ${f(probe.keeperGasLimit)} ≤ cap ${f(probe.txGasCap)}\n`);
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join(" "));
  console.log("");
  console.log(`target: all ${DUE} due charged in one pass, exactly once, others untouched — ${targets.allDueChargedInOnePass.met ? "met" : "NOT met"} (${targets.allDueChargedInOnePass.value})`);
  console.log(`target: ≤ ${TARGET_CALLS_PER_CHARGE} RPC calls per charge (warm index) — ${targets.rpcCallsPerCharge.met ? "met" : "NOT met"} (${callsPerCharge.toFixed(4)})`);
  console.log(`target: discovery O(due), not O(all) — ${targets.discoveryOrderDue.met ? "met" : "NOT met"} (${targets.discoveryOrderDue.value})`);
  console.log(`target: measured pass < ${TARGET_PASS_MS / 1000} s — ${limits.measuredPassTime.met ? "met" : "NOT met"} (${(limits.measuredPassTime.value / 1000).toFixed(1)} s)`);
  console.log(`target: keeper peak RSS < ${TARGET_PEAK_RSS_MB} MB in every pass — ${limits.peakRssMb.met ? "met" : "NOT met"} (${peakRss} MB)`);
  console.log(`on-chain check of all ${f(SUBSCRIPTIONS)} subscriptions: ${f(checkMs)} ms; total run ${(ms(t0) / 1000).toFixed(1)} s`);

  const results = {
    measuredAt: new Date().toISOString(),
    environment: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, hardhatNode: "hardhat node (EDR), automine" },
    scenario: {
      plans: PLAN_COUNT, subscriptions: SUBSCRIPTIONS, due: DUE, duePerPlan: DUE_PER_PLAN, batchSize: BATCH_SIZE, confirmations: CONFIRMATIONS,
      period: Number(PERIOD), grace: Number(GRACE), measuredAt: `T0 + period + 1 h (due ones subscribed at T0, the others at T0 + 1 day)`,
    },
    setup: { totalMs: setupMs, contractsAndProbeMs: deployMs, keysMs: walletsMs, subscribeMs, subscriberTransactions: setupTxs, blocks: setupBlocks },
    chargeManyProbe: probe,
    passes: { warmup, measured, idle },
    check: { ms: checkMs, wrong: wrong.length, chargedEventsInMeasuredPass: chargedLogs.length, chargedOnce },
    targets: { ...targets, ...limits, met },
  };
  // One entry per scale: a run replaces its own scale's figures and keeps the others'.
  // Before --scale the file held one run at scale 1 at its top level.
  writeResults("keeper", SCALE, results, (previous) => ("scenario" in previous ? { "1": previous } : undefined));
  console.log(`\nwrote bench/results/keeper.json (scale ${SCALE}); targets ${met ? "met" : "NOT met"}`);
  if (!met) exitCode = 1;
} catch (error) {
  if (!stopping) console.error(error);
  exitCode = 1;
} finally {
  await proxy?.close();
  await node?.stop();
  rmSync(storeDir, { recursive: true, force: true });
}
process.exitCode = exitCode;


/** Runs `fn` with automine on for a moment (setup runs with it off). */
async function withAutomine<T>(n: Node, fn: () => Promise<T>): Promise<T> {
  await rpc(n.url, "evm_setAutomine", [true]);
  try {
    return await fn();
  } finally {
    await rpc(n.url, "evm_setAutomine", [false]);
  }
}

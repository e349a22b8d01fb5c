// The keeper's command line: `run --once` (cron), `run` (daemon), `run --dry-run`, `status`, and
// `usage` (a merchant bills a metered plan's usage file: src/usage/bill.ts). With RECUR_WEBHOOKS, `run`
// also runs the webhook worker (src/webhooks/worker.ts): its own loop beside the passes in a daemon, one
// round after the pass with --once.
// Exit codes: 0 everything due was handled (usage: every row billed); 1 bad configuration (usage: a bad
// file, plan or signer, or rows that cannot be billed: nothing sent); 2 a pass failed, the reason being
// the last log line (usage: a failure while sending, or rows that failed on-chain); 3 the node is on
// another chain.
// The daemon (`run` without --once) also serves /metrics, /healthz and /readyz (src/ops/) until it stops.
import { sleepUnlessAborted } from "../sleep.ts";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";

import type { Wallet } from "ethers";

import type { Config, KeeperConfig, UsageConfig } from "./config.ts";
import { describeConfig, parseCommandConfig, parseConfig, USAGE } from "./config.ts";
import type { CommandConfig, OptionValues } from "./config.ts";
import type { Command, Io } from "./command.ts";
import { askToSend, createContext, loadWallet } from "./command.ts";
import { COMMANDS, findCommand } from "./commands/index.ts";
import { errorMessage, KeeperError } from "../errors.ts";
import { createLogger } from "../log.ts";
import type { Logger } from "../log.ts";
import { runPass } from "../charging/pass.ts";
import type { PassSummary } from "../charging/pass.ts";
import { startOpsServer } from "../ops/http.ts";
import type { OpsServer } from "../ops/http.ts";
import { createMetrics } from "../ops/metrics.ts";
import type { KeeperMetrics, OutboxStats } from "../ops/metrics.ts";
import { readinessProbe } from "../ops/ready.ts";
import { createRpc } from "../chain/rpc.ts";
import type { Rpc } from "../chain/rpc.ts";
import { Sender } from "../chain/sender.ts";
import { Store } from "../index/store.ts";
import { billUsage, checkJournal, parseUsageFile } from "../usage/bill.ts";
import { initCursors, outboxStats, runWebhookWorker, webhookRound } from "../webhooks/worker.ts";

export type { Io } from "./command.ts";

const KEEPER_COMMANDS: { name: string; summary: string; example: string }[] = [
  { name: "run", summary: "charge every due subscription of the factory's plans: --once from cron, else as a daemon", example: "recur run --once" },
  { name: "status", summary: "what the index holds: plans, subscriptions by state, due now, held plans, the last pass", example: "recur status --json" },
  { name: "usage", summary: "bill a metered plan's ended cycles from a usage file (as its owner or a reporter)", example: "recur usage --plan 0x… --file usage.csv --dry-run" },
];

/** `recur --help`: every command with one line and an example. */
function overview(): string {
  const width = Math.max(...[...KEEPER_COMMANDS.map((c) => c.name), ...COMMANDS.map((c) => c.spec.name)].map((n) => n.length));
  const line = (name: string, summary: string) => `  ${name.padEnd(width)}  ${summary}`;
  return [
    "usage: recur <command> [options]      (recur <command> --help: its options and an example)",
    "keeper (operators):",
    ...KEEPER_COMMANDS.map((c) => line(c.name, c.summary)),
    "merchants:",
    ...COMMANDS.map((c) => line(c.spec.name, c.summary)),
    "examples (each command's --help has more):",
    ...[...KEEPER_COMMANDS.map((c) => c.example), ...COMMANDS.filter((c) => !c.spec.name.startsWith("plan ") || c.spec.name === "plan create").map((c) => c.examples[0]!)].map((e) => `  ${e}`),
    "Every option is also read from its environment variable and from .env; `recur run --help` lists the",
    "shared ones (node, chain, factory, signer, fees, store). Every command takes --json; tables also --csv.",
  ].join("\n");
}

/** `recur <command> --help`: the synopsis, the command's options, the shared ones, examples. */
function commandHelp(command: Command): string {
  const width = Math.max(...command.help.map((h) => h.flag.length), 20);
  return [
    `usage: ${command.synopsis}`,
    command.summary,
    ...(command.help.length > 0 ? ["options:", ...command.help.map((h) => `  ${h.flag.padEnd(width)}  ${h.text}`)] : []),
    "shared options (also from the environment and .env; see `recur run --help`): --rpc-url (RECUR_RPC_URL),",
    "  --chain-id (RECUR_CHAIN_ID), --factory / --factory-block (RECUR_FACTORY, RECUR_FACTORY_BLOCK), --store",
    "  (RECUR_STORE), --confirmations (RECUR_CONFIRMATIONS), --private-key / --keystore (RECUR_PRIVATE_KEY,",
    "  RECUR_KEYSTORE, RECUR_KEYSTORE_PASSWORD), --journal (RECUR_USAGE_JOURNAL), --max-fee-gwei, --json" + (command.spec.csv ? ", --csv" : "") + (command.spec.signer === null ? "" : ", --yes (send without asking)"),
    "examples:",
    ...command.examples.map((e) => `  ${e}`),
  ].join("\n");
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const help = argv.includes("--help") || argv.includes("-h");
  const command = findCommand(argv);
  if (command !== undefined) return help ? (io.stdout.write(commandHelp(command) + "\n"), 0) : merchant(command, argv, env, io);
  const first = argv.find((a) => !a.startsWith("-"));
  const group = COMMANDS.filter((c) => c.spec.name.startsWith(`${first} `));
  if (group.length > 0) {
    // "recur plan" alone: the plan commands, with one line each.
    const lines = group.map((c) => `  ${c.spec.name.padEnd(24)}  ${c.summary}`).join("\n");
    if (help) return (io.stdout.write(`usage: recur ${first} <command> [options]      (recur ${first} <command> --help: its options and an example)\n${lines}\n`), 0);
    io.stderr.write(`recur: command: expected one of ${group.map((c) => `"${c.spec.name}"`).join(", ")}, got "${argv.filter((a) => !a.startsWith("-")).slice(0, 2).join(" ")}"\n`);
    return 1;
  }
  if (help) {
    io.stdout.write((first === undefined ? overview() : USAGE) + "\n");
    return 0;
  }
  // The command comes first; options before it are parsed (and refused) by parseConfig as before.
  if (argv[0] === undefined || (argv[0] === first && !KEEPER_COMMANDS.some((c) => c.name === first))) {
    const names = [...KEEPER_COMMANDS.map((c) => c.name), ...new Set(COMMANDS.map((c) => c.spec.name.split(" ")[0]!))];
    io.stderr.write(`recur: command: expected one of ${names.map((n) => `"${n}"`).join(", ")} (recur --help lists them), got ${first === undefined ? "nothing" : JSON.stringify(first)}\n`);
    return 1;
  }
  let config: Config;
  try {
    config = parseConfig(argv, env);
  } catch (error) {
    io.stderr.write(`recur: ${errorMessage(error)}\n`);
    return 1;
  }
  if (config.command === "usage") return usage(config, io);
  const log = createLogger(io.stdout as never, { level: config.logLevel, base: { shard: `${config.shard.index}/${config.shard.count}` } });
  mkdirSync(path.dirname(path.resolve(config.storePath)), { recursive: true });
  const store = new Store(config.storePath);
  // Metrics only where something serves them: the daemon with its listener on.
  const metrics = config.command === "run" && !config.once && config.listen !== null
    ? createMetrics({ store, clock: () => Date.now(), confirmations: config.confirmations, info: { chainId: config.chainId.toString(), shard: `${config.shard.index}/${config.shard.count}` }, ...outbox(config, store) })
    : null;
  const rpc = createRpc(config.rpcUrl, { timeoutMs: config.rpcTimeoutMs, retries: 4, backoffMs: 250, signal: io.signal, ...(metrics === null ? {} : { observe: metrics.rpc }) });
  try {
    if (!(await sameChain(rpc, config, log, io))) return 3;
    // Awaited here, so that `finally` closes the store after the command, not while it runs.
    if (config.command === "status") return await status(store, rpc, config, io);
    return await run(config, store, rpc, log, io, metrics);
  } catch (error) {
    if (error instanceof KeeperError && error.code === "CONFIG") {
      // A value found bad only once used (a keystore password that does not decrypt): one line, exit 1.
      io.stderr.write(`recur: ${errorMessage(error)}\n`);
      return 1;
    }
    log.error("stopped", { error: errorMessage(error), code: error instanceof KeeperError ? error.code : "UNKNOWN" });
    return 2;
  } finally {
    store.close();
  }
}

/** A merchant's command: its arguments checked once, the chain id checked, then the command itself.
 * Exit 0 done; 1 bad input, or refused before anything was sent; 2 a failure on the way (an RPC fault,
 * a transaction that failed); 3 the node is on another chain. */
async function merchant(command: Command, argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  let config: CommandConfig;
  let values: OptionValues;
  try {
    ({ config, values } = parseCommandConfig(command.spec, argv, env));
  } catch (error) {
    io.stderr.write(`recur: ${errorMessage(error)}\n`);
    return 1;
  }
  // Logs go to stderr: stdout is the report alone.
  const log = createLogger(io.stderr as never, { level: config.logLevel === "info" ? "warn" : config.logLevel, base: { command: config.command } });
  const rpc = createRpc(config.rpcUrl, { timeoutMs: config.rpcTimeoutMs, retries: 4, backoffMs: 250, signal: io.signal });
  const ctx = createContext(config, values, io, rpc, log);
  try {
    if (command.spec.rpc !== "none" && !(await sameChain(rpc, config, log, io))) return 3;
    return await command.run(ctx);
  } catch (error) {
    if (error instanceof KeeperError && error.code === "CONFIG") {
      ctx.err(errorMessage(error));
      return 1;
    }
    log.error("stopped", { error: errorMessage(error), code: error instanceof KeeperError ? error.code : "UNKNOWN" });
    ctx.err(`stopped: ${errorMessage(error)}`);
    return 2;
  } finally {
    ctx.close();
  }
}

/** Checks the node's chain id against RECUR_CHAIN_ID; on a mismatch, logs it and writes the one line. */
async function sameChain(rpc: Rpc, config: Config | CommandConfig, log: Logger, io: Io): Promise<boolean> {
  const chainId = await rpc.chainId();
  if (chainId === config.chainId) return true;
  log.error("chain_mismatch", { expected: config.chainId, node: chainId });
  io.stderr.write(`recur: RECUR_CHAIN_ID: expected the node's chain ${chainId}, got ${config.chainId}\n`);
  return false;
}

/** `usage`: the file is parsed before any RPC call; the report goes to stdout, each row that cannot be
 * billed and each failure to stderr as one line, and the log lines (tx_sent …) to stderr too, so that
 * stdout is the report alone. */
async function usage(config: UsageConfig, io: Io): Promise<number> {
  const err = (line: string) => void io.stderr.write(`recur: ${line}\n`);
  let text: string;
  try {
    text = readFileSync(config.filePath, "utf8");
  } catch (error) {
    err(`--file: expected a readable usage file, got ${JSON.stringify(config.file)} (${errorMessage(error)})`);
    return 1;
  }
  const parsed = parseUsageFile(config.file, text);
  if (parsed.problems.length > 0) {
    for (const problem of parsed.problems) err(problem);
    return 1;
  }
  const log = createLogger(io.stderr as never, { level: config.logLevel, base: { command: "usage" } });
  const rpc = createRpc(config.rpcUrl, { timeoutMs: config.rpcTimeoutMs, retries: 4, backoffMs: 250, signal: io.signal });
  let store: Store | null = null;
  try {
    if (!(await sameChain(rpc, config, log, io))) return 3;
    const wallet = config.signer === null ? null : await loadWallet(config.signer);
    log.debug("start", { ...describeConfig(config), reporter: wallet?.address.toLowerCase() ?? null, dryRun: config.dryRun });
    let sender: Sender | null = null;
    if (wallet !== null && !config.dryRun) {
      mkdirSync(path.dirname(path.resolve(config.journalPath)), { recursive: true });
      store = new Store(config.journalPath);
      checkJournal(store, wallet.address, "RECUR_USAGE_JOURNAL");
      sender = createSender(config, { rpc, store, wallet, log }, io);
    }
    return await billUsage(
      {
        rpc, log, sender,
        reporter: wallet?.address.toLowerCase() ?? null,
        signerVariable: config.signer?.kind === "keystore" ? "RECUR_KEYSTORE" : "RECUR_PRIVATE_KEY",
        batchSize: config.batchSize,
        json: config.json,
        out: (line) => void io.stdout.write(`${line}\n`),
        err,
        confirm: (lines) => askToSend(io, { yes: config.yes, machine: config.json }, lines),
      },
      { plan: config.plan, file: config.file, rows: parsed.rows, dryRun: config.dryRun },
    );
  } catch (error) {
    if (error instanceof KeeperError && error.code === "CONFIG") {
      err(errorMessage(error));
      return 1;
    }
    log.error("stopped", { error: errorMessage(error), code: error instanceof KeeperError ? error.code : "UNKNOWN" });
    err(`stopped: ${errorMessage(error)}`);
    return 2;
  } finally {
    store?.close();
  }
}

/** The journalled sender, with the configured fee cap, confirmations and stuck-transaction timeout;
 * its waits end when the process is asked to stop. */
function createSender(
  config: KeeperConfig | UsageConfig,
  deps: { rpc: Rpc; store: Store; wallet: Wallet; log: Logger },
  io: Io,
): Sender {
  return new Sender({
    ...deps,
    chainId: config.chainId,
    maxFeePerGas: config.maxFeePerGas,
    confirmations: config.confirmations,
    txTimeoutMs: config.txTimeoutMs,
    pollMs: 250,
    now: () => Date.now(),
    sleep: (ms) => sleepUnlessAborted(ms, io.signal),
  });
}

/** The webhook outbox's figures for metrics and readiness, when webhooks are configured (otherwise its
 * gauges and its readiness check are left out): the active endpoints' pending deliveries. */
function outbox(config: KeeperConfig, store: Store): { outboxStats?: OutboxStats } {
  const hooks = config.webhooks;
  if (hooks === null || config.dryRun) return {};
  return { outboxStats: () => outboxStats(store, hooks, Math.floor(Date.now() / 1000)) };
}

/** Readiness probes get an RPC client of their own: one try, a short timeout. */
const PROBE_TIMEOUT_MS = 2_000;

/** The daemon's listener (src/ops/http.ts), and the probe RPC client that readiness and the balance
 * gauge use. */
async function startOps(config: KeeperConfig, deps: { store: Store; log: Logger; io: Io; metrics: KeeperMetrics; keeper: string | null }): Promise<Ops> {
  const { metrics } = deps;
  const probe = createRpc(config.rpcUrl, { timeoutMs: Math.min(config.rpcTimeoutMs, PROBE_TIMEOUT_MS), retries: 0, backoffMs: 0, signal: deps.io.signal, observe: metrics.rpc });
  metrics.identify(deps.keeper);
  const ready = readinessProbe({ rpc: probe, store: deps.store, clock: () => Date.now(), keeper: deps.keeper, config: config.ready, ...outbox(config, deps.store) });
  const server = await startOpsServer({ host: config.listen!.host, port: config.listen!.port, metrics, ready, log: deps.log });
  return { server, probe, metrics };
}

interface Ops {
  server: OpsServer;
  probe: Rpc;
  metrics: KeeperMetrics;
}

/** After a daemon pass: its figures, and the keeper's balance read once (a failed read keeps the last). */
async function afterPass(ops: Ops, summary: PassSummary | null, keeper: string | null, log: Logger): Promise<void> {
  ops.metrics.passEnded(summary);
  if (keeper === null) return;
  try {
    ops.metrics.setBalance(await ops.probe.balance(keeper, "latest"));
  } catch (error) {
    if (!(error instanceof KeeperError && error.code === "ABORTED")) log.warn("balance_read_failed", { error: errorMessage(error) });
  }
}

async function run(config: KeeperConfig, store: Store, rpc: Rpc, log: Logger, io: Io, metrics: KeeperMetrics | null): Promise<number> {
  const wallet = config.signer === null ? null : await loadWallet(config.signer);
  const keeper = wallet?.address.toLowerCase() ?? null;
  // Listening first: a port in use stops the keeper with one line, before it has logged anything.
  const ops = metrics === null ? null : await startOps(config, { store, log, io, metrics, keeper });
  log.info("start", { ...describeConfig(config), keeper, mode: config.once ? "once" : "daemon", dryRun: config.dryRun });
  if (ops !== null) log.info("http_listening", { host: ops.server.host, port: ops.server.port, url: `${ops.server.url}/metrics` });
  try {
    return await passes(config, { store, rpc, log, io, wallet, ops });
  } finally {
    await ops?.server.close();
  }
}

/** The pass loop: one pass with --once, else a pass every poll interval until a signal. */
async function passes(
  config: KeeperConfig,
  { store, rpc, log, io, wallet, ops }: { store: Store; rpc: Rpc; log: Logger; io: Io; wallet: Wallet | null; ops: Ops | null },
): Promise<number> {
  const sender = wallet === null || config.dryRun ? null : createSender(config, { rpc, store, wallet, log }, io);
  const deps = {
    rpc, store, log, sender,
    indexer: { rpc, store, log, factory: config.factory, factoryBlock: config.factoryBlock, confirmations: config.confirmations, logRange: config.logRange, chainId: config.chainId },
    batchSize: config.batchSize,
    maxPerPlan: config.maxPerPlan,
    shard: config.shard,
    lists: config.lists,
    backoff: config.backoff,
    dryRun: config.dryRun,
    clock: () => Date.now(),
    ...(ops === null ? {} : { observer: ops.metrics.pass }),
  };
  // Webhooks (when configured; a dry run sends none): their own loop beside the passes in a daemon, one
  // round after the pass with --once. Each side's failures are logged and never stop the other.
  const hooks = config.webhooks === null || config.dryRun
    ? null
    : {
        store, rpc, log, config: config.webhooks, chainId: config.chainId, clock: () => Date.now(), signal: io.signal,
        ...(ops === null ? {} : { onResult: (result: string) => ops.metrics.webhookDelivery(result) }),
      };
  if (hooks !== null) initCursors(store, hooks.config.endpoints);
  const worker = hooks === null || config.once ? null : runWebhookWorker(hooks);
  try {
    for (;;) {
      let failed = false;
      let summary: PassSummary | null = null;
      try {
        summary = await runPass(deps);
        failed = summary.errors.length > 0;
      } catch (error) {
        if (io.signal.aborted) break;
        failed = true;
        log.error("pass_failed", { error: errorMessage(error), code: error instanceof KeeperError ? error.code : "UNKNOWN" });
      }
      if (config.once) {
        if (hooks !== null) failed = !(await webhooksOnce(hooks, log)) || failed;
        return failed ? 2 : 0;
      }
      if (ops !== null) await afterPass(ops, summary, wallet?.address.toLowerCase() ?? null, log);
      if (io.signal.aborted) break;
      await sleepUnlessAborted(config.pollIntervalMs, io.signal);
      if (io.signal.aborted) break;
    }
  } finally {
    // The store stays open until the worker has stopped (it stops on the same signal).
    await worker;
  }
  log.info("stop", { reason: "signal" });
  return 0;
}

/** `run --once` with webhooks: one round (derive, fan out, send what is due); false when it failed. */
async function webhooksOnce(deps: Parameters<typeof webhookRound>[0], log: Logger): Promise<boolean> {
  try {
    const r = await webhookRound(deps);
    log.info("webhooks", { derived: r.derived, queued: r.queued, attempted: r.attempted, delivered: r.delivered, failed: r.failed, dead: r.dead, gone: r.gone });
    return true;
  } catch (error) {
    log.error("webhooks_failed", { error: errorMessage(error) });
    return false;
  }
}

function status(store: Store, rpc: Rpc, config: KeeperConfig, io: Io): Promise<number> {
  return rpc.block("latest").then((head) => {
    const now = Number(head.timestamp);
    const counts = store.counts(now, 86_400);
    const lastPass = store.getMeta("lastPass");
    const report = {
      chainId: config.chainId.toString(),
      head: head.number.toString(),
      indexedTo: store.lastCheckpoint()?.block.toString() ?? null,
      plans: counts.plans,
      subscriptions: counts.subscriptions,
      dueNow: counts.dueNow,
      dueNext24h: counts.dueSoon,
      lastReasons: store.reasons(),
      // Plans held back (quarantined: their calls kept failing; backoff: every charge failed alike) and
      // plans whose calls failed lately; times in chain time.
      heldPlans: [...store.planHealth().values()].map((h) => ({
        plan: h.plan, kind: h.kind, reason: h.reason, failures: h.failures,
        since: new Date(h.since * 1000).toISOString(), until: h.until === 0 ? null : new Date(h.until * 1000).toISOString(), held: h.until > now,
      })),
      retries: store.retryCounts(),
      lastPass: lastPass === undefined ? null : (JSON.parse(lastPass) as unknown),
    };
    if (config.json) {
      io.stdout.write(JSON.stringify(report) + "\n");
      return 0;
    }
    const subs = Object.entries(counts.subscriptions).map(([k, v]) => `${v} ${k}`).join(", ") || "none";
    const reasons = Object.entries(report.lastReasons).map(([k, v]) => `${v} ${k}`).join(", ") || "none";
    const last = report.lastPass as { at?: string; charged?: number; due?: number; errors?: string[] } | null;
    io.stdout.write(
      [
        `chain ${report.chainId}, head ${report.head}, indexed to ${report.indexedTo ?? "(not yet)"}`,
        `plans: ${report.plans}`,
        `subscriptions: ${subs}`,
        `due now: ${report.dueNow}; due in the next 24 h: ${report.dueNext24h}`,
        `why charges did not happen (last reason per subscription): ${reasons}`,
        `retries: ${report.retries.waiting} waiting for their next try, ${report.retries.exhausted} with the schedule used up`,
        ...(report.heldPlans.length === 0
          ? ["plans held back: none"]
          : report.heldPlans.map((h) => `plan ${h.plan}: ${h.held ? (h.kind === "quarantine" ? `quarantined until ${h.until}` : `backed off until ${h.until}`) : `calls failed in ${h.failures} pass(es) in a row`} (${h.reason})`)),
        last === null ? "last pass: never" : `last pass: ${last.at}, ${last.due} due, ${last.charged} charged${(last.errors?.length ?? 0) > 0 ? `, errors: ${last.errors?.join("; ")}` : ""}`,
      ].join("\n") + "\n",
    );
    return 0;
  });
}


// Configuration: flags over environment (`.env` loaded through dotenv), parsed once at start into a
// frozen object. Every bad or missing value stops the process with one line naming the variable and
// what it expected. Secrets (the key, the keystore password) are kept out of `describeConfig`.
// `run` and `status` need the factory; `usage` (a merchant's usage file for one metered plan) needs the
// plan and the file instead, and keeps its own transaction journal. The daemon's HTTP listener
// (metrics, health, readiness: src/ops/) and its readiness thresholds are read for `run` only.
import { existsSync, readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";

import dotenv from "dotenv";
import { getAddress, isAddress } from "ethers";

import { DEFAULT_BACKOFF } from "../charging/backoff.ts";
import type { BackoffConfig } from "../charging/backoff.ts";
import { configError } from "../errors.ts";
import { redactUrl } from "../log.ts";
import { describeLists } from "../charging/policy.ts";
import { loadWebhooksConfig } from "../webhooks/config.ts";
import type { WebhooksConfig } from "../webhooks/config.ts";
import type { PlanLists } from "../charging/policy.ts";
import type { ReadyConfig } from "../ops/ready.ts";

export type Signer = { kind: "privateKey"; privateKey: string } | { kind: "keystore"; json: string; password: string };

/** What every command shares: the node, the signer, fees, confirmations, logging. */
interface BaseConfig {
  readonly once: boolean;
  readonly dryRun: boolean;
  readonly json: boolean;
  readonly rpcUrl: string;
  readonly chainId: bigint;
  readonly signer: Signer | null;
  readonly confirmations: number;
  readonly batchSize: number;
  readonly maxFeePerGas: bigint;
  readonly pollIntervalMs: number;
  readonly storePath: string;
  readonly logRange: bigint;
  readonly shard: { readonly index: number; readonly count: number };
  readonly rpcTimeoutMs: number;
  readonly txTimeoutMs: number;
  readonly logLevel: "debug" | "info" | "warn" | "error";
}

/** `run` and `status`: the keeper over every fixed plan of a factory. */
export interface KeeperConfig extends BaseConfig {
  readonly command: "run" | "status";
  readonly factory: string;
  readonly factoryBlock: bigint;
  /** The operator's allow and deny lists of plans, owners and tokens. */
  readonly lists: PlanLists;
  /** Retry schedule and quarantine. */
  readonly backoff: BackoffConfig;
  /** Most subscribers of one plan charged in one pass. */
  readonly maxPerPlan: number;
  /** The daemon's HTTP listener (`/metrics`, `/healthz`, `/readyz`); null when turned off. Port 0 picks
   * a free port (logged). `recur run --once` never listens. */
  readonly listen: { readonly host: string; readonly port: number } | null;
  /** What `/readyz` requires. */
  readonly ready: ReadyConfig;
  /** The webhooks config file (RECUR_WEBHOOKS), null when webhooks are off. */
  readonly webhooks: WebhooksConfig | null;
}

/** The listener's port when none is configured. */
export const DEFAULT_METRICS_PORT = 9477;

/** `usage`: one usage file billed on one metered plan. */
export interface UsageConfig extends BaseConfig {
  readonly command: "usage";
  /** The metered plan, lowercase. */
  readonly plan: string;
  /** The usage file (.csv or .json), as given (it names the file in every message). */
  readonly file: string;
  /** The same file, resolved against the working directory. */
  readonly filePath: string;
  /** The transaction journal of `usage` (a Store file; only its txs table is used). */
  readonly journalPath: string;
  /** Send without asking. */
  readonly yes: boolean;
}

export type Config = KeeperConfig | UsageConfig;

/** Flag name → environment variable. A flag wins over the variable. */
const VARIABLES = {
  "rpc-url": "RECUR_RPC_URL",
  "chain-id": "RECUR_CHAIN_ID",
  factory: "RECUR_FACTORY",
  "factory-block": "RECUR_FACTORY_BLOCK",
  "private-key": "RECUR_PRIVATE_KEY",
  keystore: "RECUR_KEYSTORE",
  "keystore-password": "RECUR_KEYSTORE_PASSWORD",
  confirmations: "RECUR_CONFIRMATIONS",
  "batch-size": "RECUR_BATCH_SIZE",
  "max-fee-gwei": "RECUR_MAX_FEE_GWEI",
  "poll-interval": "RECUR_POLL_INTERVAL",
  store: "RECUR_STORE",
  "log-range": "RECUR_LOG_RANGE",
  shard: "RECUR_SHARD",
  "rpc-timeout-ms": "RECUR_RPC_TIMEOUT_MS",
  "tx-timeout": "RECUR_TX_TIMEOUT",
  "log-level": "RECUR_LOG_LEVEL",
  journal: "RECUR_USAGE_JOURNAL",
  "allow-plans": "RECUR_ALLOW_PLANS",
  "deny-plans": "RECUR_DENY_PLANS",
  "allow-owners": "RECUR_ALLOW_OWNERS",
  "deny-owners": "RECUR_DENY_OWNERS",
  "allow-tokens": "RECUR_ALLOW_TOKENS",
  "deny-tokens": "RECUR_DENY_TOKENS",
  "retry-schedule": "RECUR_RETRY_SCHEDULE",
  "quarantine-after": "RECUR_QUARANTINE_AFTER",
  "quarantine-base": "RECUR_QUARANTINE_BASE",
  "quarantine-max": "RECUR_QUARANTINE_MAX",
  "max-per-plan": "RECUR_MAX_PER_PLAN",
  "checkout-url": "RECUR_CHECKOUT_URL",
  tokens: "RECUR_TOKENS",
  "metrics-host": "RECUR_METRICS_HOST",
  "metrics-port": "RECUR_METRICS_PORT",
  "ready-max-head-age": "RECUR_READY_MAX_HEAD_AGE",
  "min-balance": "RECUR_MIN_BALANCE",
  "ready-max-outbox-age": "RECUR_READY_MAX_OUTBOX_AGE",
  webhooks: "RECUR_WEBHOOKS",
  "explorer-tx-url": "RECUR_EXPLORER_TX_URL",
  "app-rpc-url": "RECUR_APP_RPC_URL",
} as const;
type Name = keyof typeof VARIABLES;

export const USAGE = `usage: recur run [--once] [--dry-run] [options]
       recur status [--json] [options]
       recur usage --plan ADDRESS --file FILE.csv|FILE.json [--dry-run] [--yes] [--json] [options]
The usage command bills a metered plan's ended cycles from a file (columns subscriber,usage,usageRef),
as the plan's owner or a reporter: every row is checked on-chain first, and nothing is sent unless all
of them can be billed now; it then shows what it will bill and asks (--yes: send without asking; with
--json it never asks). Exit 0 all billed; 1 bad input, rows that cannot be billed, or not confirmed (nothing sent);
2 a failure while sending, or rows that failed on-chain. It needs no factory. See docs/USAGE-BILLING.md.
  --plan ADDRESS           (usage) the metered plan to bill
  --file FILE              (usage) the usage file: .csv with a header line, or .json (an array of rows)
  --journal FILE           (usage) its transaction journal, default ./recur-usage.sqlite (RECUR_USAGE_JOURNAL)
options (each also read from the environment variable in brackets, and from .env):
  --rpc-url URL            JSON-RPC endpoint (RECUR_RPC_URL)
  --chain-id N             expected chain id, checked against the node (RECUR_CHAIN_ID)
  --factory ADDRESS        PlanFactory address (RECUR_FACTORY); run and status only
  --factory-block N        block the factory was deployed in (RECUR_FACTORY_BLOCK); run and status only
  --private-key HEX        signer key; prefer the environment (RECUR_PRIVATE_KEY)
  --keystore FILE          encrypted JSON keystore instead of a key (RECUR_KEYSTORE, RECUR_KEYSTORE_PASSWORD)
  --confirmations N        blocks before an event or a charge counts as final, default 2 (RECUR_CONFIRMATIONS)
  --batch-size N           subscribers per chargeMany (usage: rows per chargeUsageMany), 1-500, default 200 (RECUR_BATCH_SIZE)
  --max-fee-gwei N         cap on maxFeePerGas, default 100 (RECUR_MAX_FEE_GWEI)
  --poll-interval S        seconds between daemon passes, default 60 (RECUR_POLL_INTERVAL)
  --store FILE             SQLite store, default ./recur.sqlite (RECUR_STORE)
  --log-range N            widest block range of one indexing page (it adapts below), default 2000 (RECUR_LOG_RANGE)
  --shard I/N              charge only subscribers in shard I of N, default 0/1 (RECUR_SHARD)
  --rpc-timeout-ms N       per-call RPC timeout, default 10000 (RECUR_RPC_TIMEOUT_MS)
  --tx-timeout S           seconds before a pending transaction is replaced, default 180 (RECUR_TX_TIMEOUT)
  --log-level LEVEL        debug|info|warn|error, default info (RECUR_LOG_LEVEL)
which plans run charges (comma-separated addresses; a deny list wins; each allow list set must match):
  --allow-plans A,B        charge only these plans (RECUR_ALLOW_PLANS); --deny-plans never these (RECUR_DENY_PLANS)
  --allow-owners A,B       only plans of these owners (RECUR_ALLOW_OWNERS); --deny-owners (RECUR_DENY_OWNERS)
  --allow-tokens A,B       only plans in these tokens (RECUR_ALLOW_TOKENS); --deny-tokens (RECUR_DENY_TOKENS)
  --max-per-plan N         subscribers of one plan charged per pass, default 5000 (RECUR_MAX_PER_PLAN)
retries and quarantine (durations like 90s, 10m, 6h, 2d):
  --retry-schedule LIST    delays after a charge the chain refused, default 1h,6h,1d,2d, scaled to fit the
                           grace window; also a failing plan's back-off (RECUR_RETRY_SCHEDULE)
  --quarantine-after N     failing passes in a row before a plan is quarantined, default 3 (RECUR_QUARANTINE_AFTER)
  --quarantine-base D      first quarantine, doubled each further failing pass, default 10m (RECUR_QUARANTINE_BASE)
  --quarantine-max D       longest quarantine, default 6h (RECUR_QUARANTINE_MAX)
the daemon's HTTP listener (recur run without --once; see docs/OPERATIONS.md):
  --metrics-host HOST      address to listen on, default 127.0.0.1 (RECUR_METRICS_HOST)
  --metrics-port N|off     port of /metrics, /healthz, /readyz, default ${DEFAULT_METRICS_PORT}; 0 picks a free one,
                           off runs no listener (RECUR_METRICS_PORT)
  --ready-max-head-age D   /readyz fails when the head is older than this, default 5m; 0 turns it off
                           (RECUR_READY_MAX_HEAD_AGE)
  --min-balance ETH        /readyz fails unless the keeper's balance is above this, in ether, default 0
                           (RECUR_MIN_BALANCE)
  --ready-max-outbox-age D /readyz fails when an undelivered webhook is older than this, default 1h
                           (RECUR_READY_MAX_OUTBOX_AGE)
webhooks (docs/WEBHOOKS.md):
  --webhooks FILE          endpoints, secrets and leads (JSON); the daemon then runs the delivery worker
                           beside the charging passes, and run --once derives and delivers once (RECUR_WEBHOOKS)
  --env-file FILE          read variables from FILE instead of ./.env`;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

/** "90s", "10m", "6h", "2d" (or plain seconds) → seconds. */
export function parseDuration(raw: string): number | null {
  const match = /^(\d{1,9})(s|m|h|d)?$/.exec(raw.trim());
  if (match === null) return null;
  return Number(match[1]) * UNIT_SECONDS[match[2] ?? "s"]!;
}

function duration(name: Name, raw: string | undefined, min: number, max: number, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const seconds = parseDuration(raw);
  if (seconds === null || seconds < min || seconds > max) throw configError(VARIABLES[name], `a duration from ${min}s to ${max / 86_400}d, e.g. "10m", "6h", "2d"`, raw);
  return seconds;
}

/** A comma-separated list of addresses, lowercase; each entry checked. */
function addressList(name: Name, raw: string | undefined): ReadonlySet<string> {
  const out = new Set<string>();
  if (raw === undefined || raw.trim() === "") return out;
  for (const entry of raw.split(",").map((e) => e.trim())) {
    if (!/^0x[0-9a-fA-F]{40}$/.test(entry) || !isAddress(entry)) throw configError(VARIABLES[name], "comma-separated 0x-prefixed 20-byte addresses", entry);
    out.add(getAddress(entry).toLowerCase());
  }
  return out;
}

/** The listener: RECUR_METRICS_HOST (an IP address or a host name) and RECUR_METRICS_PORT (0-65535, or
 * "off"). */
function listenOf(value: Value): { host: string; port: number } | null {
  const portRaw = value("metrics-port");
  if (portRaw?.trim().toLowerCase() === "off") return null;
  if (portRaw !== undefined && portRaw !== "" && (!/^\d{1,5}$/.test(portRaw) || Number(portRaw) > 65_535)) {
    throw configError(VARIABLES["metrics-port"], 'a port from 0 to 65535 (0: any free port) or "off"', portRaw);
  }
  const port = portRaw === undefined || portRaw === "" ? DEFAULT_METRICS_PORT : Number(portRaw);
  const host = value("metrics-host") ?? "127.0.0.1";
  const hostName = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
  if (isIP(host) === 0 && !hostName.test(host)) throw configError(VARIABLES["metrics-host"], 'an IP address or a host name, e.g. "127.0.0.1"', host);
  return Object.freeze({ host, port });
}

/** An amount of ether ("0.05", "2") → wei, exactly (at most 18 decimals). */
export function parseEther(raw: string): bigint | null {
  const match = /^(\d{1,12})(?:\.(\d{1,18}))?$/.exec(raw.trim());
  if (match === null) return null;
  return BigInt(match[1]!) * 10n ** 18n + BigInt((match[2] ?? "").padEnd(18, "0"));
}

function readyOf(value: Value): ReadyConfig {
  const minBalanceRaw = value("min-balance");
  const minBalanceWei = minBalanceRaw === undefined || minBalanceRaw === "" ? 0n : parseEther(minBalanceRaw);
  if (minBalanceWei === null) throw configError(VARIABLES["min-balance"], 'an amount of ether, e.g. "0.05" (at most 18 decimals)', minBalanceRaw);
  return Object.freeze({
    maxHeadAgeSeconds: duration("ready-max-head-age", value("ready-max-head-age"), 0, 30 * 86_400, 300),
    minBalanceWei,
    maxOutboxAgeSeconds: duration("ready-max-outbox-age", value("ready-max-outbox-age"), 1, 30 * 86_400, 3_600),
  });
}

function retrySchedule(raw: string | undefined): readonly number[] {
  if (raw === undefined || raw.trim() === "") return DEFAULT_BACKOFF.retrySchedule;
  const expected = 'increasing durations from 1m to 30d, 1 to 10 of them, e.g. "1h,6h,1d,2d"';
  const entries = raw.split(",").map((e) => e.trim());
  if (entries.length > 10) throw configError(VARIABLES["retry-schedule"], expected, raw);
  const delays: number[] = [];
  for (const entry of entries) {
    const seconds = parseDuration(entry);
    if (seconds === null || seconds < 60 || seconds > 30 * 86_400 || (delays.length > 0 && seconds <= delays[delays.length - 1]!)) {
      throw configError(VARIABLES["retry-schedule"], expected, entry);
    }
    delays.push(seconds);
  }
  return Object.freeze(delays);
}

function integer(name: Name, raw: string | undefined, min: number, max: number, fallback?: number): number {
  if (raw === undefined || raw === "") {
    if (fallback !== undefined) return fallback;
    throw configError(VARIABLES[name], `an integer in [${min}, ${max}]`, raw);
  }
  if (!/^\d+$/.test(raw)) throw configError(VARIABLES[name], `an integer in [${min}, ${max}]`, raw);
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw configError(VARIABLES[name], `an integer in [${min}, ${max}]`, raw);
  }
  return value;
}

/** Every option the shared parser knows: the variables' flags and the booleans of every command. */
function readArgs(argv: readonly string[], extra: Record<string, { type: "string" | "boolean" }> = {}) {
  const options = Object.fromEntries(
    Object.keys(VARIABLES).map((name) => [name, { type: "string" as const }]),
  ) as Record<Name, { type: "string" }>;
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        ...options,
        once: { type: "boolean" },
        "dry-run": { type: "boolean" },
        json: { type: "boolean" },
        "env-file": { type: "string" },
        plan: { type: "string" },
        file: { type: "string" },
        yes: { type: "boolean" },
        ...extra,
      },
    });
  } catch (error) {
    // parseArgs names the option, never its value; its advice after the first sentence is dropped.
    throw configError("arguments", "options listed by --help", (error as Error).message.split(". ")[0]);
  }
}
type Parsed = ReturnType<typeof readArgs>;
type Value = (name: Name) => string | undefined;

/** Flag, then the environment, then .env (which never overrides the real environment). */
function sourcesOf(parsed: Parsed, env: NodeJS.ProcessEnv, cwd: string): Value {
  const flagged = parsed.values["env-file"];
  const envFile = typeof flagged === "string" ? flagged : `${cwd}/.env`;
  if (typeof flagged === "string" && !existsSync(envFile)) throw configError("--env-file", "an existing file", envFile);
  const fileVars = existsSync(envFile) ? dotenv.parse(readFileSync(envFile)) : {};
  return (name: Name): string | undefined => {
    const flag = parsed.values[name];
    if (typeof flag === "string") return flag;
    return env[VARIABLES[name]] ?? fileVars[VARIABLES[name]];
  };
}

function rpcOf(value: Value): { rpcUrl: string; chainId: bigint } {
  const rpcUrl = value("rpc-url");
  if (rpcUrl === undefined || !/^https?:\/\/[^\s]+$/.test(rpcUrl) || !URL.canParse(rpcUrl)) {
    throw configError(VARIABLES["rpc-url"], "an http(s) URL", rpcUrl === undefined ? undefined : redactUrl(rpcUrl));
  }
  const chainIdRaw = value("chain-id");
  if (chainIdRaw === undefined || !/^[1-9]\d*$/.test(chainIdRaw)) throw configError(VARIABLES["chain-id"], "a positive integer", chainIdRaw);
  return { rpcUrl, chainId: BigInt(chainIdRaw) };
}

function factoryOf(value: Value): { factory: string; factoryBlock: bigint } {
  const factoryRaw = value("factory");
  if (factoryRaw === undefined || !isAddress(factoryRaw)) throw configError(VARIABLES.factory, "a 0x-prefixed 20-byte address", factoryRaw);
  const factoryBlockRaw = value("factory-block");
  if (factoryBlockRaw === undefined || !/^\d+$/.test(factoryBlockRaw)) {
    throw configError(VARIABLES["factory-block"], "the factory's deployment block number", factoryBlockRaw);
  }
  return { factory: getAddress(factoryRaw).toLowerCase(), factoryBlock: BigInt(factoryBlockRaw) };
}

/** The signer from RECUR_PRIVATE_KEY or RECUR_KEYSTORE; `purpose` (what it is needed for) makes it
 * required, null leaves it optional. */
function signerOf(value: Value, purpose: string | null): Signer | null {
  const privateKey = value("private-key");
  const keystore = value("keystore");
  if (privateKey !== undefined && keystore !== undefined) {
    throw configError(VARIABLES["private-key"], `either it or ${VARIABLES.keystore}, not both`, "<both set>");
  }
  if (privateKey !== undefined) {
    if (!/^(0x)?[0-9a-fA-F]{64}$/.test(privateKey)) throw configError(VARIABLES["private-key"], "32 bytes of hex", "<redacted>");
    return { kind: "privateKey", privateKey: privateKey.startsWith("0x") ? privateKey : `0x${privateKey}` };
  }
  if (keystore !== undefined) {
    if (!existsSync(keystore)) throw configError(VARIABLES.keystore, "an existing keystore JSON file", keystore);
    const password = value("keystore-password");
    if (password === undefined) throw configError(VARIABLES["keystore-password"], "the keystore's password", undefined);
    return { kind: "keystore", json: readFileSync(keystore, "utf8"), password };
  }
  if (purpose !== null) throw configError(VARIABLES["private-key"], `a signer key (or ${VARIABLES.keystore}) to ${purpose}`, undefined);
  return null;
}

function baseOf(value: Value, parsed: Parsed, signer: Signer | null, cwd: string, rpc: { rpcUrl: string; chainId: bigint }): BaseConfig {
  const maxFeeRaw = value("max-fee-gwei") ?? "100";
  if (!/^\d+(\.\d{1,9})?$/.test(maxFeeRaw) || Number(maxFeeRaw) <= 0) throw configError(VARIABLES["max-fee-gwei"], "a positive number of gwei", maxFeeRaw);
  const [whole, fraction = ""] = maxFeeRaw.split(".");
  const maxFeePerGas = BigInt(whole ?? "0") * 10n ** 9n + BigInt(fraction.padEnd(9, "0"));

  const shardRaw = value("shard") ?? "0/1";
  const shardMatch = /^(\d+)\/([1-9]\d*)$/.exec(shardRaw);
  if (shardMatch === null || Number(shardMatch[1]) >= Number(shardMatch[2])) throw configError(VARIABLES.shard, 'I/N with 0 <= I < N, e.g. "0/2"', shardRaw);

  const logLevel = value("log-level") ?? "info";
  if (logLevel !== "debug" && logLevel !== "info" && logLevel !== "warn" && logLevel !== "error") {
    throw configError(VARIABLES["log-level"], "debug, info, warn or error", logLevel);
  }
  return {
    once: parsed.values.once === true,
    dryRun: parsed.values["dry-run"] === true,
    json: parsed.values.json === true,
    ...rpc,
    signer,
    confirmations: integer("confirmations", value("confirmations"), 0, 1000, 2),
    batchSize: integer("batch-size", value("batch-size"), 1, 500, 200),
    maxFeePerGas,
    pollIntervalMs: integer("poll-interval", value("poll-interval"), 1, 86_400, 60) * 1000,
    storePath: value("store") ?? `${cwd}/recur.sqlite`,
    logRange: BigInt(integer("log-range", value("log-range"), 1, 1_000_000, 2000)),
    shard: Object.freeze({ index: Number(shardMatch[1]), count: Number(shardMatch[2]) }),
    rpcTimeoutMs: integer("rpc-timeout-ms", value("rpc-timeout-ms"), 100, 600_000, 10_000),
    txTimeoutMs: integer("tx-timeout", value("tx-timeout"), 1, 86_400, 180) * 1000,
    logLevel,
  };
}

/** RECUR_WEBHOOKS: the file, read and checked now; null when not set. */
function webhooksOf(value: Value, cwd: string): WebhooksConfig | null {
  const file = value("webhooks");
  if (file === undefined || file === "") return null;
  return loadWebhooksConfig(VARIABLES.webhooks, path.resolve(cwd, file));
}

function requiredWebhooks(value: Value, cwd: string): WebhooksConfig {
  const config = webhooksOf(value, cwd);
  if (config === null) throw configError(VARIABLES.webhooks, "the webhooks config file (JSON; see docs/WEBHOOKS.md)", undefined);
  return config;
}

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): Config {
  const parsed = readArgs(argv);
  const [command, ...rest] = parsed.positionals;
  if (command !== "run" && command !== "status" && command !== "usage") throw configError("command", '"run", "status" or "usage"', command);
  if (rest.length > 0) throw configError("arguments", "no more positional arguments", rest.join(" "));
  if (command !== "usage") {
    for (const flag of ["plan", "file", "journal"] as const) {
      if (parsed.values[flag] !== undefined) throw configError("arguments", `--${flag} only with the usage command`, `--${flag}`);
    }
    if (parsed.values.yes === true) throw configError("arguments", "--yes only with usage and the merchants' commands (the keeper never asks)", "--yes");
  } else if (parsed.values.once === true) {
    throw configError("arguments", "--once only with the run command (usage always runs once)", "--once");
  }
  const value = sourcesOf(parsed, env, cwd);
  const rpc = rpcOf(value);
  // The factory is read only by run and status: usage names its plan instead.
  let usage: { plan: string; file: string; filePath: string; journalPath: string; yes: boolean } | undefined;
  let factory = { factory: "", factoryBlock: 0n };
  if (command === "usage") {
    const plan = parsed.values.plan;
    if (typeof plan !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(plan) || !isAddress(plan)) throw configError("--plan", "the metered plan's 0x-prefixed 20-byte address", plan === undefined ? undefined : String(plan));
    const file = parsed.values.file;
    const filePath = typeof file !== "string" ? "" : path.resolve(cwd, file);
    if (typeof file !== "string" || !existsSync(filePath) || !statSync(filePath).isFile()) throw configError("--file", "an existing .csv or .json usage file", file === undefined ? undefined : String(file));
    if (!/\.(csv|json)$/i.test(file)) throw configError("--file", "a file named *.csv or *.json (the name says the format)", file);
    usage = { plan: getAddress(plan).toLowerCase(), file, filePath, journalPath: value("journal") ?? `${cwd}/recur-usage.sqlite`, yes: parsed.values.yes === true };
  } else {
    factory = factoryOf(value);
  }
  // A dry run signs nothing: it may run without a key; status never signs.
  const purpose = command === "status" || parsed.values["dry-run"] === true ? null : command === "usage" ? "bill usage (the plan owner's or a reporter's)" : "run the keeper";
  const signer = signerOf(value, purpose);
  const base = baseOf(value, parsed, signer, cwd, rpc);
  if (command === "usage") return Object.freeze({ ...base, command, ...usage! });
  const lists: PlanLists = Object.freeze({
    allowPlans: addressList("allow-plans", value("allow-plans")),
    denyPlans: addressList("deny-plans", value("deny-plans")),
    allowOwners: addressList("allow-owners", value("allow-owners")),
    denyOwners: addressList("deny-owners", value("deny-owners")),
    allowTokens: addressList("allow-tokens", value("allow-tokens")),
    denyTokens: addressList("deny-tokens", value("deny-tokens")),
  });
  const quarantineBase = duration("quarantine-base", value("quarantine-base"), 1, 30 * 86_400, DEFAULT_BACKOFF.quarantineBase);
  const quarantineMax = duration("quarantine-max", value("quarantine-max"), 1, 30 * 86_400, DEFAULT_BACKOFF.quarantineMax);
  if (quarantineMax < quarantineBase) throw configError(VARIABLES["quarantine-max"], `at least RECUR_QUARANTINE_BASE (${quarantineBase}s)`, value("quarantine-max"));
  const backoff: BackoffConfig = Object.freeze({
    retrySchedule: retrySchedule(value("retry-schedule")),
    quarantineAfter: integer("quarantine-after", value("quarantine-after"), 1, 1000, DEFAULT_BACKOFF.quarantineAfter),
    quarantineBase,
    quarantineMax,
  });
  const maxPerPlan = integer("max-per-plan", value("max-per-plan"), 1, 1_000_000, 5000);
  return Object.freeze({ ...base, command, ...factory, lists, backoff, maxPerPlan, listen: listenOf(value), ready: readyOf(value), webhooks: webhooksOf(value, cwd) });
}

/** What a merchant's command (`plan …`, `plans`, `subscribers`, `charges`, `revenue`) is given: the
 * shared settings plus its own options' values, each read and checked once. */
export interface CommandConfig extends BaseConfig {
  readonly command: string;
  /** The factory, when the command reads the index (null when it needs none and none is set). */
  readonly factory: string | null;
  readonly factoryBlock: bigint;
  readonly csv: boolean;
  /** Send without asking. */
  readonly yes: boolean;
  /** Base URL of the checkout page (RECUR_CHECKOUT_URL). */
  readonly checkoutUrl: string;
  /** Token symbols the operator configured (RECUR_TOKENS "USDC=0x…,DAI=0x…"), as written → address;
   * `--token usdc` finds "USDC" (matched without regard to case). */
  readonly tokens: ReadonlyMap<string, string>;
  /** The signer's transaction journal (RECUR_USAGE_JOURNAL: the same one `usage` keeps). */
  readonly journalPath: string;
  /** The webhooks config file (RECUR_WEBHOOKS), null when not set. */
  readonly webhooks: WebhooksConfig | null;
  /** The explorer's transaction URL, the hash appended (RECUR_EXPLORER_TX_URL, e.g.
   * "https://etherscan.io/tx/"); null: the customer pages show hashes without links. */
  readonly explorerTxUrl: string | null;
  /** The JSON-RPC URL the customer pages read the chain from (RECUR_APP_RPC_URL): public, so it must hold
   * no secret; it defaults to RECUR_RPC_URL only when that is a loopback URL without credentials. */
  readonly appRpcUrl: string | null;
}

export interface CommandSpec {
  /** "plan create", "subscribers". */
  readonly name: string;
  /** The command's own options (beyond the shared ones). */
  readonly options: Readonly<Record<string, { type: "string" | "boolean"; multiple?: boolean }>>;
  /** Whether the command reads the factory's index (the factory is then required). */
  readonly factory: "required" | "optional";
  /** Why the command needs a signer, if it sends transactions. */
  readonly signer: string | null;
  /** Whether --csv is offered. */
  readonly csv: boolean;
  /** "none": the command never calls the node (no RPC URL or chain id needed: `webhooks list`, `verify`). */
  readonly rpc?: "none";
  /** The command needs RECUR_WEBHOOKS (`webhooks …`). */
  readonly webhooks?: "required";
}

export type OptionValues = Readonly<Record<string, string | boolean | string[] | undefined>>;

/** Reads a merchant command's arguments: the shared settings as `run` reads them, then its own options
 * (returned unchecked: each command checks its own terms and names the bad one). */
export function parseCommandConfig(spec: CommandSpec, argv: readonly string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): { config: CommandConfig; values: OptionValues } {
  const parsed = readArgs(argv, { csv: { type: "boolean" }, yes: { type: "boolean" }, ...spec.options } as Record<string, { type: "string" | "boolean" }>);
  const flags = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const words = spec.name.split(" ");
  const extra = parsed.positionals.slice(words.length);
  if (extra.length > 0) throw configError("arguments", `no positional arguments after "${spec.name}"`, extra.join(" "));
  if (flags.csv === true && !spec.csv) throw configError("arguments", `--json (${spec.name} has no table for --csv)`, "--csv");
  if (flags.csv === true && flags.json === true) throw configError("arguments", "one of --json and --csv", "--json --csv");
  const value = sourcesOf(parsed, env, cwd);
  const rpc = spec.rpc === "none" ? { rpcUrl: "", chainId: 0n } : rpcOf(value);
  const factory = spec.rpc !== "none" && (spec.factory === "required" || value("factory") !== undefined) ? factoryOf(value) : null;
  const signer = signerOf(value, spec.signer);
  const base = baseOf(value, parsed, signer, cwd, rpc);
  const checkoutUrl = value("checkout-url") ?? "http://127.0.0.1:8080/checkout.html";
  if (!/^https?:\/\/[^\s]+$/.test(checkoutUrl) || !URL.canParse(checkoutUrl)) throw configError(VARIABLES["checkout-url"], "an http(s) URL", checkoutUrl);
  const tokens = new Map<string, string>();
  for (const entry of (value("tokens") ?? "").split(",").map((e) => e.trim()).filter((e) => e !== "")) {
    const match = /^([A-Za-z][A-Za-z0-9.]{0,15})=(0x[0-9a-fA-F]{40})$/.exec(entry);
    if (match === null || !isAddress(match[2]!)) throw configError(VARIABLES.tokens, 'SYMBOL=0xADDRESS pairs, comma-separated, e.g. "USDC=0xA0b8…eB48"', entry);
    if ([...tokens.keys()].some((k) => k.toUpperCase() === match[1]!.toUpperCase())) throw configError(VARIABLES.tokens, "each symbol once (symbols are matched without regard to case)", entry);
    tokens.set(match[1]!, getAddress(match[2]!).toLowerCase());
  }
  const explorerTxUrl = value("explorer-tx-url") ?? null;
  if (explorerTxUrl !== null && (!/^https?:\/\/[^\s]+$/.test(explorerTxUrl) || !URL.canParse(explorerTxUrl))) {
    throw configError(VARIABLES["explorer-tx-url"], 'an http(s) URL the transaction hash is appended to, e.g. "https://etherscan.io/tx/"', explorerTxUrl);
  }
  const own = Object.fromEntries(Object.keys(spec.options).map((k) => [k, flags[k]])) as OptionValues;
  return {
    config: Object.freeze({
      ...base,
      command: spec.name,
      factory: factory?.factory ?? null,
      factoryBlock: factory?.factoryBlock ?? 0n,
      csv: flags.csv === true,
      yes: flags.yes === true,
      checkoutUrl,
      tokens,
      journalPath: value("journal") ?? `${cwd}/recur-usage.sqlite`,
      webhooks: spec.webhooks === "required" ? requiredWebhooks(value, cwd) : null,
      explorerTxUrl,
      appRpcUrl: appRpcUrlOf(value("app-rpc-url"), rpc.rpcUrl),
    }),
    values: own,
  };
}

/** The read RPC URL handed to every visitor of the customer pages: RECUR_APP_RPC_URL, or RECUR_RPC_URL
 * when that is on this machine (127.0.0.1, localhost, ::1) without credentials; otherwise null (only
 * `recur serve` needs it, and refuses to start without it). */
function appRpcUrlOf(raw: string | undefined, rpcUrl: string): string | null {
  if (raw !== undefined) {
    if (!/^https?:\/\/[^\s]+$/.test(raw) || !URL.canParse(raw)) throw configError(VARIABLES["app-rpc-url"], "an http(s) URL the customer's browser can read the chain from", redactUrl(raw));
    return raw;
  }
  // No RPC URL at all: a command that never calls the node (`webhooks verify`).
  if (!URL.canParse(rpcUrl)) return null;
  const url = new URL(rpcUrl);
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  return loopback && url.username === "" && url.password === "" ? rpcUrl : null;
}

/** The config as it may be logged: no key, no password, the RPC URL without credentials. */
export function describeConfig(config: Config): Record<string, unknown> {
  const target =
    config.command === "usage"
      ? { plan: config.plan, file: config.file, journal: config.journalPath }
      : {
          factory: config.factory, factoryBlock: config.factoryBlock, lists: describeLists(config.lists), retrySchedule: config.backoff.retrySchedule, quarantineAfter: config.backoff.quarantineAfter, maxPerPlan: config.maxPerPlan,
          listen: config.listen === null ? "off" : `${config.listen.host}:${config.listen.port}`,
          ready: { maxHeadAge: config.ready.maxHeadAgeSeconds, minBalanceWei: config.ready.minBalanceWei, maxOutboxAge: config.ready.maxOutboxAgeSeconds },
          webhooks: config.webhooks === null ? null : { file: config.webhooks.file, endpoints: config.webhooks.endpoints.map((e) => e.name) },
        };
  return {
    rpc: redactUrl(config.rpcUrl),
    chainId: config.chainId,
    ...target,
    signer: config.signer?.kind ?? "none",
    confirmations: config.confirmations,
    batchSize: config.batchSize,
    maxFeeGwei: Number(config.maxFeePerGas) / 1e9,
    shard: `${config.shard.index}/${config.shard.count}`,
    store: config.storePath,
  };
}

// Configuration: flags over environment (`.env` loaded through dotenv), parsed once at start into a
// frozen object. Every bad or missing value stops the process with one line naming the variable and
// what it expected. Secrets (the key, the keystore password) are kept out of `describeConfig`.
// `run` and `status` need the factory; `usage` (a merchant's usage file for one metered plan) needs the
// plan and the file instead, and keeps its own transaction journal.
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import dotenv from "dotenv";
import { getAddress, isAddress } from "ethers";

import { DEFAULT_BACKOFF } from "../charging/backoff.ts";
import type { BackoffConfig } from "../charging/backoff.ts";
import { configError } from "../errors.ts";
import { redactUrl } from "../log.ts";
import { describeLists } from "../charging/policy.ts";
import type { PlanLists } from "../charging/policy.ts";

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
}

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
} as const;
type Name = keyof typeof VARIABLES;

export const USAGE = `usage: recur run [--once] [--dry-run] [options]
       recur status [--json] [options]
       recur usage --plan ADDRESS --file FILE.csv|FILE.json [--dry-run] [--json] [options]
The usage command bills a metered plan's ended cycles from a file (columns subscriber,usage,usageRef),
as the plan's owner or a reporter: every row is checked on-chain first, and nothing is sent unless all
of them can be billed now. Exit 0 all billed; 1 bad input or rows that cannot be billed (nothing sent);
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
  --log-range N            blocks per eth_getLogs request, default 2000 (RECUR_LOG_RANGE)
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

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): Config {
  const options = Object.fromEntries(
    Object.keys(VARIABLES).map((name) => [name, { type: "string" as const }]),
  ) as Record<Name, { type: "string" }>;
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        ...options,
        once: { type: "boolean" },
        "dry-run": { type: "boolean" },
        json: { type: "boolean" },
        "env-file": { type: "string" },
        plan: { type: "string" },
        file: { type: "string" },
      },
    });
  } catch (error) {
    // parseArgs names the option, never its value; its advice after the first sentence is dropped.
    throw configError("arguments", "options listed by --help", (error as Error).message.split(". ")[0]);
  }
  const [command, ...rest] = parsed.positionals;
  if (command !== "run" && command !== "status" && command !== "usage") throw configError("command", '"run", "status" or "usage"', command);
  if (rest.length > 0) throw configError("arguments", "no more positional arguments", rest.join(" "));
  if (command !== "usage") {
    for (const flag of ["plan", "file", "journal"] as const) {
      if (parsed.values[flag] !== undefined) throw configError("arguments", `--${flag} only with the usage command`, `--${flag}`);
    }
  } else if (parsed.values.once === true) {
    throw configError("arguments", "--once only with the run command (usage always runs once)", "--once");
  }

  // .env never overrides the real environment.
  const envFile = parsed.values["env-file"] ?? `${cwd}/.env`;
  if (parsed.values["env-file"] !== undefined && !existsSync(envFile)) throw configError("--env-file", "an existing file", envFile);
  const fileVars = existsSync(envFile) ? dotenv.parse(readFileSync(envFile)) : {};
  const value = (name: Name): string | undefined => {
    const flag = parsed.values[name];
    if (typeof flag === "string") return flag;
    return env[VARIABLES[name]] ?? fileVars[VARIABLES[name]];
  };

  const rpcUrl = value("rpc-url");
  if (rpcUrl === undefined || !/^https?:\/\/[^\s]+$/.test(rpcUrl) || !URL.canParse(rpcUrl)) {
    throw configError(VARIABLES["rpc-url"], "an http(s) URL", rpcUrl === undefined ? undefined : redactUrl(rpcUrl));
  }
  const chainIdRaw = value("chain-id");
  if (chainIdRaw === undefined || !/^[1-9]\d*$/.test(chainIdRaw)) throw configError(VARIABLES["chain-id"], "a positive integer", chainIdRaw);
  // The factory is read only by run and status: usage names its plan instead.
  let factory = "";
  let factoryBlock = 0n;
  let usage: { plan: string; file: string; filePath: string; journalPath: string } | undefined;
  if (command === "usage") {
    const plan = parsed.values.plan;
    if (plan === undefined || !/^0x[0-9a-fA-F]{40}$/.test(plan) || !isAddress(plan)) throw configError("--plan", "the metered plan's 0x-prefixed 20-byte address", plan);
    const file = parsed.values.file;
    const filePath = file === undefined ? "" : path.resolve(cwd, file);
    if (file === undefined || !existsSync(filePath) || !statSync(filePath).isFile()) throw configError("--file", "an existing .csv or .json usage file", file);
    if (!/\.(csv|json)$/i.test(file)) throw configError("--file", "a file named *.csv or *.json (the name says the format)", file);
    usage = { plan: getAddress(plan).toLowerCase(), file, filePath, journalPath: value("journal") ?? `${cwd}/recur-usage.sqlite` };
  } else {
    const factoryRaw = value("factory");
    if (factoryRaw === undefined || !isAddress(factoryRaw)) throw configError(VARIABLES.factory, "a 0x-prefixed 20-byte address", factoryRaw);
    const factoryBlockRaw = value("factory-block");
    if (factoryBlockRaw === undefined || !/^\d+$/.test(factoryBlockRaw)) {
      throw configError(VARIABLES["factory-block"], "the factory's deployment block number", factoryBlockRaw);
    }
    factory = getAddress(factoryRaw).toLowerCase();
    factoryBlock = BigInt(factoryBlockRaw);
  }

  const command_ = command;
  let signer: Signer | null = null;
  const privateKey = value("private-key");
  const keystore = value("keystore");
  if (privateKey !== undefined && keystore !== undefined) {
    throw configError(VARIABLES["private-key"], `either it or ${VARIABLES.keystore}, not both`, "<both set>");
  }
  if (privateKey !== undefined) {
    if (!/^(0x)?[0-9a-fA-F]{64}$/.test(privateKey)) throw configError(VARIABLES["private-key"], "32 bytes of hex", "<redacted>");
    signer = { kind: "privateKey", privateKey: privateKey.startsWith("0x") ? privateKey : `0x${privateKey}` };
  } else if (keystore !== undefined) {
    if (!existsSync(keystore)) throw configError(VARIABLES.keystore, "an existing keystore JSON file", keystore);
    const password = value("keystore-password");
    if (password === undefined) throw configError(VARIABLES["keystore-password"], "the keystore's password", undefined);
    signer = { kind: "keystore", json: readFileSync(keystore, "utf8"), password };
  } else if (command_ !== "status" && parsed.values["dry-run"] !== true) {
    // A dry run signs nothing: it may run without a key.
    const purpose = command_ === "usage" ? "bill usage (the plan owner's or a reporter's)" : "run the keeper";
    throw configError(VARIABLES["private-key"], `a signer key (or ${VARIABLES.keystore}) to ${purpose}`, undefined);
  }

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

  const base: BaseConfig = {
    once: parsed.values.once === true,
    dryRun: parsed.values["dry-run"] === true,
    json: parsed.values.json === true,
    rpcUrl,
    chainId: BigInt(chainIdRaw),
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
  if (command_ === "usage") return Object.freeze({ ...base, command: command_, ...usage! });
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
  return Object.freeze({ ...base, command: command_, factory, factoryBlock, lists, backoff, maxPerPlan });
}

/** The config as it may be logged: no key, no password, the RPC URL without credentials. */
export function describeConfig(config: Config): Record<string, unknown> {
  const target =
    config.command === "usage"
      ? { plan: config.plan, file: config.file, journal: config.journalPath }
      : { factory: config.factory, factoryBlock: config.factoryBlock, lists: describeLists(config.lists), retrySchedule: config.backoff.retrySchedule, quarantineAfter: config.backoff.quarantineAfter, maxPerPlan: config.maxPerPlan };
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

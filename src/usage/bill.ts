// `recur usage`: a merchant bills one cycle's usage on a metered plan from a file. Three steps,
// each refusing before the next one starts:
//  1. parse: every malformed row (file:line or file[index], and the field) and every repeated
//     subscriber is reported, with no RPC call;
//  2. check at one block: the plan is metered, the signer may bill it (owner or reporter), and
//     `usageChargeability` says every row would be billed now; otherwise each row that would not is
//     reported with its reason and a hint, and nothing is sent;
//  3. send: `chargeUsageMany` in batches under one transaction's gas budget, through the keeper's
//     Sender (signed bytes journalled before broadcast, fees capped, stuck transactions replaced,
//     confirmations waited for); the receipts' UsageCharged / UsageChargeFailed events are the result.
// The keeper's passes never come here: a usage amount only ever comes from the merchant's file.
import { encodeBytes32String, getAddress, isAddress, Transaction, ZeroHash } from "ethers";

import { BILLING_FIXED, BILLING_METERED, meteredPlanInterface, reasonName } from "../chain/abi.ts";
import {
  billingModeCall,
  encodeChargeUsageMany,
  isReporterCall,
  perCycleCapCall,
  subscriptionOfCall,
  tokenCall,
  usageChargeabilityCall,
} from "../chain/calls.ts";
import type { StoredSubscription } from "../chain/calls.ts";
import { errorMessage, KeeperError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Block, Receipt, Rpc } from "../chain/rpc.ts";
import { RpcError } from "../chain/rpc.ts";
import { MAX_GAS_PER_TX } from "../chain/sender.ts";
import type { Sender } from "../chain/sender.ts";
import type { Store } from "../index/store.ts";

/** One row of a usage file, checked for form (not yet against the chain). */
export interface UsageRow {
  /** Where it is: `usage.csv:4` (line, 1-based, the header being line 1) or `usage.json[2]` (index, 0-based). */
  at: string;
  /** Lowercase address. */
  subscriber: string;
  /** Token base units. */
  usage: bigint;
  /** The bytes32 sent as `usageRef` (ZeroHash when the row has none). */
  usageRef: string;
}

export interface ParsedUsageFile {
  rows: UsageRow[];
  /** One line per problem, `<where>: <field>: expected …, got …`; empty when the file is good. */
  problems: string[];
}

const MAX_UINT256 = 2n ** 256n - 1n;
const COLUMNS = ["subscriber", "usage", "usageRef"] as const;
type Column = (typeof COLUMNS)[number];
const REQUIRED: readonly Column[] = ["subscriber", "usage"];
/** eth_calls in flight at once while checking rows. */
export const CHECK_CONCURRENCY = 8;

// --- 1. parsing ----------------------------------------------------------------------------------------

/** Parses a usage file; `name` (as the operator gave it) names the file in every problem and picks the
 * format by its extension (.csv or .json). */
export function parseUsageFile(name: string, text: string): ParsedUsageFile {
  const body = text.replace(/^\uFEFF/, "");
  if (/\.json$/i.test(name)) return parseJson(name, body);
  if (/\.csv$/i.test(name)) return parseCsv(name, body);
  return { rows: [], problems: [`${name}: expected a file named *.csv or *.json, got ${JSON.stringify(name)}`] };
}

function parseCsv(name: string, text: string): ParsedUsageFile {
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  let headerIndex = lines.findIndex((l) => l.trim() !== "");
  if (headerIndex < 0) return { rows: [], problems: [`${name}: expected a header line "subscriber,usage,usageRef" and rows, got an empty file`] };
  const headerFields = splitCsvLine(lines[headerIndex]!);
  const columns: Column[] = [];
  const headerAt = `${name}:${headerIndex + 1}`;
  const expectedHeader = `the header "subscriber,usage,usageRef" (usageRef optional)`;
  if (headerFields === null) return { rows: [], problems: [`${headerAt}: header: expected ${expectedHeader}, got ${show(lines[headerIndex]!)}`] };
  for (const field of headerFields) {
    const column = COLUMNS.find((c) => c.toLowerCase() === field.trim().toLowerCase());
    if (column === undefined || columns.includes(column)) {
      return { rows: [], problems: [`${headerAt}: header: expected ${expectedHeader}, got ${show(lines[headerIndex]!)}`] };
    }
    columns.push(column);
  }
  if (!REQUIRED.every((c) => columns.includes(c))) return { rows: [], problems: [`${headerAt}: header: expected ${expectedHeader}, got ${show(lines[headerIndex]!)}`] };

  const rows: UsageRow[] = [];
  const seen = new Map<string, string>();
  for (let i = headerIndex + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    const at = `${name}:${i + 1}`;
    const fields = splitCsvLine(line);
    if (fields === null) {
      problems.push(`${at}: row: expected comma-separated fields (a quoted one closed by a quote), got ${show(line)}`);
      continue;
    }
    if (fields.length > columns.length) {
      problems.push(`${at}: row: expected at most ${columns.length} fields (${columns.join(",")}), got ${fields.length}`);
      continue;
    }
    const raw: Partial<Record<Column, string>> = {};
    columns.forEach((c, k) => {
      const v = fields[k];
      if (v !== undefined) raw[c] = v;
    });
    const row = toRow(at, raw, problems, seen);
    if (row !== undefined) rows.push(row);
  }
  if (rows.length === 0 && problems.length === 0) problems.push(`${name}: expected at least one row after the header, got none`);
  return { rows, problems };
}

/** The fields of one CSV line (RFC 4180 quoting within the line: `"a ""b"", c"`); null if a quote is
 * not closed or text follows a closing quote. Unquoted fields are trimmed. */
function splitCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        if (i >= line.length) return null;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += line[i++];
      }
      while (line[i] === " " || line[i] === "\t") i++;
      fields.push(value);
      if (i >= line.length) return fields;
      if (line[i] !== ",") return null;
      i++;
    } else {
      const comma = line.indexOf(",", i);
      fields.push(line.slice(i, comma < 0 ? line.length : comma).trim());
      if (comma < 0) return fields;
      i = comma + 1;
    }
  }
}

function parseJson(name: string, text: string): ParsedUsageFile {
  const shape = "a JSON array of {subscriber, usage, usageRef} objects";
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { rows: [], problems: [`${name}: expected ${shape}, got invalid JSON (${errorMessage(error)})`] };
  }
  if (!Array.isArray(data)) return { rows: [], problems: [`${name}: expected ${shape}, got ${data === null ? "null" : typeof data}`] };
  if (data.length === 0) return { rows: [], problems: [`${name}: expected at least one row, got an empty array`] };
  const problems: string[] = [];
  const rows: UsageRow[] = [];
  const seen = new Map<string, string>();
  data.forEach((item: unknown, index) => {
    const at = `${name}[${index}]`;
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      problems.push(`${at}: row: expected an object {subscriber, usage, usageRef}, got ${show(item)}`);
      return;
    }
    const unknown = Object.keys(item).filter((k) => !(COLUMNS as readonly string[]).includes(k));
    if (unknown.length > 0) {
      problems.push(`${at}: ${unknown[0]}: expected only the fields subscriber, usage and usageRef, got ${show(unknown[0])}`);
      return;
    }
    const row = toRow(at, item as Partial<Record<Column, unknown>>, problems, seen);
    if (row !== undefined) rows.push(row);
  });
  return { rows, problems };
}

/** Checks one row's fields (pushing one problem per bad field); `seen` maps each subscriber to where it
 * first appeared, so a repeat is a problem of its own. */
function toRow(at: string, raw: Partial<Record<Column, unknown>>, problems: string[], seen: Map<string, string>): UsageRow | undefined {
  const before = problems.length;
  let subscriber: string | undefined;
  const s = typeof raw.subscriber === "string" ? raw.subscriber.trim() : raw.subscriber;
  if (typeof s === "string" && /^0x[0-9a-fA-F]{40}$/.test(s) && isAddress(s)) subscriber = getAddress(s).toLowerCase();
  else problems.push(`${at}: subscriber: expected a 0x-prefixed 20-byte address (mixed case only with a valid checksum), got ${show(s)}`);

  let usage: bigint | undefined;
  const u = typeof raw.usage === "string" ? raw.usage.trim() : raw.usage;
  if (typeof u === "string" && /^\d+$/.test(u) && BigInt(u) <= MAX_UINT256) usage = BigInt(u);
  else if (typeof u === "number" && Number.isSafeInteger(u) && u >= 0) usage = BigInt(u);
  else {
    const why = typeof u === "number" && Number.isInteger(u) && u > 0 ? " (write amounts above 2^53 as strings)" : "";
    problems.push(`${at}: usage: expected a whole number of token base units (digits only: no sign, decimals or exponent)${why}, got ${show(u)}`);
  }

  let usageRef: string | undefined;
  const r = raw.usageRef;
  if (r === undefined || r === null || r === "") usageRef = ZeroHash;
  else if (typeof r === "string" && /^0x[0-9a-fA-F]{64}$/.test(r)) usageRef = r.toLowerCase();
  else if (typeof r === "string" && !/^0x[0-9a-fA-F]*$/i.test(r) && new TextEncoder().encode(r).length <= 31) usageRef = encodeBytes32String(r);
  else {
    const size = typeof r === "string" && !/^0x[0-9a-fA-F]*$/i.test(r) ? ` (${new TextEncoder().encode(r).length} bytes)` : "";
    problems.push(`${at}: usageRef: expected a 0x-prefixed 32-byte hex (64 digits) or a text of at most 31 bytes, got ${show(r)}${size}`);
  }

  if (subscriber !== undefined) {
    const first = seen.get(subscriber);
    if (first !== undefined) problems.push(`${at}: subscriber: expected each subscriber once per file, got ${getAddress(subscriber)} again (first at ${first})`);
    else seen.set(subscriber, at);
  }
  if (problems.length > before || subscriber === undefined || usage === undefined || usageRef === undefined) return undefined;
  return { at, subscriber, usage, usageRef };
}

/** A value as a problem line shows it: JSON, cut to 80 characters. */
function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

// --- 2. checking against the chain ------------------------------------------------------------------------

export interface PlanInfo {
  plan: string;
  token: string;
  perCycleCap: bigint;
  /** The signer, when there is one (a dry run may have none, and then the reporter check is skipped). */
  reporter: string | null;
}

/** Reads the plan at `block` and refuses (a CONFIG error: one line, nothing sent) a plan that is not
 * metered and a signer that may not bill it. `signerVariable` names the signer setting in the message. */
export async function checkPlan(rpc: Rpc, plan: string, reporter: string | null, signerVariable: string, block: bigint): Promise<PlanInfo> {
  const expected = "a metered plan (billingMode() = 1)";
  let mode: number;
  try {
    mode = await billingModeCall(rpc, plan, block);
  } catch (error) {
    if (error instanceof KeeperError && !(error instanceof RpcError)) throw error;
    throw new KeeperError("CONFIG", `--plan: expected ${expected}, got ${getAddress(plan)}, which does not answer billingMode() (not a Recur plan on this chain?)`);
  }
  if (mode === BILLING_FIXED) {
    throw new KeeperError("CONFIG", `--plan: expected ${expected}, got ${getAddress(plan)}, a fixed-price plan (billingMode() = 0; the keeper's run charges it)`);
  }
  if (mode !== BILLING_METERED) throw new KeeperError("CONFIG", `--plan: expected ${expected}, got ${getAddress(plan)} with billingMode() = ${mode}`);
  if (reporter !== null && !(await isReporterCall(rpc, plan, reporter, block))) {
    throw new KeeperError(
      "CONFIG",
      `${signerVariable}: expected the key of the plan's owner or of a reporter it authorized (setReporter), got the key of ${getAddress(reporter)}, which may not bill usage on ${getAddress(plan)}`,
    );
  }
  const token = await tokenCall(rpc, plan, block);
  const perCycleCap = await perCycleCapCall(rpc, plan, block);
  return { plan, token, perCycleCap, reporter };
}

export interface RowCheck {
  row: UsageRow;
  reason: string;
  fromCredits: bigint;
  pulled: bigint;
  /** Why, for a row that would not be billed ("cycle ends at …", "cap is …"); "" for a good row. */
  hint: string;
}

/** Reasons whose hint needs the stored subscription (one more eth_call for each such row). */
const NEEDS_SUBSCRIPTION = new Set(["NotDue", "MaxAmountExceeded", "Paused", "Expired"]);

/** `usageChargeability(subscriber, usage)` for every row at `block` (one eth_call per row,
 * CHECK_CONCURRENCY in flight), plus `subscriptionOf` for the rows whose hint needs it. */
export async function checkRows(rpc: Rpc, info: PlanInfo, rows: UsageRow[], block: bigint, concurrency = CHECK_CONCURRENCY): Promise<RowCheck[]> {
  return mapLimit(rows, concurrency, async (row) => {
    const answer = await usageChargeabilityCall(rpc, info.plan, row.subscriber, row.usage, block);
    const reason = reasonName(answer.reason);
    const sub = NEEDS_SUBSCRIPTION.has(reason) ? await subscriptionOfCall(rpc, info.plan, row.subscriber, block) : undefined;
    return { row, reason, fromCredits: answer.fromCredits, pulled: answer.pulled, hint: reason === "Ok" ? "" : hint(reason, answer.fromCredits, answer.pulled, info, sub) };
  });
}

function hint(reason: string, fromCredits: bigint, pulled: bigint, info: PlanInfo, sub: StoredSubscription | undefined): string {
  const at = (t: bigint) => new Date(Number(t) * 1000).toISOString();
  switch (reason) {
    case "NotSubscribed":
      return "unknown subscriber: no subscription on this plan";
    case "NotDue": {
      const billed = sub!.periodsPaid === 0n ? "" : `; ${sub!.periodsPaid} cycle${sub!.periodsPaid === 1n ? "" : "s"} billed so far`;
      return `cycle ends at ${at(sub!.nextChargeAt)}${billed}`;
    }
    case "UsageAboveCap":
      return `cap is ${info.perCycleCap}`;
    case "MaxAmountExceeded":
      return `would pull ${pulled}${fromCredits === 0n ? "" : ` after ${fromCredits} from credits`}, above the subscriber's maxAmount ${sub!.maxAmount}`;
    case "AllowanceTooLow":
      return `the subscriber's allowance to the plan is below the ${pulled} to pull`;
    case "BalanceTooLow":
      return `the subscriber's balance is below the ${pulled} to pull`;
    case "Paused":
      return `paused since ${at(sub!.pausedAt)}`;
    case "Cancelled":
      return "cancelled: the cycle in progress at the cancellation is never billed";
    case "Expired":
      return `the cycle ended at ${at(sub!.nextChargeAt)} and its grace window has passed: it can no longer be billed`;
    case "PlanRetired":
      return "the plan is retired: nothing can be billed";
    case "TransferFailed":
      return "the token would refuse the transfer";
    default:
      return "";
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// --- 3. sending -----------------------------------------------------------------------------------------

export interface Billed {
  row: UsageRow;
  cycleIndex: bigint;
  fromCredits: bigint;
  pulled: bigint;
  transactionHash: string;
}

export interface NotBilled {
  row: UsageRow;
  /** A ChargeReason name from UsageChargeFailed; "Reverted" (its transaction reverted); "SendFailed" (in
   * the batch whose sending failed: check the journal's next run); "NotSent" (a failure stopped the
   * sending first); "Unconfirmed" (mined, but its confirmation failed: a reorg). */
  reason: string;
  transactionHash: string | null;
}

export interface SentTx {
  hash: string;
  block: bigint;
  gasUsed: bigint;
  status: number;
  rows: number;
}

export interface Submission {
  transactions: SentTx[];
  billed: Billed[];
  notBilled: NotBilled[];
  /** The failure that stopped sending or confirming, if any. */
  error: string | null;
}

/** Sends `rows` (all checked Ok) in chargeUsageMany batches of at most `batchSize` rows, each split in
 * halves until its gas estimate fits one transaction's budget; stops at the first failure; waits for the
 * confirmations; returns what the confirmed receipts' events say about each row. */
export async function submitUsage(
  deps: { rpc: Rpc; sender: Sender; log: Logger; batchSize: number },
  plan: string,
  rows: UsageRow[],
  head: Block,
): Promise<Submission> {
  const { rpc, sender, log } = deps;
  const sentRows = new Map<string, { row: UsageRow; hash: string }>();
  /** The part being sent when sending failed: whether it reached the chain is not known here (if it was
   * journalled, the next run's `recover` settles it before checking anything). */
  let failedPart: UsageRow[] = [];
  let error: string | null = null;
  try {
    const fees = { baseFee: head.baseFeePerGas ?? 0n, priorityFee: await rpc.maxPriorityFee() };
    await inGasBudget(rows, deps.batchSize, async (part) => {
      failedPart = part;
      const sent = await sender.send(plan, encodeChargeUsageMany(...columns(part)), fees, { plan, subscribers: part.map((r) => r.subscriber) });
      failedPart = [];
      for (const row of part) sentRows.set(row.subscriber, { row, hash: sent.receipt.transactionHash });
    });
  } catch (e) {
    error = errorMessage(e);
    log.error("usage_send_failed", { plan, error, code: e instanceof KeeperError ? e.code : "UNKNOWN" });
  }
  let receipts: Receipt[] = [];
  try {
    receipts = await sender.settle();
  } catch (e) {
    error ??= errorMessage(e);
    log.error("usage_settle_failed", { plan, error: errorMessage(e) });
  }

  const submission: Submission = { transactions: [], billed: [], notBilled: [], error };
  const outcome = new Set<string>();
  for (const receipt of receipts) {
    const mine = [...sentRows.values()].filter((s) => s.hash === receipt.transactionHash);
    submission.transactions.push({ hash: receipt.transactionHash, block: receipt.blockNumber, gasUsed: receipt.gasUsed, status: receipt.status, rows: mine.length });
    for (const l of receipt.logs) {
      if (l.address.toLowerCase() !== plan) continue;
      const e = meteredPlanInterface.parseLog(l);
      if (e === null) continue;
      const sent = sentRows.get(String(e.args.subscriber).toLowerCase());
      if (sent === undefined || outcome.has(sent.row.subscriber)) continue;
      outcome.add(sent.row.subscriber);
      if (e.name === "UsageCharged") {
        submission.billed.push({ row: sent.row, cycleIndex: e.args.cycleIndex as bigint, fromCredits: e.args.fromCredits as bigint, pulled: e.args.pulled as bigint, transactionHash: receipt.transactionHash });
        log.debug("usage_charged", { plan, subscriber: sent.row.subscriber, usage: sent.row.usage, fromCredits: e.args.fromCredits, pulled: e.args.pulled, usageRef: sent.row.usageRef });
      } else if (e.name === "UsageChargeFailed") {
        const reason = reasonName(e.args.reason as bigint);
        submission.notBilled.push({ row: sent.row, reason, transactionHash: receipt.transactionHash });
        log.warn("usage_charge_failed", { plan, subscriber: sent.row.subscriber, usage: sent.row.usage, reason });
      }
    }
    for (const s of mine) {
      if (outcome.has(s.row.subscriber)) continue;
      outcome.add(s.row.subscriber);
      submission.notBilled.push({ row: s.row, reason: receipt.status === 1 ? "NoEvent" : "Reverted", transactionHash: receipt.transactionHash });
    }
  }
  const failing = new Set(failedPart.map((r) => r.subscriber));
  for (const row of rows) {
    if (outcome.has(row.subscriber)) continue;
    const sent = sentRows.get(row.subscriber);
    const reason = sent !== undefined ? "Unconfirmed" : failing.has(row.subscriber) ? "SendFailed" : "NotSent";
    submission.notBilled.push({ row, reason, transactionHash: sent?.hash ?? null });
  }
  return submission;
}

/** A dry run's batches: the same split as `submitUsage`, each batch's gas estimated from `from` (when
 * there is a signer; otherwise batches of `batchSize` rows, not estimated). */
export async function planBatches(rpc: Rpc, plan: string, from: string | null, rows: UsageRow[], batchSize: number): Promise<{ rows: UsageRow[]; gas: bigint | null }[]> {
  const batches: { rows: UsageRow[]; gas: bigint | null }[] = [];
  await inGasBudget(rows, batchSize, async (part) => {
    if (from === null) {
      batches.push({ rows: part, gas: null });
      return;
    }
    const gas = await rpc.estimateGas({ from, to: plan, data: encodeChargeUsageMany(...columns(part)) });
    if (gas > MAX_GAS_PER_TX) throw new KeeperError("GAS_BUDGET", `a batch needs ${gas} gas, above the ${MAX_GAS_PER_TX} budget of one transaction`);
    batches.push({ rows: part, gas });
  });
  return batches;
}

/** Calls `handle` with consecutive parts of `rows`, at most `batchSize` each; a part refused for the gas
 * budget (GAS_BUDGET) is split in halves until each fits. */
async function inGasBudget(rows: UsageRow[], batchSize: number, handle: (part: UsageRow[]) => Promise<void>): Promise<void> {
  const queue: UsageRow[][] = [];
  for (let i = 0; i < rows.length; i += batchSize) queue.push(rows.slice(i, i + batchSize));
  while (queue.length > 0) {
    const part = queue.shift()!;
    try {
      await handle(part);
    } catch (error) {
      if (!(error instanceof KeeperError && error.code === "GAS_BUDGET" && part.length > 1)) throw error;
      const half = Math.ceil(part.length / 2);
      queue.unshift(part.slice(0, half), part.slice(half));
    }
  }
}

const columns = (rows: UsageRow[]): [string[], bigint[], string[]] => [rows.map((r) => r.subscriber), rows.map((r) => r.usage), rows.map((r) => r.usageRef)];

/** Refuses a journal holding another key's pending transactions: the Sender settles every pending entry
 * by nonce, so one journal must belong to one key. */
export function checkJournal(store: Store, address: string, journalVariable: string): void {
  for (const tx of store.pendingTxs()) {
    const from = Transaction.from(tx.raw).from?.toLowerCase();
    if (from !== address.toLowerCase()) {
      throw new KeeperError(
        "CONFIG",
        `${journalVariable}: expected a journal of ${getAddress(address)}'s transactions, got one with a pending transaction of ${from === undefined ? "an unknown sender" : getAddress(from)} (nonce ${tx.nonce}): use one journal per key`,
      );
    }
  }
}

// --- the command -----------------------------------------------------------------------------------------

export interface UsageDeps {
  rpc: Rpc;
  log: Logger;
  /** null for a dry run: nothing is signed or sent. */
  sender: Sender | null;
  /** The signer's address (null: a dry run without a key; the reporter check is then skipped). */
  reporter: string | null;
  /** The setting that holds the signer (RECUR_PRIVATE_KEY or RECUR_KEYSTORE), for messages. */
  signerVariable: string;
  batchSize: number;
  json: boolean;
  /** Writes one line to stdout (the report). */
  out: (line: string) => void;
  /** Writes one line to stderr (each row that cannot be billed, each failure). */
  err: (line: string) => void;
  /** Shows what will be sent and asks (unless --yes); false: nothing is sent. */
  confirm: (lines: readonly string[]) => Promise<boolean>;
}

export interface UsageInput {
  plan: string;
  file: string;
  rows: UsageRow[];
  dryRun: boolean;
}

const total = <T>(items: T[], pick: (item: T) => bigint) => items.reduce((sum, item) => sum + pick(item), 0n);
const address = (a: string) => getAddress(a);
const countCalls = (rpc: Rpc, method?: string) => (method === undefined ? [...rpc.calls.values()].reduce((a, b) => a + b, 0) : rpc.calls.get(method) ?? 0);

/** Checks every row, then (unless a dry run, and only if every row can be billed) sends them. Returns the
 * exit code: 0 all billed (a dry run: all would be), 1 rows that cannot be billed (nothing sent), 2 a
 * failure while sending or rows that failed on-chain. Bad plan or signer: throws a CONFIG KeeperError. */
export async function billUsage(deps: UsageDeps, input: UsageInput): Promise<number> {
  const { rpc, log, sender } = deps;
  const report: Record<string, unknown> = { plan: address(input.plan), file: input.file, rows: input.rows.length, dryRun: input.dryRun };
  const finish = (code: number) => {
    if (deps.json) deps.out(JSON.stringify({ ...report, exitCode: code }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
    return code;
  };
  const text = (line: string) => {
    if (!deps.json) deps.out(line);
  };

  // What an earlier run left pending is settled first: its rows then read as billed (NotDue) below.
  if (sender !== null) {
    const recovered = await sender.recover();
    if (recovered.length > 0) {
      await sender.settle();
      const hashes = recovered.map((r) => r.transactionHash);
      report.recovered = hashes;
      text(`settled ${hashes.length} transaction${hashes.length === 1 ? "" : "s"} an earlier run left pending: ${hashes.join(", ")}`);
    }
  }

  const callsBefore = countCalls(rpc, "eth_call");
  const requestsBefore = countCalls(rpc);
  const head = await rpc.block("latest");
  const info = await checkPlan(rpc, input.plan, deps.reporter, deps.signerVariable, head.number);
  const checks = await checkRows(rpc, info, input.rows, head.number);
  const ethCalls = countCalls(rpc, "eth_call") - callsBefore;
  const requests = countCalls(rpc) - requestsBefore;
  const invalid = checks.filter((c) => c.reason !== "Ok");
  Object.assign(report, {
    token: address(info.token),
    perCycleCap: info.perCycleCap,
    reporter: info.reporter === null ? null : address(info.reporter),
    block: head.number,
    blockTime: new Date(Number(head.timestamp) * 1000).toISOString(),
    check: { ethCalls, requests },
  });
  log.debug("usage_checked", { plan: input.plan, file: input.file, rows: input.rows.length, invalid: invalid.length, block: head.number, ethCalls, requests });
  text(
    `plan ${address(info.plan)}: metered, token ${address(info.token)}, cap ${info.perCycleCap} per cycle; ` +
      (info.reporter === null ? "reporter not checked (a dry run without a key)" : `signer ${address(info.reporter)} may bill it`),
  );
  text(`${input.file}: ${input.rows.length} row${input.rows.length === 1 ? "" : "s"} checked at block ${head.number} (${report.blockTime as string}) with ${ethCalls} eth_call (${requests} RPC requests): ${checks.length - invalid.length} can be billed, ${invalid.length} cannot`);

  if (invalid.length > 0) {
    report.invalid = invalid.map((c) => ({ at: c.row.at, subscriber: address(c.row.subscriber), usage: c.row.usage, reason: c.reason, hint: c.hint }));
    for (const c of invalid) deps.err(`${c.row.at}: ${address(c.row.subscriber)} usage ${c.row.usage}: ${c.reason}${c.hint === "" ? "" : ` (${c.hint})`}`);
    deps.err(`${input.file}: ${invalid.length} of ${checks.length} rows cannot be billed now; nothing was sent`);
    return finish(1);
  }

  const expected = { usage: total(checks, (c) => c.row.usage), fromCredits: total(checks, (c) => c.fromCredits), pulled: total(checks, (c) => c.pulled) };
  if (input.dryRun) {
    const batches = await planBatches(rpc, input.plan, deps.reporter, input.rows, deps.batchSize);
    const gas = batches.every((b) => b.gas !== null) ? total(batches, (b) => b.gas!) : null;
    report.wouldSend = {
      transactions: batches.map((b) => ({ rows: b.rows.length, gas: b.gas })),
      totals: expected,
      rows: checks.map((c) => ({ at: c.row.at, subscriber: address(c.row.subscriber), usage: c.row.usage, usageRef: c.row.usageRef, fromCredits: c.fromCredits, pulled: c.pulled })),
    };
    text(
      `would bill ${checks.length} rows in ${batches.length} chargeUsageMany transaction${batches.length === 1 ? "" : "s"}` +
        `${gas === null ? " (gas not estimated without a key)" : ` (${gas} gas estimated)`}: ` +
        `usage ${expected.usage}, from credits ${expected.fromCredits}, pulled ${expected.pulled}`,
    );
    for (const c of checks) text(`  ${c.row.at}: ${address(c.row.subscriber)} usage ${c.row.usage}: from credits ${c.fromCredits}, pulled ${c.pulled}, usageRef ${c.row.usageRef}`);
    text("dry run: nothing was sent");
    return finish(0);
  }

  const asked = [
    `bill ${checks.length} row${checks.length === 1 ? "" : "s"} of ${input.file} on plan ${address(input.plan)} in chargeUsageMany batches of at most ${deps.batchSize}:`,
    `  usage ${expected.usage}, from credits ${expected.fromCredits}, pulled from the subscribers ${expected.pulled} (token base units)`,
  ];
  if (!(await deps.confirm(asked))) return finish(1);
  const submission = await submitUsage({ rpc, sender: sender!, log, batchSize: deps.batchSize }, input.plan, input.rows, head);
  const billed = submission.billed;
  const totals = { usage: total(billed, (b) => b.row.usage), fromCredits: total(billed, (b) => b.fromCredits), pulled: total(billed, (b) => b.pulled) };
  Object.assign(report, {
    transactions: submission.transactions,
    billed: billed.map((b) => ({ at: b.row.at, subscriber: address(b.row.subscriber), usage: b.row.usage, usageRef: b.row.usageRef, cycleIndex: b.cycleIndex, fromCredits: b.fromCredits, pulled: b.pulled, transactionHash: b.transactionHash })),
    notBilled: submission.notBilled.map((n) => ({ at: n.row.at, subscriber: address(n.row.subscriber), usage: n.row.usage, reason: n.reason, transactionHash: n.transactionHash })),
    totals,
    error: submission.error,
  });
  log.info("usage_billed", { plan: input.plan, file: input.file, billed: billed.length, notBilled: submission.notBilled.length, transactions: submission.transactions.length, ...totals });
  for (const t of submission.transactions) text(`transaction ${t.hash} in block ${t.block}: ${t.rows} rows, ${t.gasUsed} gas${t.status === 1 ? "" : ", REVERTED"}`);
  text(`billed ${billed.length} of ${input.rows.length} rows: usage ${totals.usage}, from credits ${totals.fromCredits}, pulled ${totals.pulled}`);
  for (const n of submission.notBilled) {
    const where = n.transactionHash === null ? "" : ` in ${n.transactionHash}`;
    deps.err(`${n.row.at}: ${address(n.row.subscriber)} usage ${n.row.usage}: not billed, ${n.reason}${where}`);
  }
  if (submission.error !== null) deps.err(`${input.file}: sending stopped: ${submission.error}`);
  if (submission.notBilled.length > 0) deps.err(`${input.file}: ${submission.notBilled.length} of ${input.rows.length} rows not billed`);
  return finish(submission.notBilled.length === 0 && submission.error === null ? 0 : 2);
}

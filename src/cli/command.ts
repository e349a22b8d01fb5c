// What a merchant's command is given and how it is declared. A command parses nothing itself and
// decides no rule: it names its options (checked once, by src/cli/config.ts), asks the index or the
// chain through the context, and prints with src/cli/output.ts. The registry is src/cli/commands/.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline/promises";

import { Wallet } from "ethers";

import type { Block, Receipt, Rpc } from "../chain/rpc.ts";
import { Sender } from "../chain/sender.ts";
import { KeeperError } from "../errors.ts";
import { sync } from "../index/indexer.ts";
import type { SyncResult } from "../index/indexer.ts";
import { Store } from "../index/store.ts";
import type { Logger } from "../log.ts";
import { checkJournal } from "../usage/bill.ts";
import type { CommandConfig, CommandSpec, OptionValues, Signer } from "./config.ts";
import type { Cell, Column } from "./output.ts";
import { toCsv, toJson, toTable } from "./output.ts";

export interface Io {
  stdout: NodeJS.WritableStream & { write(chunk: string): boolean };
  stderr: NodeJS.WritableStream & { write(chunk: string): boolean };
  /** Where a confirmation is read from (process.stdin); without it, only --yes sends. */
  stdin?: NodeJS.ReadableStream;
  signal: AbortSignal;
}

/** One option of a command, for its --help. */
export interface OptionHelp {
  flag: string;
  text: string;
}

export interface Command {
  spec: CommandSpec;
  /** One line for `recur --help`. */
  summary: string;
  /** `recur plan create --token USDC --price 9.99 …` */
  synopsis: string;
  /** The command's own options. */
  help: readonly OptionHelp[];
  examples: readonly string[];
  run(ctx: Context): Promise<number>;
}

/** What a report prints: a JSON document for --json, a table (and lines around it) otherwise, and the
 * same rows as CSV for --csv. */
export interface Report {
  json: unknown;
  columns?: readonly Column[];
  rows?: readonly Record<string, Cell>[];
  /** Lines before the table. */
  head?: readonly string[];
  /** Lines after the table. */
  tail?: readonly string[];
}

export interface Context {
  readonly config: CommandConfig;
  readonly values: OptionValues;
  readonly io: Io;
  readonly rpc: Rpc;
  readonly log: Logger;
  /** The index (RECUR_STORE), opened on first use. */
  store(): Store;
  /** Catches the index up to the confirmed head (reorg-safe, as the keeper does) and returns the head. */
  catchUp(): Promise<{ head: Block; sync: SyncResult }>;
  /** The signer (RECUR_PRIVATE_KEY or RECUR_KEYSTORE); its key is never printed or logged. */
  wallet(): Promise<Wallet>;
  /** Prints what will be sent; asks on stdin unless --yes. False unless the answer is yes. */
  confirm(lines: readonly string[]): Promise<boolean>;
  /** Simulates, signs, journals (RECUR_USAGE_JOURNAL: one journal per key), sends and waits for the
   * configured confirmations. */
  send(to: string, data: string, what: string): Promise<Receipt>;
  print(report: Report): void;
  /** One line to stderr, prefixed "recur: ". */
  err(line: string): void;
}

/** Prints what will be sent (to stderr) and asks on stdin, unless `yes`. Without a terminal to ask on,
 * or when stdout is for a program (`machine`: --json, --csv), only --yes sends. True to send. */
export async function askToSend(io: Io, options: { yes: boolean; machine: boolean }, lines: readonly string[]): Promise<boolean> {
  for (const line of lines) io.stderr.write(`${line}\n`);
  if (options.yes) return true;
  if (io.stdin === undefined || options.machine) {
    io.stderr.write("recur: not sent: pass --yes to send without asking\n");
    return false;
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: false });
  try {
    io.stderr.write("Send? [y/N] ");
    const answer = await new Promise<string>((resolve) => {
      rl.once("line", resolve);
      rl.once("close", () => resolve(""));
    });
    // A piped answer is not echoed: end the prompt's line before anything else is written.
    if ((io.stdin as { isTTY?: boolean }).isTTY !== true) io.stderr.write("\n");
    const yes = /^\s*y(es)?\s*$/i.test(answer);
    if (!yes) io.stderr.write("recur: not sent\n");
    return yes;
  } finally {
    rl.close();
  }
}

export function createContext(config: CommandConfig, values: OptionValues, io: Io, rpc: Rpc, log: Logger): Context & { close(): void } {
  let store: Store | undefined;
  let journal: Store | undefined;
  let wallet: Wallet | undefined;
  let sender: Sender | undefined;
  const openStore = (): Store => {
    if (store === undefined) {
      mkdirSync(path.dirname(path.resolve(config.storePath)), { recursive: true });
      store = new Store(config.storePath);
    }
    return store;
  };
  const ctx: Context & { close(): void } = {
    config, values, io, rpc, log,
    store: openStore,
    async catchUp() {
      if (config.factory === null) throw new KeeperError("CONFIG", "RECUR_FACTORY: expected the factory whose plans the index holds, got nothing");
      const head = await rpc.block("latest");
      const result = await sync(
        { rpc, store: openStore(), log, factory: config.factory, factoryBlock: config.factoryBlock, confirmations: config.confirmations, logRange: config.logRange, chainId: config.chainId },
        head,
      );
      return { head, sync: result };
    },
    async wallet() {
      if (wallet !== undefined) return wallet;
      const signer = config.signer;
      if (signer === null) throw new KeeperError("CONFIG", "RECUR_PRIVATE_KEY: expected a signer key (or RECUR_KEYSTORE), got nothing");
      wallet = await loadWallet(signer);
      return wallet;
    },
    confirm: (lines) => askToSend(io, { yes: config.yes, machine: config.json || config.csv }, lines),
    async send(to, data, what) {
      const signer = await ctx.wallet();
      if (sender === undefined) {
        const journalPath = config.journalPath;
        mkdirSync(path.dirname(path.resolve(journalPath)), { recursive: true });
        journal = new Store(journalPath);
        checkJournal(journal, signer.address, "RECUR_USAGE_JOURNAL");
        sender = new Sender({
          rpc, store: journal, wallet: signer, log,
          chainId: config.chainId, maxFeePerGas: config.maxFeePerGas, confirmations: config.confirmations,
          txTimeoutMs: config.txTimeoutMs, pollMs: 250, now: () => Date.now(),
          sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        });
        await sender.recover();
        await sender.settle();
      }
      const head = await rpc.block("latest");
      const sent = await sender.send(to, data, { baseFee: head.baseFeePerGas ?? 0n, priorityFee: await rpc.maxPriorityFee() }, { plan: to, subscribers: [] });
      log.info("sent", { what, to, hash: sent.receipt.transactionHash });
      await sender.settle();
      return sent.receipt;
    },
    print(report) {
      if (config.json) {
        io.stdout.write(toJson(report.json));
        return;
      }
      if (config.csv) {
        io.stdout.write(toCsv(report.columns ?? [], report.rows ?? []));
        return;
      }
      const parts: string[] = [...(report.head ?? [])];
      if (report.columns !== undefined) parts.push(toTable(report.columns, report.rows ?? []).trimEnd());
      parts.push(...(report.tail ?? []));
      io.stdout.write(parts.join("\n") + "\n");
    },
    err(line) {
      io.stderr.write(`recur: ${line}\n`);
    },
    close() {
      store?.close();
      journal?.close();
    },
  };
  return ctx;
}

/** The signer's wallet: the key itself, or the keystore decrypted with its password (a wrong password is
 * the one line naming RECUR_KEYSTORE_PASSWORD). */
export async function loadWallet(signer: Signer): Promise<Wallet> {
  if (signer.kind === "privateKey") return new Wallet(signer.privateKey);
  try {
    return new Wallet((await Wallet.fromEncryptedJson(signer.json, signer.password)).privateKey);
  } catch {
    throw new KeeperError("CONFIG", "RECUR_KEYSTORE_PASSWORD: expected the password of RECUR_KEYSTORE, got one that does not decrypt it");
  }
}

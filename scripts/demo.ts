// Recur's main demo: a merchant's monthly plan, five customers and five months of billing, on Hardhat's
// in-process chain, in one screen; then a USD-priced plan (a price feed converts $9.99 to tUSDC at each
// charge) whose token de-pegs for a month; then a pay-as-you-go plan whose customer's usage the merchant
// bills from a file after each cycle, free credits first.
//   npm run demo
//
// The plan contract decides everything. This script only plays the people (merchant, customers), moves
// time, runs the real keeper (keeper/, in-process, over JSON-RPC) at each due time, and prints what the
// plan's events and views report; it works out no billing outcome itself.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";

import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionReceipt, ContractTransactionResponse } from "ethers";

import type {
  CancelledEvent,
  ChargeFailedEvent,
  ChargedEvent,
  MaxAmountUpdatedEvent,
  PausedEvent,
  ResumedEvent,
  SubscribedEvent,
} from "../typechain-types/contracts/FixedPricePlan.js";
import type { CreditsGrantedEvent, UsageChargedEvent } from "../typechain-types/contracts/MeteredPlan.js";
import type { PlanCreatedEvent } from "../typechain-types/contracts/PlanFactory.js";
import type { FixedPricePlan, MockAggregator } from "../typechain-types/index.js";
import { HDNodeWallet, Mnemonic } from "ethers";

import { main as keeperMain } from "../src/cli/main.ts";
import { formatAmount, formatDate, formatDuration, formatRow, formatTable, shortAddress } from "./lib/format.js";
import { serveRpc } from "./lib/rpc-bridge.js";
import {
  ChargeReason,
  DAY,
  chargeReasonName,
  createMeteredPlan,
  createPlan,
  deployFactory,
  deployToken,
  fixedTerms,
  meteredTerms,
  subscriptionStatusName,
} from "./lib/plans.js";

// ---------------------------------------------------------------------------------------------------
// The scenario (inputs only: who does what, when)
// ---------------------------------------------------------------------------------------------------

const at = (iso: string): bigint => BigInt(Date.parse(iso) / 1000);

const CHAIN_START = "2026-01-01T09:00:00Z"; // fixed, so that every run prints the same dates
const SIGN_UP = at("2026-01-01T10:00:00Z");
const FIRST_LOOK = at("2026-01-02T12:00:00Z"); // statuses are read once a day at noon, and after each action
const END = at("2026-06-08T12:00:00Z");
const PRICE = "9.99"; // tUSDC per period

interface Cast {
  readonly name: string;
  readonly wallet: string; // tUSDC minted to the customer
  readonly approvePeriods: bigint; // allowance given to the plan, in periods (the plan says how much)
  readonly plays: string;
}
const CAST: readonly Cast[] = [
  { name: "alice", wallet: "200", approvePeriods: 12n, plays: "approves a year, stays" },
  { name: "bob", wallet: "200", approvePeriods: 2n, plays: "approves only two months" },
  { name: "carol", wallet: "200", approvePeriods: 12n, plays: "cancels after her 2nd payment" },
  { name: "dave", wallet: "200", approvePeriods: 12n, plays: "pauses three weeks, resumes" },
  { name: "erin", wallet: "50", approvePeriods: 12n, plays: "her wallet runs dry" },
];

type CustomerAction = "pause" | "resume" | "cancel";
const ACTIONS: readonly { readonly at: bigint; readonly who: string; readonly action: CustomerAction }[] = [
  { at: at("2026-01-20T15:00:00Z"), who: "dave", action: "pause" },
  { at: at("2026-02-10T15:00:00Z"), who: "dave", action: "resume" },
  { at: at("2026-02-15T15:00:00Z"), who: "carol", action: "cancel" },
];

// The USD-priced plan, after the story above: $9.99 a month, converted to tUSDC at each charge.
const USD_PRICE = 999_000_000n; // USD with 8 decimals: $9.99
const FEED_DECIMALS = 8;
const FEED_START = 100_000_000n; // the feed's answer when deployed: $1.00 per tUSDC
const FRANK = { name: "frank", wallet: "200", approvePeriods: 12n } as const;
/** The feed's answer (USD per tUSDC, 8 decimals), refreshed just before the keeper at each of frank's due
 * times: in the second month the token de-pegs to $0.95. */
const FEED_ANSWERS: readonly bigint[] = [100_000_000n, 95_000_000n, 100_000_000n];
const RAISE_AFTER = 6n * 3_600n; // frank raises his max amount six hours after a refused charge,
const RETRY_AFTER = DAY; // and the keeper runs again a day after it

// The pay-as-you-go plan, last: usage billed after each 30-day cycle, at most 50 tUSDC a cycle, 5 tUSDC of
// free credits for a new customer. gina uses 3.20, then 12.40, then nothing.
const METERED_CAP = "50";
const METERED_CREDITS = "5";
const GINA = { name: "gina", wallet: "100", approveCycles: 3n, maxAmount: "30" } as const;
const GINA_USAGE: readonly string[] = ["3.20", "12.40", "0"];
const BILL_AFTER = 2n * 3_600n; // the merchant bills each cycle two hours after it ends

/** Hardhat's default accounts come from this mnemonic; account 1 is the merchant, account 2 the keeper. */
const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";

// ---------------------------------------------------------------------------------------------------
// Setup: chain, token, factory, plan, customers
// ---------------------------------------------------------------------------------------------------

interface Customer extends Cast {
  readonly signer: HardhatEthersSigner;
  readonly address: string;
}

async function main(): Promise<void> {
  const connection = await network.create({ override: { initialDate: CHAIN_START } });
  const { ethers, networkHelpers } = connection;
  const { time } = networkHelpers;
  const [deployer, merchant, keeper, ...others] = await ethers.getSigners();
  if (deployer === undefined || merchant === undefined || keeper === undefined || others.length < CAST.length) {
    throw new Error(`need ${3 + CAST.length} accounts`);
  }

  const token = await deployToken(ethers);
  const factory = await deployFactory(ethers);
  const factoryBlock = (await factory.deploymentTransaction()?.wait())?.blockNumber ?? 0;
  const [symbol, decimals] = await Promise.all([token.symbol(), token.decimals()]);
  const decimalsN = Number(decimals);
  const amount = (units: bigint): string => formatAmount(units, decimalsN, symbol);

  const { plan, tx: createTx } = await createPlan(
    ethers,
    factory,
    merchant,
    fixedTerms(await token.getAddress(), merchant.address, {
      price: ethers.parseUnits(PRICE, decimalsN),
      period: 30n * DAY,
      trialPeriod: 7n * DAY,
      gracePeriod: 3n * DAY,
    }),
  );
  const planAddress = await plan.getAddress();
  const created = await receiptOf(createTx);
  const planCreated = created.logs
    .map((log) => factory.interface.parseLog(log))
    .find((parsed) => parsed?.name === "PlanCreated");
  if (planCreated == null) throw new Error("no PlanCreated event");
  const terms = (planCreated.args as unknown as PlanCreatedEvent.OutputObject).terms;

  const customers: Customer[] = CAST.map((c, i) => {
    const signer = others[i]!;
    return { ...c, signer, address: signer.address };
  });
  const nameOf = new Map<string, string>([
    [merchant.address, "merchant"],
    [keeper.address, "keeper"],
    ...customers.map((c): [string, string] => [c.address, c.name]),
  ]);
  const who = (address: string): string => nameOf.get(address) ?? shortAddress(address);

  // Each customer holds some tUSDC and approves the plan for the allowance the plan asks for N periods.
  for (const c of customers) {
    await token.mint(c.address, ethers.parseUnits(c.wallet, decimalsN));
    await token.connect(c.signer).approve(planAddress, await plan.requiredAllowance(c.approvePeriods));
  }

  // ---------------------------------------------------------------------------------------------------
  // Reporting: one line per plan event, plus status changes that time alone causes (no event for those)
  // ---------------------------------------------------------------------------------------------------

  const lastStatus = new Map<string, bigint>(customers.map((c) => [c.address, 0n]));
  const WIDTHS = [10, 8, 58, 0];
  const line = (when: bigint, name: string, what: string, status: string): void =>
    console.log(formatRow([formatDate(when), name, what, status], WIDTHS));

  async function statusNow(address: string): Promise<string> {
    const status = await plan.statusOf(address);
    lastStatus.set(address, status);
    return subscriptionStatusName(status);
  }

  /** Prints the plan's events in `receipts` (mined together), then status changes of customers that had
   * no event. */
  async function report(...receipts: ContractTransactionReceipt[]): Promise<void> {
    let when = 0n;
    const mentioned = new Set<string>();
    for (const receipt of receipts) {
      when = BigInt((await receipt.getBlock()).timestamp);
      for (const log of receipt.logs) {
        if (log.address !== planAddress) continue;
        const parsed = plan.interface.parseLog(log);
        if (parsed === null) continue;
        const described = describeEvent(parsed.name, parsed.args);
        if (described === null) continue;
        mentioned.add(described.subscriber);
        line(when, who(described.subscriber), described.what, await statusNow(described.subscriber));
      }
    }
    await reportStatusChanges(when, mentioned);
  }

  async function reportStatusChanges(when: bigint, skip: ReadonlySet<string> = new Set()): Promise<void> {
    for (const c of customers) {
      if (skip.has(c.address)) continue;
      const before = lastStatus.get(c.address);
      const status = await plan.statusOf(c.address);
      if (status === before) continue;
      lastStatus.set(c.address, status);
      const name = subscriptionStatusName(status);
      line(when, c.name, `status is now ${name} (time alone, no transaction)`, name);
    }
  }

  function describeEvent(name: string, args: unknown): { subscriber: string; what: string } | null {
    switch (name) {
      case "Subscribed": {
        const e = args as SubscribedEvent.OutputObject;
        const what = e.trial
          ? `subscribed, trial until ${formatDate(e.nextChargeAt)}, max ${amount(e.maxAmount)}/charge`
          : `subscribed, next charge ${formatDate(e.nextChargeAt)}, max ${amount(e.maxAmount)}/charge`;
        return { subscriber: e.subscriber, what };
      }
      case "Charged": {
        const e = args as ChargedEvent.OutputObject;
        const period = (e.periodIndex + 1n).toString(); // periodIndex is 0-based; people count from 1
        const what = `charged ${amount(e.amount)} (period ${period}), next ${formatDate(e.nextChargeAt)}`;
        return { subscriber: e.subscriber, what };
      }
      case "ChargeFailed": {
        const e = args as ChargeFailedEvent.OutputObject;
        return { subscriber: e.subscriber, what: `charge failed: ${chargeReasonName(e.reason)}` };
      }
      case "Cancelled": {
        const e = args as CancelledEvent.OutputObject;
        return { subscriber: e.subscriber, what: `cancelled, access until ${formatDate(e.paidThrough)}` };
      }
      case "Paused": {
        const e = args as PausedEvent.OutputObject;
        return { subscriber: e.subscriber, what: "paused" };
      }
      case "MaxAmountUpdated": {
        const e = args as MaxAmountUpdatedEvent.OutputObject;
        return { subscriber: e.subscriber, what: `raised max amount to ${amount(e.newMaxAmount)}/charge` };
      }
      case "Resumed": {
        const e = args as ResumedEvent.OutputObject;
        const what = `resumed after ${formatDuration(e.pausedFor)}, next charge ${formatDate(e.nextChargeAt)}`;
        return { subscriber: e.subscriber, what };
      }
      default:
        return null;
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // The story
  // ---------------------------------------------------------------------------------------------------

  console.log("Recur demo: subscription billing whose rules live in the plan contract (in-process chain).");
  console.log("");
  console.log(`plan ${shortAddress(planAddress)}, created by the merchant through PlanFactory:`);
  const [price, period, trial, grace] = [terms.price, terms.period, terms.trialPeriod, terms.gracePeriod];
  console.log(
    `  ${amount(price)} every ${formatDuration(period)}, free trial ${formatDuration(trial)}, ` +
      `grace to pay ${formatDuration(grace)}, paid to the ${who(terms.payee)}`,
  );
  console.log("");
  const castRows = await Promise.all(
    customers.map(async (c) => {
      const [balance, allowance] = await Promise.all([
        token.balanceOf(c.address),
        token.allowance(c.address, planAddress),
      ]);
      return [c.name, amount(balance), `${amount(allowance)} (${c.approvePeriods.toString()} periods)`, c.plays];
    }),
  );
  const castHeaders = ["customer", "wallet", "allowance to plan", "plays"];
  for (const row of formatTable(castHeaders, castRows, ["left", "right", "right"])) console.log(row);
  console.log("");
  console.log("The keeper (recur run --once, in-process) wakes at each due time: it finds due subscriptions");
  console.log("from the plan's events, re-checks them on-chain, and charges the ones that can pay with chargeMany.");
  console.log("");
  console.log(formatRow(["date", "who", "what the plan reported", "status after"], WIDTHS));

  // The keeper: the real one, run in-process against this chain through a local JSON-RPC bridge.
  const bridge = await serveRpc(connection.provider);
  const storeDir = mkdtempSync(path.join(tmpdir(), "recur-demo-"));
  const keeperKey = HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(HARDHAT_MNEMONIC), "m/44'/60'/0'/0/2").privateKey;
  const keeperEnv = {
    RECUR_RPC_URL: bridge.url,
    RECUR_CHAIN_ID: (await ethers.provider.getNetwork()).chainId.toString(),
    RECUR_FACTORY: await factory.getAddress(),
    RECUR_FACTORY_BLOCK: String(factoryBlock),
    RECUR_PRIVATE_KEY: keeperKey,
    RECUR_CONFIRMATIONS: "1",
    RECUR_STORE: path.join(storeDir, "keeper.sqlite"),
  };
  /** Why the keeper last left a customer uncharged (it re-checks on-chain and sends only what can pay). */
  const notCharged = new Map<string, string>();
  /** One `recur run --once`; returns its transactions, the customers it did not charge and why,
   * and a one-line summary of its pass. */
  async function keeperPass(): Promise<{ txs: string[]; skipped: { plan: string; subscriber: string; reason: string }[]; line: string }> {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString().split("\n")) if (text.trim() !== "") lines.push(JSON.parse(text) as Record<string, unknown>);
        done();
      },
    });
    const io = { stdout: sink as never, stderr: process.stderr, signal: new AbortController().signal };
    const code = await keeperMain(["run", "--once"], keeperEnv, io);
    if (code !== 0) throw new Error(`keeper exited ${code}: ${JSON.stringify(lines.at(-1))}`);
    const summary = lines.find((l) => l.event === "pass") as { due: number; charged: number; failed: Record<string, number>; skipped: Record<string, number>; transactions: number; rpcCalls: number } | undefined;
    if (summary === undefined) throw new Error("keeper printed no pass summary");
    const notes = [...Object.entries(summary.failed).map(([r, n]) => `${n} failed (${r})`), ...Object.entries(summary.skipped).map(([r, n]) => `${n} not sent (${r})`)];
    const line = `pass: ${summary.due} due, ${summary.charged} charged in ${summary.transactions} tx` +
      (notes.length > 0 ? `, ${notes.join(", ")}` : "") + `; ${summary.rpcCalls} RPC calls`;
    const skipped = lines
      .filter((l) => l.event === "skip")
      .map((l) => ({ plan: ethers.getAddress(String(l.plan)), subscriber: ethers.getAddress(String(l.subscriber)), reason: String(l.reason) }));
    for (const s of skipped) if (s.plan === planAddress) notCharged.set(s.subscriber, s.reason);
    return { txs: lines.filter((l) => l.event === "tx_sent").map((l) => String(l.hash)), skipped, line };
  }

  // Everyone subscribes in one block (maxAmount = the price), so one chargeMany bills them together.
  await ethers.provider.send("evm_setAutomine", [false]);
  const subscribeTxs: ContractTransactionResponse[] = [];
  for (const c of customers) subscribeTxs.push(await plan.connect(c.signer).subscribe(terms.price));
  await ethers.provider.send("evm_mine", [Number(SIGN_UP)]);
  await ethers.provider.send("evm_setAutomine", [true]);
  await report(...(await Promise.all(subscribeTxs.map(receiptOf))));

  const addresses = customers.map((c) => c.address);
  const byName = new Map(customers.map((c) => [c.name, c]));
  const pending = [...ACTIONS].sort((a, b) => (a.at < b.at ? -1 : 1));
  let nextLook = FIRST_LOOK;

  for (;;) {
    const keeperAt = await nextDueTime(plan, addresses, BigInt(await time.latest()));
    const action = pending[0];
    const next = [keeperAt, action?.at, nextLook]
      .filter((t): t is bigint => t !== undefined)
      .reduce((a, b) => (b < a ? b : a));
    if (next > END) break;

    if (next === keeperAt) {
      await time.increaseTo(next);
      const pass = await keeperPass();
      const receipts = await Promise.all(pass.txs.map(async (hash) => (await ethers.provider.getTransactionReceipt(hash))!));
      await report(...(receipts as unknown as ContractTransactionReceipt[]));
      for (const s of pass.skipped.filter((k) => k.plan === planAddress)) {
        line(next, who(s.subscriber), `not charged, re-check said ${whyNot(BigInt(ChargeReason[s.reason as keyof typeof ChargeReason]))}`, await statusNow(s.subscriber));
      }
      console.log(formatRow(["", "keeper", pass.line, ""], WIDTHS));
    } else if (action !== undefined && next === action.at) {
      pending.shift();
      const customer = byName.get(action.who);
      if (customer === undefined) throw new Error(`unknown customer ${action.who}`);
      const asCustomer = plan.connect(customer.signer);
      await time.setNextBlockTimestamp(next);
      const tx =
        action.action === "pause"
          ? await asCustomer.pause()
          : action.action === "resume"
            ? await asCustomer.resume()
            : await asCustomer.cancel();
      await report(await receiptOf(tx));
    } else {
      await time.increaseTo(next);
      nextLook += DAY;
      await reportStatusChanges(next);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // The summary, from views and the event log
  // ---------------------------------------------------------------------------------------------------

  const [charges, failures] = await Promise.all([
    plan.queryFilter(plan.filters.Charged()),
    plan.queryFilter(plan.filters.ChargeFailed()),
  ]);
  const rows = await Promise.all(
    customers.map(async (c) => {
      const [status, access, sub, next, chargeable] = await Promise.all([
        plan.statusOf(c.address),
        plan.hasAccess(c.address),
        plan.subscriptionOf(c.address),
        plan.nextChargeAt(c.address),
        plan.chargeability(c.address),
      ]);
      const paid = charges
        .filter((e) => e.args.subscriber === c.address)
        .reduce((sum, e) => sum + e.args.amount, 0n);
      const lastFailure = failures.filter((e) => e.args.subscriber === c.address).at(-1);
      const lastReason = lastFailure === undefined ? notCharged.get(c.address) : chargeReasonName(lastFailure.args.reason);
      const [ok, reason] = chargeable;
      return [
        c.name,
        subscriptionStatusName(status),
        access ? "yes" : "no",
        sub.periodsPaid.toString(),
        amount(paid),
        next === 0n ? "—" : formatDate(next),
        lastReason ?? "—",
        ok ? "succeed now" : whyNot(reason),
      ];
    }),
  );
  const payee = await plan.payee();
  const revenue = await token.balanceOf(payee);

  console.log("");
  console.log(`On ${formatDate(END)}:`);
  const headers = ["customer", "status", "access", "charges", "total paid", "next charge", "last problem", "next charge would"];
  for (const row of formatTable(headers, rows, ["left", "left", "left", "right", "right"])) console.log(row);
  console.log("");
  console.log(
    `merchant revenue (payee balance): ${amount(revenue)} from ${charges.length.toString()} charges; ` +
      `${(failures.length + notCharged.size).toString()} customers could not pay when due, and nothing moved for them.`,
  );

  // ---------------------------------------------------------------------------------------------------
  // A USD-priced plan: same merchant, factory and keeper; the price is in USD, converted by a feed
  // ---------------------------------------------------------------------------------------------------

  const frankSigner = others[CAST.length];
  if (frankSigner === undefined) throw new Error(`need ${4 + CAST.length} accounts`);
  const frank = frankSigner.address;
  nameOf.set(frank, FRANK.name);
  const feed = (await ethers.deployContract("MockAggregator", [FEED_DECIMALS, FEED_START])) as unknown as MockAggregator;
  await feed.waitForDeployment();
  const feedDecimals = Number(await feed.decimals());
  const usd = (units: bigint): string => formatAmount(units, feedDecimals, "USD");
  const { plan: usdPlan } = await createPlan(
    ethers,
    factory,
    merchant,
    fixedTerms(await token.getAddress(), merchant.address, {
      price: USD_PRICE,
      period: 30n * DAY,
      trialPeriod: 0n,
      gracePeriod: 3n * DAY,
      priceFeed: await feed.getAddress(),
      maxPriceAge: DAY,
      allowanceBufferBps: 1_000n,
    }),
  );
  const usdPlanAddress = await usdPlan.getAddress();
  const [usdPrice, usdPeriod, usdGrace, [, maxPriceAge, bufferBps]] = await Promise.all([
    usdPlan.price(),
    usdPlan.period(),
    usdPlan.gracePeriod(),
    usdPlan.usdPricing(),
  ]);
  await token.mint(frank, ethers.parseUnits(FRANK.wallet, decimalsN));
  const frankAllowance = await usdPlan.requiredAllowance(FRANK.approvePeriods);
  await (await token.connect(frankSigner).approve(usdPlanAddress, frankAllowance)).wait();

  /** Prints the USD plan's events in `receipts`, with frank's status after. */
  async function reportUsd(...receipts: ContractTransactionReceipt[]): Promise<void> {
    for (const receipt of receipts) {
      const when = BigInt((await receipt.getBlock()).timestamp);
      for (const log of receipt.logs) {
        if (log.address !== usdPlanAddress) continue;
        const parsed = usdPlan.interface.parseLog(log);
        const described = parsed === null ? null : describeEvent(parsed.name, parsed.args);
        if (described === null) continue;
        line(when, who(described.subscriber), described.what, subscriptionStatusName(await usdPlan.statusOf(described.subscriber)));
      }
    }
  }
  /** Sets the feed's answer at `when` and prints what the plan now converts its price to. */
  async function feedAnswers(when: bigint, answer: bigint): Promise<void> {
    await time.setNextBlockTimestamp(when);
    await (await feed.setAnswer(answer)).wait();
    const [, , converted] = await usdPlan.chargeability(frank);
    line(when, "feed", `tUSDC at ${usd(answer)}: ${usd(usdPrice)} converts to ${amount(converted)}`, "");
  }
  /** A keeper pass at `when`; prints the USD plan's outcomes and the pass summary (all plans). */
  async function usdKeeperPass(when: bigint): Promise<string | undefined> {
    await time.increaseTo(when);
    const pass = await keeperPass();
    const receipts = await Promise.all(pass.txs.map(async (hash) => (await ethers.provider.getTransactionReceipt(hash))!));
    await reportUsd(...(receipts as unknown as ContractTransactionReceipt[]));
    const skipped = pass.skipped.find((k) => k.plan === usdPlanAddress && k.subscriber === frank);
    if (skipped !== undefined) {
      const why = whyNot(BigInt(ChargeReason[skipped.reason as keyof typeof ChargeReason]));
      line(when, FRANK.name, `not charged, re-check said ${why}`, subscriptionStatusName(await usdPlan.statusOf(frank)));
    }
    console.log(formatRow(["", "keeper", pass.line, ""], WIDTHS));
    return skipped?.reason;
  }

  console.log("");
  console.log("A USD-priced plan");
  console.log("");
  console.log(`plan ${shortAddress(usdPlanAddress)}, created by the merchant through the same PlanFactory:`);
  console.log(
    `  ${usd(usdPrice)} every ${formatDuration(usdPeriod)}, converted to ${symbol} at each charge by a price feed ` +
      `(answers at most ${formatDuration(maxPriceAge)} old), no trial, grace to pay ${formatDuration(usdGrace)}`,
  );
  console.log(
    `  ${FRANK.name} holds ${amount(await token.balanceOf(frank))} and approves requiredAllowance(${FRANK.approvePeriods.toString()}) = ` +
      `${amount(frankAllowance)} (${FRANK.approvePeriods.toString()} periods at today's rate + ${(Number(bufferBps) / 100).toString()}% buffer)`,
  );
  console.log("  The keeper finds this plan through the factory; its pass lines count the first plan's customers too.");
  console.log("");
  console.log(formatRow(["date", "who", "what the plan reported", "status after"], WIDTHS));

  // frank subscribes with maxAmount = what the plan converts its price to today.
  const [, , firstAmount] = await usdPlan.chargeability(frank);
  await reportUsd(await receiptOf(await usdPlan.connect(frankSigner).subscribe(firstAmount)));

  for (const answer of FEED_ANSWERS) {
    const due = await usdPlan.nextChargeAt(frank);
    await feedAnswers(due, answer);
    const refused = await usdKeeperPass(due + 1n);
    if (refused === undefined) continue;
    // frank raises his max to what the plan now converts to, within grace; the keeper retries a day later.
    await time.setNextBlockTimestamp(due + RAISE_AFTER);
    const [, , converted] = await usdPlan.chargeability(frank);
    await reportUsd(await receiptOf(await usdPlan.connect(frankSigner).setMaxAmount(converted)));
    await feedAnswers(due + RETRY_AFTER, answer);
    await usdKeeperPass(due + RETRY_AFTER + 1n);
  }

  const frankCharges = (await usdPlan.queryFilter(usdPlan.filters.Charged(frank))).map((e) => e.args.amount);
  const frankPaid = frankCharges.reduce((sum, a) => sum + a, 0n);
  const [frankStatus, frankNext] = await Promise.all([usdPlan.statusOf(frank), usdPlan.nextChargeAt(frank)]);

  console.log("");
  console.log(
    `On ${formatDate(BigInt(await time.latest()))}: ${FRANK.name} is ${subscriptionStatusName(frankStatus)}, ` +
      `${frankCharges.length.toString()} charges, total paid ${amount(frankPaid)} (${frankCharges.map((a) => formatAmount(a, decimalsN, "").trim()).join(" + ")}), ` +
      `next charge ${frankNext === 0n ? "—" : formatDate(frankNext)}.`,
  );

  // ---------------------------------------------------------------------------------------------------
  // A pay-as-you-go plan: usage billed in arrears by the merchant, from a file, after each cycle
  // ---------------------------------------------------------------------------------------------------

  const ginaSigner = others[CAST.length + 1];
  if (ginaSigner === undefined) throw new Error(`need ${5 + CAST.length} accounts`);
  const gina = ginaSigner.address;
  nameOf.set(gina, GINA.name);
  const { plan: meteredPlan } = await createMeteredPlan(
    ethers,
    factory,
    merchant,
    meteredTerms(await token.getAddress(), merchant.address, {
      period: 30n * DAY,
      gracePeriod: 3n * DAY,
      perCycleCap: ethers.parseUnits(METERED_CAP, decimalsN),
      freeCredits: ethers.parseUnits(METERED_CREDITS, decimalsN),
    }),
  );
  const meteredAddress = await meteredPlan.getAddress();
  const [cap, credits, cycle] = await Promise.all([meteredPlan.perCycleCap(), meteredPlan.freeCredits(), meteredPlan.period()]);
  await token.mint(gina, ethers.parseUnits(GINA.wallet, decimalsN));
  const ginaAllowance = await meteredPlan.requiredAllowance(GINA.approveCycles);
  await (await token.connect(ginaSigner).approve(meteredAddress, ginaAllowance)).wait();
  const ginaMax = ethers.parseUnits(GINA.maxAmount, decimalsN);

  /** Prints the metered plan's events in `receipts`, with gina's status after. */
  async function reportMetered(...receipts: ContractTransactionReceipt[]): Promise<void> {
    for (const receipt of receipts) {
      const when = BigInt((await receipt.getBlock()).timestamp);
      for (const log of receipt.logs) {
        if (log.address !== meteredAddress) continue;
        const parsed = meteredPlan.interface.parseLog(log);
        if (parsed === null) continue;
        let what: string | null;
        if (parsed.name === "UsageCharged") {
          const e = parsed.args as unknown as UsageChargedEvent.OutputObject;
          const part = (units: bigint) => formatAmount(units, decimalsN, "").trim();
          what = `cycle ${(e.cycleIndex + 1n).toString()} billed ${amount(e.usage)}: ${part(e.fromCredits)} credits + ${part(e.pulled)} pulled`;
        } else if (parsed.name === "CreditsGranted") {
          what = `granted ${amount((parsed.args as unknown as CreditsGrantedEvent.OutputObject).credits)} of free credits`;
        } else {
          what = describeEvent(parsed.name, parsed.args)?.what ?? null;
        }
        if (what !== null) line(when, who(gina), what, subscriptionStatusName(await meteredPlan.statusOf(gina)));
      }
    }
  }

  /** The merchant bills one cycle: writes gina's usage to a CSV file and runs `recur usage` on it,
   * in-process, with the merchant's key. Prints the plan's events, or the command's refusal. */
  const merchantKey = HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(HARDHAT_MNEMONIC), "m/44'/60'/0'/0/1").privateKey;
  async function submitUsage(when: bigint, usage: string, ref: string): Promise<void> {
    await time.setNextBlockTimestamp(when);
    await networkHelpers.mine();
    const file = path.join(storeDir, `${ref}.csv`);
    writeFileSync(file, `subscriber,usage,usageRef\n${gina},${ethers.parseUnits(usage, decimalsN).toString()},${ref}\n`);
    const out: string[] = [];
    const err: string[] = [];
    const sink = (into: string[]) =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const text of chunk.toString().split("\n")) if (text.trim() !== "" && !text.startsWith("{")) into.push(text);
          done();
        },
      });
    const io = { stdout: sink(out) as never, stderr: sink(err) as never, signal: new AbortController().signal };
    const env = { ...keeperEnv, RECUR_PRIVATE_KEY: merchantKey, RECUR_USAGE_JOURNAL: path.join(storeDir, "usage.sqlite"), RECUR_LOG_LEVEL: "warn" };
    const code = await keeperMain(["usage", "--plan", meteredAddress, "--file", file, "--yes"], env, io);
    line(when, "merchant", `recur usage ${path.basename(file)} (${GINA.name}: ${usage} ${symbol})`, "");
    if (code !== 0) {
      for (const text of err) {
        const shown = text.replace(/^recur: /, "").replace(file, path.basename(file)).replace(gina, GINA.name);
        console.log(formatRow(["", "", shown, ""], WIDTHS));
      }
      return;
    }
    const blocks = await Promise.all(out.flatMap((text) => /^transaction (0x[0-9a-f]+) /.exec(text)?.[1] ?? []).map((hash) => ethers.provider.getTransactionReceipt(hash)));
    await reportMetered(...(blocks as unknown as ContractTransactionReceipt[]));
  }

  console.log("");
  console.log("A pay-as-you-go plan");
  console.log("");
  console.log(`plan ${shortAddress(meteredAddress)}, created by the merchant through the same PlanFactory:`);
  console.log(
    `  metered: usage billed in arrears after each ${formatDuration(cycle)} cycle, at most ${amount(cap)} per cycle, ` +
      `${amount(credits)} of free credits for each new customer, ${formatDuration(await meteredPlan.gracePeriod())} to bill a cycle`,
  );
  console.log(
    `  ${GINA.name} holds ${amount(await token.balanceOf(gina))}, approves requiredAllowance(${GINA.approveCycles.toString()}) = ${amount(ginaAllowance)} ` +
      `(${GINA.approveCycles.toString()} cycles at the cap) and caps each bill at ${amount(ginaMax)}`,
  );
  console.log("  The keeper never bills it: after each cycle the merchant runs `recur usage` on a CSV file,");
  console.log("  which checks every row on-chain before it sends anything.");
  console.log("");
  console.log(formatRow(["date", "who", "what the plan reported", "status after"], WIDTHS));

  await reportMetered(await receiptOf(await meteredPlan.connect(ginaSigner).subscribe(ginaMax)));
  for (const [i, usage] of GINA_USAGE.entries()) {
    const end = (await meteredPlan.subscriptionOf(gina)).nextChargeAt;
    const ref = `${GINA.name}-cycle-${(i + 1).toString()}`;
    // The first time, the merchant's file goes in a day early: refused whole, nothing sent.
    if (i === 0) await submitUsage(end - DAY, usage, ref);
    await submitUsage(end + BILL_AFTER, usage, ref);
  }

  const bills = await meteredPlan.queryFilter(meteredPlan.filters.UsageCharged(gina));
  const ginaPaid = bills.reduce((sum, e) => sum + e.args.pulled, 0n);
  const ginaUsage = bills.reduce((sum, e) => sum + e.args.usage, 0n);
  await bridge.close();
  rmSync(storeDir, { recursive: true, force: true });
  console.log("");
  console.log(
    `On ${formatDate(BigInt(await time.latest()))}: ${GINA.name} is ${subscriptionStatusName(await meteredPlan.statusOf(gina))}, ` +
      `${bills.length.toString()} cycles billed, usage ${amount(ginaUsage)}, paid ${amount(ginaPaid)}, ` +
      `credits left ${amount(await meteredPlan.creditsOf(gina))}, next cycle ends ${formatDate(await meteredPlan.nextChargeAt(gina))}.`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/** The earliest `nextChargeAt` still ahead of `now` among `subscribers`, if any (the view returns 0 for
 * "nothing scheduled", and a past time for a subscription already due). */
async function nextDueTime(
  plan: FixedPricePlan,
  subscribers: readonly string[],
  now: bigint,
): Promise<bigint | undefined> {
  const dues = await Promise.all(subscribers.map((s) => plan.nextChargeAt(s)));
  const ahead = dues.filter((t) => t > now);
  return ahead.reduce<bigint | undefined>((a, b) => (a === undefined || b < a ? b : a), undefined);
}

/** `chargeability`'s reason, with what the customer can do about it when it is up to them. */
function whyNot(reason: bigint): string {
  const name = chargeReasonName(reason);
  if (reason === BigInt(ChargeReason.NotDue)) return "succeed when due";
  const final = [ChargeReason.Expired, ChargeReason.Cancelled, ChargeReason.NotSubscribed, ChargeReason.PlanRetired];
  if (final.some((r) => BigInt(r) === reason)) return `never happen: ${name}`;
  if (reason === BigInt(ChargeReason.AllowanceTooLow)) return `${name}: approve more`;
  if (reason === BigInt(ChargeReason.BalanceTooLow)) return `${name}: top up wallet`;
  if (reason === BigInt(ChargeReason.MaxAmountExceeded)) return `${name}: raise max`;
  return name;
}

async function receiptOf(tx: ContractTransactionResponse): Promise<ContractTransactionReceipt> {
  const receipt = await tx.wait();
  if (receipt === null) throw new Error(`no receipt for ${tx.hash}`);
  return receipt;
}

/** One line for an error: a decoded contract error when there is one, else the message's first line. */
function describeError(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const revert = (error as { revert?: { name?: string; args?: readonly unknown[] } | null }).revert;
    if (revert?.name !== undefined) return `${revert.name}(${(revert.args ?? []).map(String).join(", ")})`;
    const short = (error as { shortMessage?: unknown }).shortMessage;
    if (typeof short === "string") return short;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}

try {
  await main();
} catch (error) {
  console.error(`demo failed: ${describeError(error)}`);
  process.exitCode = 1;
}

// A billing scenario on a real node: a token, the factory, plans, and subscribed customers.
import { expect } from "chai";
import { Wallet } from "ethers";
import type { Contract, HDNodeWallet, Signer } from "ethers";

import { meteredTerms } from "../../../scripts/lib/plans.ts";
import { accounts, accountKey, at, deploy } from "./chain.ts";
import type { Node } from "./chain.ts";

export const PRICE = 10_000_000n;
export const DAY = 86_400n;
export const PERIOD = 30n * DAY;
export const GRACE = 3n * DAY;
const ZERO = "0x0000000000000000000000000000000000000000";

export interface Scenario {
  token: Contract;
  factory: Contract;
  factoryBlock: bigint;
  plans: Contract[];
  merchant: Signer;
  /** Funds new wallets (Hardhat account 0, through a NonceManager: `reset()` it after `evm_revert`). */
  deployer: Signer;
  /** every subscriber's wallet, by lowercase address */
  wallets: Map<string, HDNodeWallet>;
  keeperKey: string;
  keeperAddress: string;
  /** subscribers per plan, in subscription order */
  subscribers: Map<string, string[]>;
  env(extra?: Record<string, string>): Record<string, string>;
}

export function terms(token: string, payee: string, overrides: Record<string, unknown> = {}) {
  return {
    token, payee, price: PRICE, period: PERIOD, trialPeriod: 0n, gracePeriod: GRACE, billingMode: 0,
    keeperRestricted: false, keeperFeeBps: 0n, perCycleCap: 0n, priceFeed: ZERO, maxPriceAge: 0n, allowanceBufferBps: 0n, freeCredits: 0n,
    ...overrides,
  };
}

/** Deploys the token and factory, creates `planCount` plans, and subscribes `perPlan` fresh wallets to each. */
export async function setUp(node: Node, options: { planCount?: number; perPlan?: number; storePath: string }): Promise<Scenario> {
  const [deployer, merchant] = accounts(node.provider, 2);
  const token = await deploy("TestUSDC", deployer!);
  const factory = await deploy("PlanFactory", deployer!);
  const factoryBlock = BigInt((await factory.deploymentTransaction()!.wait())!.blockNumber);
  const plans: Contract[] = [];
  const subscribers = new Map<string, string[]>();
  const wallets = new Map<string, HDNodeWallet>();
  const merchantAddress = await merchant!.getAddress();
  for (let p = 0; p < (options.planCount ?? 2); p++) {
    const tx = await (factory.connect(merchant!) as Contract).getFunction("createPlan")(terms(await token.getAddress(), merchantAddress));
    const receipt = await tx.wait();
    const event = receipt.logs.map((l: { topics: string[]; data: string }) => factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
    const plan = at("FixedPricePlan", event.args.plan as string, merchant!);
    plans.push(plan);
    subscribers.set((await plan.getAddress()).toLowerCase(), []);
  }
  for (const plan of plans) {
    const planAddress = await plan.getAddress();
    const list = subscribers.get(planAddress.toLowerCase())!;
    for (let i = 0; i < (options.perPlan ?? 3); i++) {
      const wallet = await subscribeNew(node, token, deployer!, plan);
      list.push(wallet.address.toLowerCase());
      wallets.set(wallet.address.toLowerCase(), wallet);
    }
  }
  const keeperKey = accountKey(5);
  const keeperAddress = new Wallet(keeperKey).address.toLowerCase();
  return {
    token, factory, factoryBlock, plans, merchant: merchant!, deployer: deployer!, wallets, keeperKey, keeperAddress, subscribers,
    env: (extra = {}) => ({
      RECUR_RPC_URL: node.url,
      RECUR_CHAIN_ID: "31337",
      RECUR_FACTORY: String(factory.target),
      RECUR_FACTORY_BLOCK: factoryBlock.toString(),
      RECUR_PRIVATE_KEY: keeperKey,
      RECUR_CONFIRMATIONS: "1",
      RECUR_STORE: options.storePath,
      RECUR_TX_TIMEOUT: "30",
      // A daemon's listener on a free port: tests (and other runs on the machine) never fight over one.
      RECUR_METRICS_PORT: "0",
      ...extra,
    }),
  };
}

/** A new wallet with ETH for gas and 1,000 prices of tokens. */
export async function fundedWallet(node: Node, token: Contract, funder: Signer) {
  const wallet = Wallet.createRandom().connect(node.provider);
  await (await funder.sendTransaction({ to: wallet.address, value: 10n ** 18n })).wait();
  await (await (token.connect(funder) as Contract).getFunction("mint")(wallet.address, 1_000n * PRICE)).wait();
  return wallet;
}

/** A new funded wallet that approves 12 prices to `plan` and subscribes (paying the first period): 4 blocks. */
export async function subscribeNew(node: Node, token: Contract, funder: Signer, plan: Contract) {
  const wallet = await fundedWallet(node, token, funder);
  await (await (token.connect(wallet) as Contract).getFunction("approve")(await plan.getAddress(), 12n * PRICE)).wait();
  await (await (plan.connect(wallet) as Contract).getFunction("subscribe")(PRICE)).wait();
  return wallet;
}

/** Every (plan, subscriber) of the scenario, as "plan:subscriber" keys (lowercase). */
export function allKeys(s: Scenario): string[] {
  return [...s.subscribers].flatMap(([plan, list]) => list.map((who) => `${plan}:${who}`));
}

export interface Ledger {
  /** periodsPaid per "plan:subscriber" */
  periodsPaid: Map<string, bigint>;
  /** token balance per subscriber */
  balances: Map<string, bigint>;
  payee: bigint;
}

/** What the chain says now about the scenario's subscriptions and money (plus any `extra` keys). */
export async function ledger(s: Scenario, extra: string[] = []): Promise<Ledger> {
  const periodsPaid = new Map<string, bigint>();
  const balances = new Map<string, bigint>();
  const balanceOf = s.token.getFunction("balanceOf");
  for (const key of [...allKeys(s), ...extra]) {
    const [plan, who] = key.split(":") as [string, string];
    const sub = (await s.plans.find((p) => String(p.target).toLowerCase() === plan)!.getFunction("subscriptionOf")(who)) as { periodsPaid: bigint };
    periodsPaid.set(key, sub.periodsPaid);
    balances.set(who, (await balanceOf(who)) as bigint);
  }
  return { periodsPaid, balances, payee: (await balanceOf(await s.merchant.getAddress())) as bigint };
}

/** Asserts on-chain that exactly the subscriptions in `charged` paid one more period since `before`
 * (each exactly once: periodsPaid + 1, balance - price), every other one is untouched, and the payee
 * received exactly price × |charged|. */
export async function expectChargedOnce(s: Scenario, before: Ledger, charged: Iterable<string>, extra: string[] = []): Promise<void> {
  const expected = new Set(charged);
  const after = await ledger(s, extra);
  for (const [key, paid] of after.periodsPaid) {
    const delta = expected.has(key) ? 1n : 0n;
    expect(paid, `periodsPaid of ${key}`).to.equal(before.periodsPaid.get(key)! + delta);
    const who = key.split(":")[1]!;
    expect(after.balances.get(who), `token balance of ${who}`).to.equal(before.balances.get(who)! - delta * PRICE);
  }
  for (const key of expected) expect(after.periodsPaid.has(key), `${key} is a subscription of the scenario`).to.equal(true);
  expect(after.payee, "payee balance").to.equal(before.payee + BigInt(expected.size) * PRICE);
}

/** Creates a metered plan through the scenario's factory, as the merchant, with `meteredTerms` from
 * scripts/lib/plans.ts (30-day cycles, 3-day grace, a cap of 100.000000 per cycle, no free credits unless
 * overridden); returns it as a MeteredPlan contract connected to the merchant. */
export async function createMeteredPlan(s: Scenario, overrides: Parameters<typeof meteredTerms>[2] = {}): Promise<Contract> {
  const createPlan = (s.factory.connect(s.merchant) as Contract).getFunction("createPlan");
  const receipt = await (await createPlan(meteredTerms(String(s.token.target), await s.merchant.getAddress(), overrides))).wait();
  const event = receipt.logs.map((l: { topics: string[]; data: string }) => s.factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
  return at("MeteredPlan", event.args.plan as string, s.merchant);
}

/** A new funded wallet (ETH, 1,000 prices of tokens) that approves `allowance` to the metered `plan` and
 * subscribes with `maxAmount`: nothing moves, its first cycle starts now. */
export async function subscribeMetered(node: Node, s: Scenario, plan: Contract, options: { maxAmount: bigint; allowance: bigint }) {
  const wallet = await fundedWallet(node, s.token, s.deployer);
  await (await (s.token.connect(wallet) as Contract).getFunction("approve")(await plan.getAddress(), options.allowance)).wait();
  await (await (plan.connect(wallet) as Contract).getFunction("subscribe")(options.maxAmount)).wait();
  return wallet;
}

// Test-only helpers: a local stack (token, factory, plan) with funded customers, and small readers for
// balances and stored subscriptions. Billing logic lives in the contracts; nothing here decides a rule.
import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import hre from "hardhat";

import { createPlan, DAY, deployFactory, fixedTerms } from "../../scripts/lib/plans.js";
import type { PlanTermsStruct } from "../../typechain-types/contracts/PlanFactory.js";
import type { FixedPricePlan, MeteredPlan, PlanFactory, TestUSDC } from "../../typechain-types/index.js";

/**
 * Whether the tests run under `hardhat test --coverage`, whose instrumented contracts use more gas: the
 * tests that scan gas limits for a starved token call skip themselves there (they run in `npm test`).
 */
export const UNDER_COVERAGE = hre.globalOptions.coverage === true;

/** The defaults of `fixedTerms`, spelled out so that tests can compute expected times and amounts. */
export const PRICE = 10_000_000n;
export const PERIOD = 30n * DAY;
export const GRACE = 3n * DAY;
export const TRIAL = 7n * DAY;
/** What each funded customer holds and allows the plan: far more than any test charges. */
export const FUNDS = 1_000n * PRICE;
export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
export const UINT96_MAX = 2n ** 96n - 1n;

export type TokenKind = "TestUSDC" | "NoReturnToken" | "FalseReturnToken" | "BlocklistToken" | "BrokenViewsToken";

export interface Actors {
  deployer: HardhatEthersSigner;
  merchant: HardhatEthersSigner;
  payee: HardhatEthersSigner;
  alice: HardhatEthersSigner;
  bob: HardhatEthersSigner;
  carol: HardhatEthersSigner;
  dave: HardhatEthersSigner;
  keeper: HardhatEthersSigner;
  stranger: HardhatEthersSigner;
  newPayee: HardhatEthersSigner;
}

export async function actors(ethers: HardhatEthers): Promise<Actors> {
  const [deployer, merchant, payee, alice, bob, carol, dave, keeper, stranger, newPayee] = await ethers.getSigners();
  if (!deployer || !merchant || !payee || !alice || !bob || !carol || !dave || !keeper || !stranger || !newPayee) {
    throw new Error("the test network needs at least 10 accounts");
  }
  return { deployer, merchant, payee, alice, bob, carol, dave, keeper, stranger, newPayee };
}

export interface Stack {
  actors: Actors;
  /**
   * The plan's token, seen through the TestUSDC ABI: every mock shares `mint`, `approve`, `allowance`
   * and `balanceOf`, and a transaction's return value is not decoded, so this handle drives them all.
   */
  token: TestUSDC;
  tokenAddress: string;
  factory: PlanFactory;
  plan: FixedPricePlan;
  planAddress: string;
}

export interface StackOptions {
  token?: TokenKind;
  terms?: Partial<PlanTermsStruct>;
  /** Customers given FUNDS and an allowance of FUNDS to the plan (default: alice, bob, carol). */
  funded?: (keyof Actors)[];
}

/** Token, factory and one plan owned by `merchant`, paying `payee`; customers funded and approved. */
export async function deployStack(ethers: HardhatEthers, options: StackOptions = {}): Promise<Stack> {
  const who = await actors(ethers);
  const kind = options.token ?? "TestUSDC";
  const deployed = await ethers.deployContract(kind);
  await deployed.waitForDeployment();
  const tokenAddress = await deployed.getAddress();
  const token = await ethers.getContractAt("TestUSDC", tokenAddress);
  const factory = await deployFactory(ethers);
  const { plan } = await createPlan(
    ethers,
    factory,
    who.merchant,
    fixedTerms(tokenAddress, who.payee.address, options.terms ?? {}),
  );
  const planAddress = await plan.getAddress();
  for (const name of options.funded ?? ["alice", "bob", "carol"]) {
    await fund(token, who[name], planAddress);
  }
  return { actors: who, token, tokenAddress, factory, plan, planAddress };
}

/** Mints `balance` to `account` and has it approve `spender` for `allowance`. */
export async function fund(
  token: TestUSDC,
  account: HardhatEthersSigner,
  spender: string,
  balance: bigint = FUNDS,
  allowance: bigint = balance,
): Promise<void> {
  if (balance > 0n) await token.mint(account.address, balance);
  await token.connect(account).approve(spender, allowance);
}

/** Token balances of `accounts`, in order. */
export async function balances(token: TestUSDC, accounts: readonly { address: string }[]): Promise<bigint[]> {
  return Promise.all(accounts.map((a) => token.balanceOf(a.address)));
}

/** A stored subscription as a plain object, so that two readings compare with `deep.equal`. */
export interface StoredSubscription {
  maxAmount: bigint;
  nextChargeAt: bigint;
  startedAt: bigint;
  pausedAt: bigint;
  periodsPaid: bigint;
  flags: bigint;
}

export async function stored(plan: FixedPricePlan | MeteredPlan, subscriber: string): Promise<StoredSubscription> {
  const s = await plan.subscriptionOf(subscriber);
  return {
    maxAmount: s.maxAmount,
    nextChargeAt: s.nextChargeAt,
    startedAt: s.startedAt,
    pausedAt: s.pausedAt,
    periodsPaid: s.periodsPaid,
    flags: s.flags,
  };
}

/** Subscribes `account` with a max amount of `maxAmount` and returns the stored subscription. */
export async function subscribe(
  plan: FixedPricePlan | MeteredPlan,
  account: HardhatEthersSigner,
  maxAmount: bigint = PRICE,
): Promise<StoredSubscription> {
  await (await plan.connect(account).subscribe(maxAmount)).wait();
  return stored(plan, account.address);
}

/** The timestamp of the block that included `tx`. */
export async function minedAt(
  ethers: HardhatEthers,
  tx: { wait(): Promise<{ blockNumber: number } | null> },
): Promise<bigint> {
  const receipt = await tx.wait();
  if (receipt === null) throw new Error("no receipt");
  const block = await ethers.provider.getBlock(receipt.blockNumber);
  if (block === null) throw new Error("no block");
  return BigInt(block.timestamp);
}

/** Names of the plan events in a receipt, with their arguments, for "this event was never emitted". */
export function planEvents(
  plan: FixedPricePlan | MeteredPlan,
  planAddress: string,
  receipt: { logs: readonly { address: string; topics: readonly string[]; data: string }[] },
): { name: string; args: unknown[] }[] {
  const events: { name: string; args: unknown[] }[] = [];
  for (const log of receipt.logs) {
    if (log.address.toLowerCase() !== planAddress.toLowerCase()) continue;
    const parsed = plan.interface.parseLog({ topics: [...log.topics], data: log.data });
    if (parsed !== null) events.push({ name: parsed.name, args: [...parsed.args] });
  }
  return events;
}

/** `deployStack` with alice subscribed to the 30-day plan without trial: her first period is paid, the
 * next is due at `due`. */
export async function subscribedStack(ethers: HardhatEthers) {
  const stack = await deployStack(ethers);
  const sub = await subscribe(stack.plan, stack.actors.alice);
  return { ...stack, ...stack.actors, sub, due: sub.nextChargeAt };
}

/** The custom error name in a failed transaction's error, "OutOfGas" for a revert without data. */
export function revertName(iface: { parseError(data: string): { name: string } | null }, error: unknown): string {
  for (const data of revertDataCandidates(error)) {
    if (data === "0x") return "OutOfGas";
    try {
      const parsed = iface.parseError(data);
      if (parsed !== null) return parsed.name;
    } catch {
      // not this one
    }
  }
  return "Unknown";
}

function revertDataCandidates(error: unknown): string[] {
  const found: string[] = [];
  const visit = (value: unknown, depth: number) => {
    if (depth > 4 || value === null || typeof value !== "object") return;
    const record = value as Record<string, unknown>;
    for (const key of ["data", "error", "info", "cause"]) {
      const inner = record[key];
      if (typeof inner === "string" && inner.startsWith("0x")) found.push(inner);
      else visit(inner, depth + 1);
    }
  };
  visit(error, 0);
  return found;
}

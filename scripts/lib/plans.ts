// Shared by the demo, the benchmarks and the tests: how a plan's terms are written down and how a
// local stack (token, factory, plan) is put up. No billing logic lives here: the contracts own it.
import type { ContractTransactionResponse, Signer } from "ethers";
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";

import type { PlanTermsStruct } from "../../typechain-types/contracts/PlanFactory.js";
import type { FixedPricePlan, MeteredPlan, PlanFactory, TestUSDC } from "../../typechain-types/index.js";

export const DAY = 86_400n;
export const BillingMode = { Fixed: 0, Metered: 1 } as const;
export const PlanStatus = { Active: 0, OnHold: 1, Retired: 2 } as const;
export const SubscriptionStatus = {
  None: 0,
  Trialing: 1,
  Active: 2,
  PastDue: 3,
  Paused: 4,
  Cancelled: 5,
  Expired: 6,
} as const;
export const ChargeReason = {
  Ok: 0,
  NotSubscribed: 1,
  NotDue: 2,
  Paused: 3,
  Cancelled: 4,
  Expired: 5,
  PlanRetired: 6,
  MaxAmountExceeded: 7,
  AllowanceTooLow: 8,
  BalanceTooLow: 9,
  TransferFailed: 10,
  PriceStale: 11,
  UsageAboveCap: 12,
} as const;

export const subscriptionStatusName = (code: bigint | number): string =>
  Object.keys(SubscriptionStatus)[Number(code)] ?? `Unknown(${code})`;
export const chargeReasonName = (code: bigint | number): string =>
  Object.keys(ChargeReason)[Number(code)] ?? `Unknown(${code})`;

/** Terms of a fixed, token-priced plan: 30-day period, 3-day grace, no trial unless overridden. */
export function fixedTerms(token: string, payee: string, overrides: Partial<PlanTermsStruct> = {}): PlanTermsStruct {
  return {
    token,
    payee,
    price: 10_000_000n, // 10.000000 of a 6-decimal token
    period: 30n * DAY,
    trialPeriod: 0n,
    gracePeriod: 3n * DAY,
    billingMode: BillingMode.Fixed,
    keeperRestricted: false,
    keeperFeeBps: 0n,
    perCycleCap: 0n,
    priceFeed: "0x0000000000000000000000000000000000000000",
    maxPriceAge: 0n,
    allowanceBufferBps: 0n,
    freeCredits: 0n,
    ...overrides,
  };
}

/** Terms of a metered (pay-as-you-go) plan: 30-day cycles, 3-day grace to bill them, a cap of 100.000000
 * per cycle and no free credits unless overridden; every fixed-plan term 0. */
export function meteredTerms(token: string, payee: string, overrides: Partial<PlanTermsStruct> = {}): PlanTermsStruct {
  return fixedTerms(token, payee, {
    price: 0n,
    billingMode: BillingMode.Metered,
    perCycleCap: 100_000_000n,
    ...overrides,
  });
}

export async function deployToken(ethers: HardhatEthers): Promise<TestUSDC> {
  const token = await ethers.deployContract("TestUSDC");
  await token.waitForDeployment();
  return token as unknown as TestUSDC;
}

export async function deployFactory(ethers: HardhatEthers): Promise<PlanFactory> {
  const factory = await ethers.deployContract("PlanFactory");
  await factory.waitForDeployment();
  return factory as unknown as PlanFactory;
}

/** Creates a plan through `factory` as `merchant` and returns its address with the creation transaction. */
async function createPlanAt(
  factory: PlanFactory,
  merchant: Signer,
  terms: PlanTermsStruct,
): Promise<{ address: string; tx: ContractTransactionResponse }> {
  const tx = await factory.connect(merchant).createPlan(terms);
  const receipt = await tx.wait();
  if (receipt === null) throw new Error("createPlan: no receipt");
  for (const log of receipt.logs) {
    const parsed = factory.interface.parseLog(log);
    if (parsed?.name === "PlanCreated") return { address: parsed.args.plan as string, tx };
  }
  throw new Error("createPlan: no PlanCreated event");
}

/** Creates a fixed plan through `factory` as `merchant` and returns it with the creation transaction. */
export async function createPlan(
  ethers: HardhatEthers,
  factory: PlanFactory,
  merchant: Signer,
  terms: PlanTermsStruct,
): Promise<{ plan: FixedPricePlan; tx: ContractTransactionResponse }> {
  const { address, tx } = await createPlanAt(factory, merchant, terms);
  return { plan: (await ethers.getContractAt("FixedPricePlan", address)) as unknown as FixedPricePlan, tx };
}

/** Creates a metered plan through `factory` as `merchant` and returns it with the creation transaction. */
export async function createMeteredPlan(
  ethers: HardhatEthers,
  factory: PlanFactory,
  merchant: Signer,
  terms: PlanTermsStruct,
): Promise<{ plan: MeteredPlan; tx: ContractTransactionResponse }> {
  const { address, tx } = await createPlanAt(factory, merchant, terms);
  return { plan: (await ethers.getContractAt("MeteredPlan", address)) as unknown as MeteredPlan, tx };
}

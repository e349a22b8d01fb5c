// A billing scenario on a real node: a token, the factory, plans, and subscribed customers.
import { Wallet } from "ethers";
import type { Contract, Signer } from "ethers";

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
  keeperKey: string;
  keeperAddress: string;
  /** subscribers per plan, in subscription order */
  subscribers: Map<string, string[]>;
  env(extra?: Record<string, string>): Record<string, string>;
}

export function terms(token: string, payee: string, overrides: Record<string, unknown> = {}) {
  return {
    token, payee, price: PRICE, period: PERIOD, trialPeriod: 0n, gracePeriod: GRACE, billingMode: 0,
    keeperRestricted: false, keeperFeeBps: 0n, perCycleCap: 0n, priceFeed: ZERO, maxPriceAge: 0n, allowanceBufferBps: 0n,
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
      const wallet = await fundedWallet(node, token, deployer!);
      await (await (token.connect(wallet) as Contract).getFunction("approve")(planAddress, 12n * PRICE)).wait();
      await (await (plan.connect(wallet) as Contract).getFunction("subscribe")(PRICE)).wait();
      list.push(wallet.address.toLowerCase());
    }
  }
  const keeperKey = accountKey(5);
  const keeperAddress = new Wallet(keeperKey).address.toLowerCase();
  return {
    token, factory, factoryBlock, plans, merchant: merchant!, keeperKey, keeperAddress, subscribers,
    env: (extra = {}) => ({
      RECUR_RPC_URL: node.url,
      RECUR_CHAIN_ID: "31337",
      RECUR_FACTORY: String(factory.target),
      RECUR_FACTORY_BLOCK: factoryBlock.toString(),
      RECUR_PRIVATE_KEY: keeperKey,
      RECUR_CONFIRMATIONS: "1",
      RECUR_STORE: options.storePath,
      RECUR_TX_TIMEOUT: "30",
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

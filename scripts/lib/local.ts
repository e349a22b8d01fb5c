// The steps of scripts/local.ts (a merchant's first hour against `npx hardhat node`), over plain ethers
// signers so that a test runs them against its own node. Each step says what it did through `say`; none
// decides a billing outcome: the plan contract does.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Contract, ContractFactory, encodeBytes32String, formatUnits, getAddress, isAddress } from "ethers";
import type { Signer } from "ethers";

import type { FixedPricePlan, TestUSDC } from "../../typechain-types/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Hardhat's well-known account #1 and #2 keys (mnemonic "test test … junk"). PUBLIC TEST KEYS: anyone
 * can take what they hold on any real chain. For the local node only; on a real chain use RECUR_KEYSTORE. */
export const MERCHANT_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
export const KEEPER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

/** What each customer account is given: 1,000 tUSDC. */
export const MINT = 1_000_000_000n;

export type Say = (line: string) => void;

function artifact(file: string): { abi: unknown[]; bytecode: string } {
  return JSON.parse(readFileSync(path.join(ROOT, "artifacts", file), "utf8")) as { abi: unknown[]; bytecode: string };
}

async function deploy(file: string, signer: Signer): Promise<{ contract: Contract; block: number }> {
  const { abi, bytecode } = artifact(file);
  const contract = (await new ContractFactory(abi as never, bytecode, signer).deploy()) as Contract;
  const receipt = await contract.deploymentTransaction()?.wait();
  if (receipt === null || receipt === undefined) throw new Error(`${file}: no deployment receipt`);
  return { contract, block: receipt.blockNumber };
}

export interface LocalStack {
  token: string;
  factory: string;
  factoryBlock: number;
}

/** Deploys tUSDC (6 decimals) and the PlanFactory as `deployer`, and mints MINT tUSDC to each holder. */
export async function deployLocal(deployer: Signer, holders: readonly string[], say: Say): Promise<LocalStack> {
  const token = (await deploy("test/mocks/TestUSDC.sol/TestUSDC.json", deployer)).contract as unknown as TestUSDC;
  const factory = await deploy("contracts/PlanFactory.sol/PlanFactory.json", deployer);
  const stack = { token: await token.getAddress(), factory: await factory.contract.getAddress(), factoryBlock: factory.block };
  say(`Deployed the test token tUSDC (6 decimals) at ${stack.token}.`);
  say(`Deployed the PlanFactory at ${stack.factory} (block ${stack.factoryBlock}).`);
  for (const holder of holders) await (await token.mint(holder, MINT)).wait();
  say(`Minted ${formatUnits(MINT, 6).replace(/\.0$/, "")} tUSDC to each of ${holders.length} accounts (the customers).`);
  return stack;
}

export const ENV_FILES = [".env", "keeper.env"] as const;

/** The merchant's .env and the keeper's keeper.env: the same settings, each with its own key. */
export function envFiles(stack: LocalStack, rpcUrl = "http://127.0.0.1:8545"): { ".env": string; "keeper.env": string } {
  const shared = [
    `RECUR_RPC_URL=${rpcUrl}`,
    "RECUR_CHAIN_ID=31337",
    `RECUR_FACTORY=${stack.factory}`,
    `RECUR_FACTORY_BLOCK=${stack.factoryBlock}`,
    `RECUR_TOKENS=tUSDC=${stack.token}`,
    "RECUR_CONFIRMATIONS=1",
    "RECUR_STORE=recur.sqlite",
  ].join("\n");
  const warning = "# PUBLIC TEST KEY (Hardhat's well-known account #N): for the local node only. On a real chain use\n# RECUR_KEYSTORE and RECUR_KEYSTORE_PASSWORD instead, never a key in a file.";
  return {
    ".env": `# Written by scripts/local.ts: the merchant's settings for \`npm run recur -- …\` against npx hardhat node.\n${shared}\n${warning.replace("#N", "#1, the merchant")}\nRECUR_PRIVATE_KEY=${MERCHANT_KEY}\n`,
    "keeper.env": `# Written by scripts/local.ts: the keeper's settings (\`npm run recur -- run --once --env-file keeper.env\`).\n${shared}\n${warning.replace("#N", "#2, the keeper")}\nRECUR_PRIVATE_KEY=${KEEPER_KEY}\n`,
  };
}

/** Whether the env files may be written in `dir`: false (and one line said) if any exists, unless `force`. */
export function mayWriteEnvFiles(dir: string, force: boolean, say: Say): boolean {
  const existing = ENV_FILES.filter((name) => existsSync(path.join(dir, name)));
  if (existing.length === 0 || force) return true;
  say(`local: ${existing.join(" and ")} already exist${existing.length === 1 ? "s" : ""} in ${dir}: nothing done; move ${existing.length === 1 ? "it" : "them"} away, or set RECUR_LOCAL_FORCE=1 to overwrite`);
  return false;
}

/** Writes the env files into `dir` (owner-readable only: they hold keys). */
export function writeEnvFiles(dir: string, files: Record<(typeof ENV_FILES)[number], string>, say: Say): void {
  for (const name of ENV_FILES) writeFileSync(path.join(dir, name), files[name], { mode: 0o600 });
  say(`Wrote .env (the merchant's settings and key) and keeper.env (the keeper's) in ${dir}.`);
}

/** Subscribes three customers to the fixed, token-priced `planAddress`: one plainly, one with a ref, and
 * one whose allowance is too low for its first charge (it will fail: AllowanceTooLow). */
export async function subscribeCustomers(planAddress: string, customers: readonly [Signer, Signer, Signer], say: Say): Promise<void> {
  if (!isAddress(planAddress)) throw new Error(`RECUR_LOCAL_SUBSCRIBE: expected the plan's 0x-prefixed address, got "${planAddress}"`);
  const plan = new Contract(getAddress(planAddress), artifact("contracts/FixedPricePlan.sol/FixedPricePlan.json").abi as never, customers[0]) as unknown as FixedPricePlan;
  const [token, price, trial, mode, [feed]] = await Promise.all([plan.token(), plan.price(), plan.trialPeriod(), plan.billingMode(), plan.usdPricing()]);
  if (mode !== 0n || feed !== "0x0000000000000000000000000000000000000000") {
    throw new Error("RECUR_LOCAL_SUBSCRIBE: expected a fixed plan priced in token units (this script does not subscribe to metered or USD-priced plans)");
  }
  const tusdc = new Contract(token, artifact("test/mocks/TestUSDC.sol/TestUSDC.json").abi as never) as unknown as TestUSDC;
  const units = (n: bigint) => `${formatUnits(n, 6)} tUSDC`;
  const ref = "order-1042";
  // Without a trial the first period is pulled at once, so the short allowance covers that one only.
  const short = trial > 0n ? price / 2n : price;
  const plans: { allowance: bigint; subscribe: (p: FixedPricePlan) => Promise<{ wait(): Promise<unknown> }>; what: string }[] = [
    { allowance: 12n * price, subscribe: (p) => p.subscribe(price), what: `approved ${units(12n * price)} and subscribed` },
    { allowance: 12n * price, subscribe: (p) => p.subscribeWithRef(price, encodeBytes32String(ref)), what: `approved ${units(12n * price)} and subscribed with the ref "${ref}"` },
    { allowance: short, subscribe: (p) => p.subscribe(price), what: `approved only ${units(short)} and subscribed: its charge will not go through (AllowanceTooLow)` },
  ];
  for (const [i, customer] of customers.entries()) {
    const step = plans[i]!;
    await (await tusdc.connect(customer).approve(await plan.getAddress(), step.allowance)).wait();
    await (await step.subscribe(plan.connect(customer))).wait();
    say(`Customer ${await customer.getAddress()} ${step.what}.`);
  }
  say(trial > 0n ? `Their first charge is due when the ${trial / 86_400n}-day trial ends.` : "Each paid the first period now.");
}

/** Seconds in "31d", "12h", "90m", "45s" or a plain number of seconds. */
export function parseDuration(variable: string, raw: string): number {
  const match = /^(\d+)([dhms]?)$/.exec(raw.trim());
  if (match === null) throw new Error(`${variable}: expected a duration like 31d, 12h, 90m or 45s, got "${raw}"`);
  return Number(match[1]) * { d: 86_400, h: 3_600, m: 60, s: 1, "": 1 }[match[2] as "d" | "h" | "m" | "s" | ""];
}

/** Moves the node's clock forward `seconds` and mines a block there. */
export async function advance(send: (method: string, params: unknown[]) => Promise<unknown>, seconds: number, say: Say): Promise<void> {
  await send("evm_increaseTime", [seconds]);
  await send("evm_mine", []);
  const block = (await send("eth_getBlockByNumber", ["latest", false])) as { timestamp: string };
  say(`Moved the node's clock ${seconds / 86_400} days forward: it is now ${new Date(Number(block.timestamp) * 1000).toISOString().replace(".000Z", "Z")}.`);
}

// Gas benchmark: a bare ERC-20 transferFrom transaction against Recur's charge paths, on the same
// token in one run. Prints a table and writes bench/results/gas.json.
//   npm run bench:gas
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { network } from "hardhat";

import { createMeteredPlan, createPlan, deployFactory, deployToken, fixedTerms, meteredTerms } from "../scripts/lib/plans.js";

const TARGET_SINGLE_RATIO = 1.3;
const TARGET_BATCH100_PER_SUB = 26_000;
const BATCH_SIZES = [1, 10, 100];

const { ethers, networkHelpers } = await network.create();
const signers = await ethers.getSigners();
const [deployer, merchant, payee, keeper, spender, holder] = signers;
if (!deployer || !merchant || !payee || !keeper || !spender || !holder) throw new Error("need 6 accounts");
const funder = deployer;

const token = await deployToken(ethers);
const factory = await deployFactory(ethers);
const price = 10_000_000n;

async function gasOf(tx: { wait(): Promise<{ gasUsed: bigint } | null> }): Promise<bigint> {
  const receipt = await tx.wait();
  if (receipt === null) throw new Error("no receipt");
  return receipt.gasUsed;
}

// 1. Bare transferFrom: finite allowance, recipient already holding a balance.
await token.mint(holder.address, 1_000n * price);
await token.mint(payee.address, 1n);
await token.connect(holder).approve(spender.address, 100n * price);
await token.connect(spender).transferFrom(holder.address, payee.address, price); // warm-up, as a charge has paid before
const bareTransferFrom = await gasOf(await token.connect(spender).transferFrom(holder.address, payee.address, price));

// 2. Plan creation.
const { plan, tx: createTx } = await createPlan(ethers, factory, merchant, fixedTerms(await token.getAddress(), payee.address));
const createPlanGas = await gasOf(createTx);
const planAddress = await plan.getAddress();

// Fund `count` fresh wallets and have them approve `spenderPlan` (the caller subscribes them).
async function subscribers(count: number, spenderPlan: string = planAddress) {
  const wallets = [];
  for (let i = 0; i < count; i++) {
    const wallet = ethers.Wallet.createRandom().connect(ethers.provider);
    await funder.sendTransaction({ to: wallet.address, value: 10n ** 17n });
    await token.mint(wallet.address, 100n * price);
    await token.connect(wallet).approve(spenderPlan, 12n * price);
    wallets.push(wallet);
  }
  return wallets;
}

// 3. subscribe (first period collected at once), measured on a fresh wallet.
const [first] = await subscribers(1);
const subscribeGas = await gasOf(await plan.connect(first!).subscribe(price));

// 4. A single charge, one period later.
await networkHelpers.time.increase(30 * 86_400);
const singleCharge = await gasOf(await plan.connect(keeper).charge(first!.address));

// 4b. The least gas limit a caller must send for chargeMany of one due subscriber (eth_estimateGas
// searches for it): each pull must be able to receive its whole fixed budget (TokenCalls.PULL_GAS), so
// this is what the budget costs a caller in gas limit, not in gas used.
const [lone] = await subscribers(1);
await plan.connect(lone!).subscribe(price);
await networkHelpers.time.increase(30 * 86_400);
const chargeManyOneGasLimit = await plan.connect(keeper).chargeMany.estimateGas([lone!.address]);
await plan.connect(keeper).chargeMany([lone!.address]);

// 4c. subscribeWithRef (the merchant's reference, an indexed topic) and cancel (which also uses up the
// subscriber's nonce, voiding unsubmitted authorizations).
const [withRef] = await subscribers(1);
const subscribeWithRefGas = await gasOf(await plan.connect(withRef!).subscribeWithRef(price, ethers.encodeBytes32String("order-1")));
const cancelGas = await gasOf(await plan.connect(withRef!).cancel());

// 5. chargeMany at several batch sizes.
const batches: Record<string, { total: number; perSubscriber: number }> = {};
for (const size of BATCH_SIZES) {
  const wallets = await subscribers(size);
  for (const w of wallets) await plan.connect(w).subscribe(price);
  await networkHelpers.time.increase(30 * 86_400);
  const addresses = wallets.map((w) => w.address);
  const total = await gasOf(await plan.connect(keeper).chargeMany(addresses, { gasLimit: 16_000_000 }));
  const charged = await Promise.all(addresses.map((a) => plan.subscriptionOf(a)));
  if (charged.some((s) => s.periodsPaid !== 2n)) throw new Error(`batch ${size}: not every subscriber was charged`);
  batches[String(size)] = { total: Number(total), perSubscriber: Math.round(Number(total) / size) };
}

// 6. subscribeBySig: a fresh wallet signs, the keeper account relays (first period collected at once).
const [signer] = await subscribers(1);
const { chainId } = await ethers.provider.getNetwork();
const deadline = BigInt(await networkHelpers.time.latest()) + 3_600n;
const signature = await signer!.signTypedData(
  { name: "Recur Plan", version: "1", chainId, verifyingContract: planAddress },
  {
    Subscribe: [
      { name: "subscriber", type: "address" },
      { name: "maxAmount", type: "uint256" },
      { name: "nonce", type: "uint256" },
      { name: "deadline", type: "uint256" },
    ],
  },
  { subscriber: signer!.address, maxAmount: price, nonce: await plan.nonces(signer!.address), deadline },
);
const subscribeBySigGas = await gasOf(
  await plan.connect(keeper).subscribeBySig(signer!.address, price, deadline, signature),
);

// 7. A USD-priced plan's single charge: $10.00 a month on an 8-decimal feed answering $1.00.
const feed = await ethers.deployContract("MockAggregator", [8, 100_000_000n]);
const { plan: usdPlan } = await createPlan(
  ethers,
  factory,
  merchant,
  fixedTerms(await token.getAddress(), payee.address, { price: 1_000_000_000n, priceFeed: await feed.getAddress(), maxPriceAge: 86_400n }),
);
const usdWallet = ethers.Wallet.createRandom().connect(ethers.provider);
await funder.sendTransaction({ to: usdWallet.address, value: 10n ** 17n });
await token.mint(usdWallet.address, 100n * price);
await token.connect(usdWallet).approve(await usdPlan.getAddress(), 12n * price);
await usdPlan.connect(usdWallet).subscribe(price);
await networkHelpers.time.increase(30 * 86_400);
await feed.setAnswer(100_000_000n);
const usdCharge = await gasOf(await usdPlan.connect(keeper).charge(usdWallet.address));

// 8. A metered plan: one cycle's usage billed by its reporter (10.000000 over no credits, so it is all
// pulled), alone and in a batch of 100; and a bill that free credits cover entirely (no token call).
const { plan: meteredPlan, tx: createMeteredTx } = await createMeteredPlan(
  ethers,
  factory,
  merchant,
  meteredTerms(await token.getAddress(), payee.address, { perCycleCap: 12n * price }),
);
const createMeteredGas = await gasOf(createMeteredTx);
const meteredAddress = await meteredPlan.getAddress();
await meteredPlan.connect(merchant).setReporter(keeper.address, true);
const usageRef = ethers.encodeBytes32String("bench");
const [meteredFirst] = await subscribers(1, meteredAddress);
await meteredPlan.connect(meteredFirst!).subscribe(12n * price);
const meteredBatch = await subscribers(100, meteredAddress);
for (const w of meteredBatch) await meteredPlan.connect(w).subscribe(12n * price);
await networkHelpers.time.increase(30 * 86_400);
const chargeUsageGas = await gasOf(await meteredPlan.connect(keeper).chargeUsage(meteredFirst!.address, price, usageRef));
const meteredAddresses = meteredBatch.map((w) => w.address);
const chargeUsageManyGas = await gasOf(
  await meteredPlan.connect(keeper).chargeUsageMany(meteredAddresses, meteredAddresses.map(() => price), meteredAddresses.map(() => usageRef), { gasLimit: 16_000_000 }),
);
const billed = await Promise.all(meteredAddresses.map((a) => meteredPlan.subscriptionOf(a)));
if (billed.some((b) => b.periodsPaid !== 1n)) throw new Error("chargeUsageMany: not every subscriber was billed");
const { plan: creditPlan } = await createMeteredPlan(
  ethers,
  factory,
  merchant,
  meteredTerms(await token.getAddress(), payee.address, { perCycleCap: 12n * price, freeCredits: 100n * price }),
);
const [creditWallet] = await subscribers(1, await creditPlan.getAddress());
await creditPlan.connect(creditWallet!).subscribe(0n);
await networkHelpers.time.increase(30 * 86_400);
const chargeUsageCreditsGas = await gasOf(await creditPlan.connect(merchant).chargeUsage(creditWallet!.address, price, usageRef));
const chargeUsageManyPerSub = Math.round(Number(chargeUsageManyGas) / meteredAddresses.length);

// 8b. A metered customer lowers their max amount while a cycle runs (the cycle keeps its limit in a second
// slot), and that cycle's bill, which reads the kept limit.
const [lowering] = await subscribers(1, meteredAddress);
await meteredPlan.connect(lowering!).subscribe(12n * price);
const lowerMaxGas = await gasOf(await meteredPlan.connect(lowering!).setMaxAmount(0n));
await networkHelpers.time.increase(30 * 86_400);
const chargeUsageKeptLimitGas = await gasOf(await meteredPlan.connect(keeper).chargeUsage(lowering!.address, price, usageRef));

const ratio = Number(singleCharge) / Number(bareTransferFrom);
const perSub100 = batches["100"]!.perSubscriber;
const rows: [string, string, string][] = [
  ["bare ERC-20 transferFrom tx", String(bareTransferFrom), "1.00×"],
  ["charge (single tx)", String(singleCharge), `${ratio.toFixed(3)}× (target ≤ ${TARGET_SINGLE_RATIO}×)`],
  ...BATCH_SIZES.map((n): [string, string, string] => {
    const b = batches[String(n)]!;
    const note = n === 100 ? ` (target ≤ ${TARGET_BATCH100_PER_SUB})` : "";
    return [`chargeMany, batch of ${n}, per subscriber`, String(b.perSubscriber), `${(b.perSubscriber / Number(bareTransferFrom)).toFixed(3)}×${note}`];
  }),
  ["chargeMany of 1: least gas limit (estimateGas)", String(chargeManyOneGasLimit), "limit, not gas used"],
  ["subscribe (pulls first period)", String(subscribeGas), `${(Number(subscribeGas) / Number(bareTransferFrom)).toFixed(3)}×`],
  ["subscribeWithRef (pulls first period)", String(subscribeWithRefGas), `${(Number(subscribeWithRefGas) / Number(bareTransferFrom)).toFixed(3)}×`],
  ["cancel (uses up the nonce too)", String(cancelGas), ""],
  [
    "subscribeBySig (relayed, pulls first period)",
    String(subscribeBySigGas),
    `${(Number(subscribeBySigGas) / Number(bareTransferFrom)).toFixed(3)}×`,
  ],
  ["charge, USD-priced plan (feed read + conversion)", String(usdCharge), `${(Number(usdCharge) / Number(bareTransferFrom)).toFixed(3)}×`],
  ["chargeUsage, metered (all pulled)", String(chargeUsageGas), `${(Number(chargeUsageGas) / Number(bareTransferFrom)).toFixed(3)}×`],
  ["chargeUsageMany, batch of 100, per subscriber", String(chargeUsageManyPerSub), `${(chargeUsageManyPerSub / Number(bareTransferFrom)).toFixed(3)}×`],
  ["chargeUsage, paid by free credits (no transfer)", String(chargeUsageCreditsGas), `${(Number(chargeUsageCreditsGas) / Number(bareTransferFrom)).toFixed(3)}×`],
  ["setMaxAmount, metered, lowered mid-cycle", String(lowerMaxGas), ""],
  ["chargeUsage of a cycle with a kept limit", String(chargeUsageKeptLimitGas), `${(Number(chargeUsageKeptLimitGas) / Number(bareTransferFrom)).toFixed(3)}×`],
  ["createPlan (full deployment)", String(createPlanGas), ""],
  ["createPlan, metered (full deployment)", String(createMeteredGas), ""],
];

const width = [52, 10, 30];
console.log(["operation", "gas", "vs bare transferFrom"].map((h, i) => h.padEnd(width[i]!)).join(" "));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(width[i]!)).join(" "));

const results = {
  measuredAt: new Date().toISOString(),
  token: "TestUSDC (OpenZeppelin ERC20, 6 decimals)",
  bareTransferFrom: Number(bareTransferFrom),
  charge: Number(singleCharge),
  chargeRatio: Number(ratio.toFixed(4)),
  chargeMany: batches,
  chargeManyOneLeastGasLimit: Number(chargeManyOneGasLimit),
  subscribe: Number(subscribeGas),
  subscribeWithRef: Number(subscribeWithRefGas),
  cancel: Number(cancelGas),
  subscribeBySig: Number(subscribeBySigGas),
  chargeUsdPriced: Number(usdCharge),
  chargeUsage: Number(chargeUsageGas),
  chargeUsageManyPerSubscriberAt100: chargeUsageManyPerSub,
  chargeUsageFromCredits: Number(chargeUsageCreditsGas),
  setMaxAmountMeteredLowered: Number(lowerMaxGas),
  chargeUsageWithKeptLimit: Number(chargeUsageKeptLimitGas),
  createPlan: Number(createPlanGas),
  createMeteredPlan: Number(createMeteredGas),
  targets: {
    chargeRatio: TARGET_SINGLE_RATIO,
    chargeManyPerSubscriberAt100: TARGET_BATCH100_PER_SUB,
    met: ratio <= TARGET_SINGLE_RATIO && perSub100 <= TARGET_BATCH100_PER_SUB,
  },
};
const here = path.dirname(fileURLToPath(import.meta.url));
mkdirSync(path.join(here, "results"), { recursive: true });
writeFileSync(path.join(here, "results", "gas.json"), JSON.stringify(results, null, 2) + "\n");
console.log(`\nwrote bench/results/gas.json; targets ${results.targets.met ? "met" : "NOT met"}`);

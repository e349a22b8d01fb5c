// The pages' one client of the chain: every read goes to the configured read RPC, every transaction is
// simulated there (eth_call + eth_estimateGas, and the wallet's gas money checked) before the wallet is
// asked to send it, and every revert is decoded through the ABI (lib/errors.js turns it into a sentence).
import { Contract, Interface, JsonRpcProvider, TypedDataEncoder, getAddress, Signature, ZeroAddress, MaxUint256, toBeHex } from "../vendor/ethers.js";

import { ERC20_ABI, FACTORY_ABI, FEED_ABI, PLAN_ABI, PLAN_STATUSES, SUBSCRIPTION_STATUSES, CHARGE_REASONS } from "./abi.js";
import { RecurError } from "./errors.js";

export const planInterface = new Interface(PLAN_ABI);
export const erc20Interface = new Interface(ERC20_ABI);

/** The site's settings, written by `recur serve` (or by hand on a static host). */
export async function loadConfig() {
  const res = await fetch(new URL("config.json", document.baseURI), { cache: "no-store" });
  if (!res.ok) throw new RecurError("config", "This site is not set up: its config.json is missing. Tell the merchant.");
  const config = await res.json();
  return { ...config, chainId: BigInt(config.chainId), factoryBlock: BigInt(config.factoryBlock ?? 0), tokens: lowerKeys(config.tokens ?? {}), explorerTxUrl: config.explorerTxUrl ?? null };
}

function lowerKeys(map) {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k.toLowerCase(), v]));
}

/** A view that may be missing on some contracts (a token without permit): null instead of a throw. */
async function maybe(promise) {
  try {
    return await promise;
  } catch {
    return null;
  }
}

export function createClient(config) {
  const provider = new JsonRpcProvider(config.rpcUrl, Number(config.chainId), { staticNetwork: true, batchMaxCount: 1, cacheTimeout: -1 });
  const factory = new Contract(config.factory, FACTORY_ABI, provider);
  const plan = (address) => new Contract(address, PLAN_ABI, provider);
  const erc20 = (address) => new Contract(address, ERC20_ABI, provider);

  /** The token as the pages show it: the operator's symbol when configured (a token names itself
   * whatever it likes), and whether it offers ERC-2612 permit with a domain we can rebuild. */
  async function readToken(address) {
    const token = erc20(address);
    const [onChainSymbol, decimals, domain, separator] = await Promise.all([
      maybe(token.symbol()), maybe(token.decimals()), maybe(token.eip712Domain()), maybe(token.DOMAIN_SEPARATOR()),
    ]);
    const configured = config.tokens[address.toLowerCase()];
    let permitDomain = null;
    if (separator !== null) {
      const name = domain?.name ?? (await maybe(token.name()));
      const candidate = { name, version: domain?.version ?? "1", chainId: config.chainId, verifyingContract: getAddress(address) };
      if (name !== null && TypedDataEncoder.hashDomain(candidate) === separator && (await maybe(token.nonces(ZeroAddress))) !== null) permitDomain = candidate;
    }
    return {
      address: getAddress(address),
      symbol: configured ?? String(onChainSymbol ?? "tokens").slice(0, 16),
      known: configured !== undefined,
      decimals: Number(decimals ?? 0n),
      permitDomain,
    };
  }

  /** Everything the checkout shows about a plan, read at one moment; `isPlan` false: nothing else. */
  async function readPlan(address, periods = 1n) {
    const isPlan = await factory.isPlan(address);
    if (!isPlan) return { address: getAddress(address), isPlan: false };
    const p = plan(address);
    const [owner, payee, tokenAddress, price, period, trial, grace, mode, cap, status, block] = await Promise.all([
      p.owner(), p.payee(), p.token(), p.price(), p.period(), p.trialPeriod(), p.gracePeriod(), p.billingMode(), p.perCycleCap(), p.status(), provider.getBlock("latest"),
    ]);
    const metered = Number(mode) === 1;
    const [usdPricing, freeCredits, quote, required] = await Promise.all([
      metered ? null : p.usdPricing(),
      metered ? p.freeCredits() : 0n,
      p.chargeability(ZeroAddress),
      maybe(p.requiredAllowance(periods)),
    ]);
    const usdPriced = usdPricing !== null && usdPricing.priceFeed !== ZeroAddress;
    let feed = null;
    if (usdPriced) {
      const f = new Contract(usdPricing.priceFeed, FEED_ABI, provider);
      const [round, decimals] = await Promise.all([maybe(f.latestRoundData()), maybe(f.decimals())]);
      feed = { address: usdPricing.priceFeed, maxAge: usdPricing.maxPriceAge, bufferBps: usdPricing.allowanceBufferBps, answer: round?.answer ?? 0n, updatedAt: round?.updatedAt ?? 0n, decimals: Number(decimals ?? 8n) };
    }
    const token = await readToken(tokenAddress);
    // The most one charge may take: the price in tokens (with the plan's buffer on a USD plan), or the cap.
    const oneCharge = metered ? cap : usdPriced ? await maybe(p.requiredAllowance(1n)) : price;
    return {
      address: getAddress(address), isPlan: true, owner, payee, token, metered, usdPriced, feed,
      price, period, trial, grace, cap, freeCredits, status: PLAN_STATUSES[Number(status)] ?? "Unknown",
      // Token amount of one period now (a USD plan converts at today's feed answer); 0 when the feed is stale.
      amountNow: metered ? 0n : quote.amount, priceStale: CHARGE_REASONS[Number(quote.reason)] === "PriceStale" || (usdPriced && oneCharge === null),
      maxPerCharge: oneCharge ?? 0n, required: required ?? 0n, periods, now: BigInt(block.timestamp),
    };
  }

  /** The connected customer on `info`'s plan: subscription, status, money, and the chain's prediction. */
  async function readCustomer(info, account) {
    const p = plan(info.address);
    const t = erc20(info.token.address);
    const [status, sub, next, due, access, prediction, allowance, balance, eth, blocked, block] = await Promise.all([
      p.statusOf(account), p.subscriptionOf(account), p.nextChargeAt(account), p.amountDue(account), p.hasAccess(account),
      p.chargeability(account), t.allowance(account, info.address), t.balanceOf(account), provider.getBalance(account), p.isBlocked(account), provider.getBlock("latest"),
    ]);
    const [credits, limit] = info.metered ? await Promise.all([p.creditsOf(account), p.billingLimit(account)]) : [0n, 0n];
    return {
      account, status: SUBSCRIPTION_STATUSES[Number(status)] ?? "None", sub, nextChargeAt: next, amountDue: due, hasAccess: access,
      prediction: { ok: prediction.ok, reason: CHARGE_REASONS[Number(prediction.reason)] ?? "Unknown", amount: prediction.amount },
      allowance, balance, eth, blocked, credits, billingLimit: limit, now: BigInt(block.timestamp),
    };
  }

  /** The customer's payments on a plan (Charged, or UsageCharged on a metered plan) and other facts of
   * their subscription, oldest first, each with its block time and transaction. */
  async function history(info, account) {
    const p = plan(info.address);
    const names = info.metered ? ["UsageCharged", "Subscribed", "Cancelled", "Paused", "Resumed", "MaxAmountUpdated"] : ["Charged", "ChargeFailed", "Subscribed", "Cancelled", "Paused", "Resumed", "MaxAmountUpdated"];
    const lists = await Promise.all(names.map((name) => p.queryFilter(p.filters[name](account), Number(config.factoryBlock))));
    const events = lists.flat().sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
    const times = new Map();
    for (const e of events) if (!times.has(e.blockNumber)) times.set(e.blockNumber, provider.getBlock(e.blockNumber).then((b) => BigInt(b.timestamp)));
    return Promise.all(events.map(async (e) => ({ name: e.eventName ?? e.fragment.name, args: e.args, tx: e.transactionHash, block: e.blockNumber, time: await times.get(e.blockNumber) })));
  }

  /** Every plan of the factory on which `account` has (or had) a subscription. */
  async function plansOf(account) {
    const logs = await factory.queryFilter(factory.filters.PlanCreated(), Number(config.factoryBlock));
    const plans = logs.map((l) => l.args.plan);
    const statuses = await Promise.all(plans.map((a) => plan(a).statusOf(account).catch(() => 0n)));
    return plans.filter((_, i) => Number(statuses[i]) !== 0);
  }

  /** Simulates `tx` from `from` (eth_call, then eth_estimateGas), checks the wallet can pay the gas, and
   * returns the gas limit to send with. Throws a decoded RecurError. */
  async function simulate(from, tx) {
    const request = { from, to: tx.to, data: tx.data };
    try {
      await provider.call(request);
    } catch (error) {
      throw decodeRevert(error);
    }
    let gas;
    try {
      gas = await provider.estimateGas(request);
    } catch (error) {
      throw decodeRevert(error);
    }
    const [fees, eth] = await Promise.all([provider.getFeeData(), provider.getBalance(from)]);
    const price = fees.maxFeePerGas ?? fees.gasPrice ?? 0n;
    if (eth < gas * price) throw new RecurError("gas", "Your wallet doesn't have enough ETH to pay the network fee for this: add some ETH to it, then try again.");
    return (gas * 12n) / 10n;
  }

  /** Simulates, asks the wallet to send, waits for the receipt; throws a RecurError (nothing sent, or the
   * transaction failed) with a sentence. */
  async function send(wallet, tx) {
    const gas = await simulate(wallet.account, tx);
    const hash = await wallet.request("eth_sendTransaction", [{ from: wallet.account, to: tx.to, data: tx.data, gas: toBeHex(gas) }]);
    const receipt = await provider.waitForTransaction(hash, 1, 120_000);
    if (receipt === null || receipt.status !== 1) throw new RecurError("failed", "The transaction failed on the chain and changed nothing: reload the page to see where things stand.", hash);
    return receipt;
  }

  /** The customer's ERC-2612 signature letting `spender` take `value` of `token`, valid for an hour. */
  async function signPermit(wallet, token, spender, value, now) {
    const nonce = await erc20(token.address).nonces(wallet.account);
    const deadline = now + 3600n;
    const types = { Permit: [{ name: "owner", type: "address" }, { name: "spender", type: "address" }, { name: "value", type: "uint256" }, { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" }] };
    const message = { owner: wallet.account, spender, value, nonce, deadline };
    const payload = TypedDataEncoder.getPayload(token.permitDomain, types, message);
    const signature = await wallet.request("eth_signTypedData_v4", [wallet.account, JSON.stringify(payload)]);
    const { v, r, s } = Signature.from(signature);
    return { deadline, v, r, s };
  }

  /** `requiredAllowance(periods)` of a plan; a stale USD price is a decoded error. */
  async function requiredAllowance(address, periods) {
    try {
      return await plan(address).requiredAllowance(periods);
    } catch (error) {
      throw decodeRevert(error);
    }
  }

  return { provider, requiredAllowance, readPlan, readCustomer, history, plansOf, simulate, send, signPermit };
}

/** A failed call as a RecurError carrying the decoded custom error (name and args), if any. */
export function decodeRevert(error) {
  const data = revertData(error);
  if (data !== null && data !== "0x") {
    try {
      const parsed = planInterface.parseError(data);
      if (parsed !== null) return new RecurError("revert", null, null, { name: parsed.name, args: parsed.args });
    } catch {
      // not one of ours
    }
  }
  const message = String(error?.info?.error?.message ?? error?.error?.message ?? error?.shortMessage ?? error?.message ?? error);
  if (/insufficient funds|doesn't have enough funds/i.test(message)) return new RecurError("gas", "Your wallet doesn't have enough ETH to pay the network fee for this: add some ETH to it, then try again.");
  return new RecurError("revert", null, null, { name: "Unknown", args: [], message });
}

function revertData(error) {
  for (const candidate of [error?.data, error?.info?.error?.data, error?.error?.data, error?.info?.error?.data?.data]) {
    if (typeof candidate === "string" && candidate.startsWith("0x")) return candidate;
  }
  return null;
}

export { MaxUint256 };

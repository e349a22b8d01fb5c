// What the reports read from the chain besides the index: each token's decimals and symbol (once per
// token), and the plan's own prediction of each subscriber's next charge (`chargeabilityMany`, in
// chunks of at most 500 addresses), all at the confirmed block the index was caught up to.
import { Interface } from "ethers";

import { reasonName } from "../chain/abi.ts";
import type { ChargeReasonName } from "../chain/abi.ts";
import { chargeabilityMany } from "../chain/calls.ts";
import type { Rpc } from "../chain/rpc.ts";
import { errorMessage, KeeperError } from "../errors.ts";

const ERC20 = new Interface(["function decimals() view returns (uint8)", "function symbol() view returns (string)"]);

export interface TokenInfo {
  address: string;
  decimals: number;
  /** The token's `symbol()`, or its shortened address when it has none readable. */
  symbol: string;
}

/** `decimals()` and `symbol()` of each token, one pair of calls per token. A token without a readable
 * `decimals()` stops the report: its amounts could not be shown in token units. */
export async function readTokens(rpc: Rpc, tokens: Iterable<string>, block: bigint): Promise<Map<string, TokenInfo>> {
  const out = new Map<string, TokenInfo>();
  for (const address of new Set([...tokens].map((t) => t.toLowerCase()))) {
    let decimals: number;
    try {
      decimals = Number(ERC20.decodeFunctionResult("decimals", await rpc.ethCall(address, ERC20.encodeFunctionData("decimals"), block))[0] as bigint);
    } catch (error) {
      if (error instanceof KeeperError && error.retryable) throw error;
      throw new KeeperError("RPC_ERROR", `token ${address}: expected an ERC-20 answering decimals(), got ${errorMessage(error)}`);
    }
    let symbol = `${address.slice(0, 6)}…${address.slice(-4)}`;
    try {
      const text = String(ERC20.decodeFunctionResult("symbol", await rpc.ethCall(address, ERC20.encodeFunctionData("symbol"), block))[0]);
      if (/^[\x20-\x7e]{1,32}$/.test(text)) symbol = text;
    } catch (error) {
      if (error instanceof KeeperError && error.retryable) throw error;
      // No readable symbol (a bytes32 symbol, none at all): the address stands in for it.
    }
    out.set(address, { address, decimals, symbol });
  }
  return out;
}

/** How many addresses go into one `chargeabilityMany` call. */
export const PREDICTION_CHUNK = 500;
/** How many of those calls are in flight at once (a plan of 100,000 subscribers is 200 calls). */
const PREDICTION_CONCURRENCY = 4;

/** The plan's answer for each subscriber (`chargeabilityMany` at `block`), by lowercase address. */
export async function predict(rpc: Rpc, plan: string, subscribers: readonly string[], block: bigint): Promise<Map<string, ChargeReasonName | "Unknown">> {
  const out = new Map<string, ChargeReasonName | "Unknown">();
  const chunks: string[][] = [];
  for (let i = 0; i < subscribers.length; i += PREDICTION_CHUNK) chunks.push(subscribers.slice(i, i + PREDICTION_CHUNK));
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const chunk = chunks[next++]!;
      const reasons = await chargeabilityMany(rpc, plan, chunk, block);
      chunk.forEach((who, j) => out.set(who.toLowerCase(), reasonName(reasons[j] ?? 255)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PREDICTION_CONCURRENCY, chunks.length) }, worker));
  return out;
}

/** Whether the answer means the next charge will go through when it is due. A fixed plan checks the
 * max amount, allowance and balance even before the due time, so `NotDue` means "nothing in the way". */
export const willSucceed = (reason: string): boolean => reason === "Ok" || reason === "NotDue";

/** The answer in words, with what the merchant can do about it. */
export function outcome(reason: string): string {
  switch (reason) {
    case "Ok":
    case "NotDue":
      return "will succeed";
    case "AllowanceTooLow":
      return "AllowanceTooLow: ask to approve more";
    case "BalanceTooLow":
      return "BalanceTooLow: ask to top up";
    case "MaxAmountExceeded":
      return "MaxAmountExceeded: ask to raise the max";
    case "PriceStale":
      return "PriceStale: the price feed's answer is too old; charges wait for a fresh one";
    case "TransferFailed":
      return "TransferFailed: the token refuses the transfer; check the token";
    case "UsageAboveCap":
      return "UsageAboveCap: the usage is above the plan's cap";
    case "Expired":
      return "Expired: the grace window has passed; the customer must subscribe again";
    case "PlanRetired":
      return "PlanRetired: the plan charges no more";
    case "Paused":
      return "Paused: no charge until the customer resumes";
    case "Cancelled":
      return "Cancelled: no further charge";
    default:
      return `${reason}: the plan refuses the charge`;
  }
}

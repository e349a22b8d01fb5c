// Typed calls to the plan contract through the keeper's ABI.
import { planInterface } from "./abi.ts";
import type { Rpc } from "./rpc.ts";

export function encodeChargeMany(subscribers: string[]): string {
  return planInterface.encodeFunctionData("chargeMany", [subscribers]);
}

/** `chargeabilityMany(subscribers)` at `block`: one reason code per subscriber. */
export async function chargeabilityMany(rpc: Rpc, plan: string, subscribers: string[], block: bigint): Promise<number[]> {
  const data = planInterface.encodeFunctionData("chargeabilityMany", [subscribers]);
  const result = await rpc.ethCall(plan, data, block);
  const [reasons] = planInterface.decodeFunctionResult("chargeabilityMany", result);
  return (reasons as bigint[]).map(Number);
}

export async function isKeeperCall(rpc: Rpc, plan: string, account: string, block: bigint): Promise<boolean> {
  const result = await rpc.ethCall(plan, planInterface.encodeFunctionData("isKeeper", [account]), block);
  return planInterface.decodeFunctionResult("isKeeper", result)[0] as boolean;
}

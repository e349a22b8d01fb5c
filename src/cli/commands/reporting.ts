// What every report command does first: catch the index up to the confirmed head (reorg-safe), and
// take that block's time as "now"; then read the tokens of the plans it reports on.
import { finalBlock } from "../../index/indexer.ts";
import type { PlanRow } from "../../index/store.ts";
import { readTokens } from "../../reports/chain.ts";
import type { TokenInfo } from "../../reports/chain.ts";
import { parseAddress } from "../../reports/format.ts";
import { configError } from "../../errors.ts";
import type { Context } from "../command.ts";

export interface Scope {
  chainId: bigint;
  /** The confirmed block the index holds, which every chain read is made at. */
  block: bigint;
  /** Its block time, unix seconds. */
  now: number;
}

export async function reportScope(ctx: Context): Promise<Scope> {
  const { head } = await ctx.catchUp();
  const confirmed = finalBlock(head.number, ctx.config.confirmations);
  const block = confirmed === head.number ? head : await ctx.rpc.block(confirmed);
  return { chainId: ctx.config.chainId, block: block.number, now: Number(block.timestamp) };
}

export function tokensOf(ctx: Context, scope: Scope, plans: readonly PlanRow[]): Promise<Map<string, TokenInfo>> {
  return readTokens(ctx.rpc, plans.map((p) => p.token), scope.block);
}

/** A string option's value, or null when not given. */
export function option(ctx: Context, name: string): string | null {
  const value = ctx.values[name];
  return typeof value === "string" ? value : null;
}

/** `--plan P`: a plan the index holds. */
export function planOption(ctx: Context, required: boolean): PlanRow | null {
  const raw = option(ctx, "plan");
  if (raw === null) {
    if (required) throw configError("--plan", "the plan's 0x-prefixed 20-byte address", undefined);
    return null;
  }
  const address = parseAddress("--plan", raw, "a plan of the factory");
  const plan = ctx.store().plan(address);
  if (plan === undefined) throw configError("--plan", "a plan of RECUR_FACTORY (none such in the index)", raw);
  return plan;
}

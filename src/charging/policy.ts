// Which plans this keeper works for: the operator's allow and deny lists of plans, owners and tokens.
// The factory is permissionless, so by default every fixed plan it created is charged; an operator may
// keep to known merchants or tokens (allow lists) or shut out known bad ones (deny lists).
import type { PlanRow } from "../index/store.ts";

export interface PlanLists {
  readonly allowPlans: ReadonlySet<string>;
  readonly denyPlans: ReadonlySet<string>;
  readonly allowOwners: ReadonlySet<string>;
  readonly denyOwners: ReadonlySet<string>;
  readonly allowTokens: ReadonlySet<string>;
  readonly denyTokens: ReadonlySet<string>;
}

export const NO_LISTS: PlanLists = Object.freeze({
  allowPlans: new Set<string>(), denyPlans: new Set<string>(), allowOwners: new Set<string>(),
  denyOwners: new Set<string>(), allowTokens: new Set<string>(), denyTokens: new Set<string>(),
});

/** Why the lists keep the keeper off `plan`, or null if it may charge it. A deny list always wins; each
 * allow list that is set must name the plan, its owner or its token (so lists combine: "USDC plans of
 * these owners"). Addresses are lowercase on both sides. */
export function refusal(lists: PlanLists, plan: Pick<PlanRow, "address" | "owner" | "token">): string | null {
  if (lists.denyPlans.has(plan.address)) return "DeniedPlan";
  if (lists.denyOwners.has(plan.owner)) return "DeniedOwner";
  if (lists.denyTokens.has(plan.token)) return "DeniedToken";
  if (lists.allowPlans.size > 0 && !lists.allowPlans.has(plan.address)) return "PlanNotAllowed";
  if (lists.allowOwners.size > 0 && !lists.allowOwners.has(plan.owner)) return "OwnerNotAllowed";
  if (lists.allowTokens.size > 0 && !lists.allowTokens.has(plan.token)) return "TokenNotAllowed";
  return null;
}

/** The lists as they may be logged (counts and members). */
export function describeLists(lists: PlanLists): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, set] of Object.entries(lists) as [string, ReadonlySet<string>][]) if (set.size > 0) out[name] = [...set];
  return out;
}

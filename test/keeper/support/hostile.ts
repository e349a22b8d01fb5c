// Strangers' plans on the scenario's factory, for the keeper's hardening tests: plans on hostile tokens
// and feeds (test/mocks), a swarm of contract subscribers, and a subscriber whose token hook attacks the
// batch. Everything is created over JSON-RPC on the real node, as anyone could on a permissionless factory.
import type { Contract, Signer } from "ethers";

import { at, deploy } from "./chain.ts";
import type { Node } from "./chain.ts";
import { DAY, fundedWallet, PERIOD, PRICE, terms } from "./scenario.ts";
import type { Scenario } from "./scenario.ts";

/** HostileToken.Behaviour */
export const Token = { Normal: 0, Empty: 1, OneByte: 2, ShortWord: 3, Revert: 4, BurnGas: 5, Huge: 6, Forge: 7 } as const;
/** HostileFeed.Behaviour */
export const Feed = { Normal: 0, Raw: 1, Empty: 2, Short: 3, Revert: 4, BurnGas: 5, Huge: 6 } as const;
/** HookedSubscriber.Hook */
export const Hook = { Pass: 0, RevertHuge: 1, BurnGas: 2 } as const;

/** The attack's terms: a short trial, so that the plan's subscriptions come due (and sort) first, and
 * the longest grace a 30-day period allows, so that they stay due for the whole window. */
export const STRANGER = { trialPeriod: DAY, gracePeriod: PERIOD - 1n } as const;

/** Creates a plan through the scenario's factory as `owner` (default: the merchant). */
export async function createPlan(s: Scenario, token: string, overrides: Record<string, unknown> = {}, owner: Signer = s.merchant): Promise<Contract> {
  const payee = await owner.getAddress();
  const receipt = await (await (s.factory.connect(owner) as Contract).getFunction("createPlan")(terms(token, payee, overrides))).wait();
  const event = receipt.logs.map((l: { topics: string[]; data: string }) => s.factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
  return at("FixedPricePlan", event.args.plan as string, owner);
}

/** `count` contract subscribers of `plan` (each minting itself 100 prices of the open-mint `token`), made
 * `perTx` per transaction; returns their addresses, lowercase. */
export async function swarm(s: Scenario, token: Contract, plan: Contract, count: number, perTx = 40): Promise<string[]> {
  const swarmContract = await deploy("SubscriberSwarm", s.deployer);
  const members: string[] = [];
  for (let done = 0; done < count; done += perTx) {
    const n = Math.min(perTx, count - done);
    const tx = await swarmContract.getFunction("join")(String(token.target), String(plan.target), PRICE, 100n * PRICE, n, { gasLimit: 16_000_000n });
    const receipt = await tx.wait();
    for (const l of receipt.logs) {
      const e = swarmContract.interface.parseLog(l);
      if (e?.name === "Joined") members.push(String(e.args.member).toLowerCase());
    }
  }
  return members;
}

/** A new funded EOA (ETH, 1,000 prices of the open-mint `token`) that approves 12 prices and subscribes. */
export async function eoaSubscriber(node: Node, s: Scenario, token: Contract, plan: Contract): Promise<string> {
  const wallet = await fundedWallet(node, token, s.deployer);
  await (await (token.connect(wallet) as Contract).getFunction("approve")(String(plan.target), 12n * PRICE)).wait();
  await (await (plan.connect(wallet) as Contract).getFunction("subscribe")(PRICE)).wait();
  return wallet.address.toLowerCase();
}

/** A HookedSubscriber of `plan` on the SenderHookToken `token`, holding 100 prices, its hook registered
 * (and passing until the test switches it). */
export async function hookedSubscriber(s: Scenario, token: Contract, plan: Contract): Promise<Contract> {
  const hooked = await deploy("HookedSubscriber", s.deployer);
  await (await (token.connect(s.deployer) as Contract).getFunction("mint")(String(hooked.target), 100n * PRICE)).wait();
  await (await hooked.getFunction("approve")(String(token.target), String(plan.target), 12n * PRICE)).wait();
  await (await hooked.getFunction("registerHook")(String(token.target), true)).wait();
  await (await hooked.getFunction("subscribe")(String(plan.target), PRICE)).wait();
  return hooked;
}

/** periodsPaid of `who` on `plan`. */
export async function periodsPaid(plan: Contract, who: string): Promise<bigint> {
  return ((await plan.getFunction("subscriptionOf")(who)) as { periodsPaid: bigint }).periodsPaid;
}

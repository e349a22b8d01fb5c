// The hand-written fragments of src/plans/abi.ts cannot drift from the contracts: each must equal an
// entry of the compiled artifact it is called on (names, types, mutability, outputs), and the status
// and billing-mode names must follow the Solidity enums' order.
import { readFileSync } from "node:fs";
import path from "node:path";

import { expect } from "chai";
import { Fragment, Interface } from "ethers";

import {
  BILLING_MODES,
  DECIMALS_ABI,
  FIXED_PLAN_ABI,
  METERED_ONLY_ABI,
  PLAN_CORE_ABI,
  PLAN_FACTORY_ABI,
  PLAN_STATUSES,
  SUBSCRIPTION_STATUSES,
} from "../../src/plans/abi.ts";
import { ROOT } from "../keeper/support/chain.ts";

function compiled(file: string): Set<string> {
  const name = path.basename(file, ".sol");
  const abi = (JSON.parse(readFileSync(path.join(ROOT, "artifacts", file, `${name}.json`), "utf8")) as { abi: unknown[] }).abi;
  return new Set(new Interface(abi as never).fragments.map((f) => f.format("full")));
}

function solidityEnum(name: string): string[] {
  const source = readFileSync(path.join(ROOT, "contracts/interfaces/PlanTypes.sol"), "utf8").replace(/\/\/[^\n]*/g, "");
  return new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(source)![1]!.split(",").map((m) => m.trim()).filter((m) => m !== "");
}

describe("recur plan's ABI matches the compiled contracts", () => {
  for (const [label, fragments, files] of [
    ["PLAN_FACTORY_ABI", PLAN_FACTORY_ABI, ["contracts/PlanFactory.sol"]],
    ["PLAN_CORE_ABI", PLAN_CORE_ABI, ["contracts/FixedPricePlan.sol", "contracts/MeteredPlan.sol"]],
    ["FIXED_PLAN_ABI", FIXED_PLAN_ABI, ["contracts/FixedPricePlan.sol"]],
    ["METERED_ONLY_ABI", METERED_ONLY_ABI, ["contracts/MeteredPlan.sol"]],
    ["DECIMALS_ABI", DECIMALS_ABI, ["contracts/interfaces/AggregatorV3Interface.sol", "test/mocks/MockAggregator.sol"]],
  ] as const) {
    for (const file of files) {
      describe(`${label} ⊂ ${path.basename(file, ".sol")}`, () => {
        const full = compiled(file);
        for (const text of fragments) {
          const fragment = Fragment.from(text);
          it(fragment.format("sighash"), () => {
            expect(full.has(fragment.format("full")), `${fragment.format("full")} not in ${file}`).to.equal(true);
          });
        }
      });
    }
  }

  it("PLAN_STATUSES, SUBSCRIPTION_STATUSES and BILLING_MODES follow the Solidity enums", () => {
    expect([...PLAN_STATUSES]).to.deep.equal(solidityEnum("PlanStatus"));
    expect([...SUBSCRIPTION_STATUSES]).to.deep.equal(solidityEnum("SubscriptionStatus"));
    expect([...BILLING_MODES]).to.deep.equal(solidityEnum("BillingMode"));
  });
});

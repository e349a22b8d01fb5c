// The keeper's hand-written ABI (src/chain/abi.ts) cannot drift from the contracts: every fragment must
// equal an entry of the compiled artifacts (name, parameter names and types, indexed flags, mutability,
// outputs), and the reason and status codes must follow the Solidity enums' order.
import { readFileSync } from "node:fs";
import path from "node:path";

import { expect } from "chai";
import { Fragment, Interface } from "ethers";

import {
  BILLING_FIXED,
  BILLING_METERED,
  CHARGE_REASONS,
  FACTORY_ABI,
  METERED_PLAN_ABI,
  PLAN_ABI,
  PLAN_EVENT_TOPICS,
  PLAN_RETIRED,
  planEventsInterface,
} from "../../src/chain/abi.ts";
import { ROOT } from "./support/chain.ts";

function artifactInterface(name: string): Interface {
  const file = path.join(ROOT, "artifacts/contracts", `${name}.sol`, `${name}.json`);
  return new Interface((JSON.parse(readFileSync(file, "utf8")) as { abi: unknown[] }).abi as never);
}

/** The members of `enum name { ... }` in a Solidity source, in order (comments stripped). */
function solidityEnum(file: string, name: string): string[] {
  const source = readFileSync(path.join(ROOT, file), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
  const match = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(source);
  expect(match, `enum ${name} in ${file}`).to.not.equal(null);
  return match![1]!.split(",").map((m) => m.trim()).filter((m) => m !== "");
}

describe("keeper ABI matches the compiled contracts", () => {
  for (const [label, fragments, contract] of [
    ["FACTORY_ABI", FACTORY_ABI, "PlanFactory"],
    ["PLAN_ABI", PLAN_ABI, "FixedPricePlan"],
    ["METERED_PLAN_ABI", METERED_PLAN_ABI, "MeteredPlan"],
  ] as const) {
    describe(`${label} ⊂ ${contract}`, () => {
      const compiled = artifactInterface(contract);
      const full = new Set(compiled.fragments.map((f) => f.format("full")));
      for (const text of fragments) {
        const fragment = Fragment.from(text);
        const name = "name" in fragment ? String(fragment.name) : fragment.type;
        it(`${fragment.type} ${name}`, () => {
          const sameName = compiled.fragments.filter((f) => "name" in f && f.name === name && f.type === fragment.type);
          expect(sameName.map((f) => f.format("full")), `${contract} has a ${fragment.type} ${name}`).to.not.be.empty;
          // Parameter names count too: the keeper reads event arguments by name.
          expect(full.has(fragment.format("full")), `${fragment.format("full")}\nnot among:\n${sameName.map((f) => f.format("full")).join("\n")}`).to.equal(true);
        });
      }
    });
  }

  it("the indexer filters on every event of either plan kind (ownership and EIP-712 domain changes aside), and on nothing else", () => {
    const topics = new Set<string>();
    const ignored = new Set(["OwnershipTransferred", "OwnershipTransferStarted", "EIP712DomainChanged"]);
    for (const contract of ["FixedPricePlan", "MeteredPlan"]) {
      artifactInterface(contract).forEachEvent((e) => {
        if (!ignored.has(e.name)) topics.add(e.topicHash);
      });
    }
    expect(new Set(PLAN_EVENT_TOPICS).size).to.equal(PLAN_EVENT_TOPICS.length);
    expect([...PLAN_EVENT_TOPICS].sort()).to.deep.equal([...topics].sort());
    expect(PLAN_EVENT_TOPICS).to.have.length(planEventsInterface.fragments.filter((f) => f.type === "event").length);
  });

  it("CHARGE_REASONS follows enum ChargeReason in contracts/interfaces/PlanTypes.sol", () => {
    expect([...CHARGE_REASONS]).to.deep.equal(solidityEnum("contracts/interfaces/PlanTypes.sol", "ChargeReason"));
  });

  it("BILLING_FIXED and BILLING_METERED are the Fixed and Metered members of enum BillingMode", () => {
    const modes = solidityEnum("contracts/interfaces/PlanTypes.sol", "BillingMode");
    expect(modes.indexOf("Fixed")).to.equal(BILLING_FIXED);
    expect(modes.indexOf("Metered")).to.equal(BILLING_METERED);
  });

  it("PLAN_RETIRED is the Retired member of enum PlanStatus", () => {
    expect(solidityEnum("contracts/interfaces/PlanTypes.sol", "PlanStatus").indexOf("Retired")).to.equal(PLAN_RETIRED);
  });
});

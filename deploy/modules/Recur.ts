// Ignition module: deploys the PlanFactory. Merchants then create plans through it
// (`factory.createPlan(terms)`), one contract per plan.
//   npx hardhat ignition deploy deploy/modules/Recur.ts --network <name>
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

export default buildModule("Recur", (m) => {
  const factory = m.contract("PlanFactory");
  return { factory };
});

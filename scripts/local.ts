// A local stack for a merchant's first hour: against `npx hardhat node` (in another terminal),
//   npx hardhat run scripts/local.ts --network localhost
// deploys the test token tUSDC and the PlanFactory, mints tUSDC to the customer accounts (#3–#9) and
// writes .env (the merchant's settings, with Hardhat's PUBLIC account #1 key) and keeper.env (the same
// settings, with the PUBLIC account #2 key) in the working directory. Those keys are known to everyone:
// they are for the local node only; on a real chain use RECUR_KEYSTORE. Existing files are never
// overwritten (RECUR_LOCAL_FORCE=1 does).
// `hardhat run` passes no arguments to a script, so the later steps are chosen by environment:
//   RECUR_LOCAL_SUBSCRIBE=0xPLAN …   accounts #3, #4 and #5 subscribe (one with a ref, one short of allowance)
//   RECUR_LOCAL_ADVANCE=31d …        the node's clock moves forward and a block is mined
import { network } from "hardhat";

import { advance, deployLocal, envFiles, mayWriteEnvFiles, parseDuration, subscribeCustomers, writeEnvFiles } from "./lib/local.ts";

const say = (line: string) => console.log(line);
const { ethers } = await network.getOrCreate();
const signers = await ethers.getSigners();
const plan = process.env.RECUR_LOCAL_SUBSCRIBE;
const by = process.env.RECUR_LOCAL_ADVANCE;

try {
  if (plan === undefined && by === undefined) {
    // Checked before deploying: a second stack must not leave the first .env pointing nowhere.
    if (!mayWriteEnvFiles(process.cwd(), process.env.RECUR_LOCAL_FORCE === "1", (line) => console.error(line))) process.exitCode = 1;
    else {
      const customers = await Promise.all(signers.slice(3, 10).map((s) => s.getAddress()));
      writeEnvFiles(process.cwd(), envFiles(await deployLocal(signers[0]!, customers, say)), say);
      say("Next: npm run recur -- plan create --token tUSDC --price 9.99 --period 30d --trial 7d --grace 3d");
    }
  }
  if (plan !== undefined) await subscribeCustomers(plan, [signers[3]!, signers[4]!, signers[5]!], say);
  if (by !== undefined) await advance((method, params) => ethers.provider.send(method, params), parseDuration("RECUR_LOCAL_ADVANCE", by), say);
} catch (error) {
  console.error(`local: ${(error as Error).message.split("\n")[0]}`);
  process.exitCode = 1;
}

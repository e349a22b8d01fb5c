// README "For merchants", end to end: a real hardhat node, scripts/local.ts's steps (deploy, mint, the
// .env and keeper.env it writes, three customers, time), then the real binary (bin/recur.ts) for
// `plan create`, the keeper's `run --once` and the four reports, each reading the files the script wrote.
// What the chain holds (its Charged events, the merchant's balance) is the proof.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet } from "ethers";

import { advance, deployLocal, envFiles, KEEPER_KEY, mayWriteEnvFiles, MERCHANT_KEY, MINT, subscribeCustomers, writeEnvFiles } from "../../scripts/lib/local.ts";
import { accountKey, accounts, at, runKeeper, useSharedNode } from "../keeper/support/chain.ts";
import type { Node, RunResult } from "../keeper/support/chain.ts";

const detail = (r: RunResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe("README: For merchants", function () {
  this.timeout(90_000);
  const chain: { node: Node } = { node: undefined as unknown as Node };
  useSharedNode((node) => (chain.node = node));
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "recur-walkthrough-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("the local script's keys are Hardhat's account #1 (merchant) and #2 (keeper)", () => {
    expect(MERCHANT_KEY).to.equal(accountKey(1));
    expect(KEEPER_KEY).to.equal(accountKey(2));
  });

  it("goes from nothing to a plan, charged customers and reports that agree with the chain", async () => {
    const { provider, url } = chain.node;
    const signers = accounts(provider, 10);
    const said: string[] = [];
    const say = (line: string) => void said.push(line);

    // 1. scripts/local.ts: deploy, mint, write .env and keeper.env; a second run refuses.
    expect(mayWriteEnvFiles(dir, false, say)).to.equal(true);
    const customers = await Promise.all(signers.slice(3, 10).map((s) => s.getAddress()));
    const stack = await deployLocal(signers[0]!, customers, say);
    writeEnvFiles(dir, envFiles(stack, url), say);
    expect(statSync(path.join(dir, ".env")).mode & 0o777).to.equal(0o600);
    expect(readFileSync(path.join(dir, ".env"), "utf8")).to.include(`RECUR_FACTORY=${stack.factory}`).and.include(`RECUR_PRIVATE_KEY=${MERCHANT_KEY}`).and.include("PUBLIC TEST KEY");
    expect(readFileSync(path.join(dir, "keeper.env"), "utf8")).to.include(`RECUR_PRIVATE_KEY=${KEEPER_KEY}`);
    expect(mayWriteEnvFiles(dir, false, say)).to.equal(false);
    expect(said.at(-1)).to.match(/^local: \.env and keeper\.env already exist in .*: nothing done; move them away, or set RECUR_LOCAL_FORCE=1 to overwrite$/);
    expect(mayWriteEnvFiles(dir, true, say)).to.equal(true);
    const token = at("TestUSDC", stack.token, provider as never);
    for (const c of customers) expect(await token.getFunction("balanceOf")(c)).to.equal(MINT);

    // The commands read the files the script wrote; only where the index and journals live is set here.
    const files = { RECUR_STORE: path.join(dir, "recur.sqlite"), RECUR_USAGE_JOURNAL: path.join(dir, "recur-usage.sqlite"), RECUR_TX_TIMEOUT: "30" };
    const recur = async (args: string[], envFile = ".env", stdin?: string): Promise<RunResult> => {
      const r = await runKeeper([...args, "--env-file", path.join(dir, envFile)], files, stdin === undefined ? {} : { stdin });
      expect(r.code, `${args.join(" ")}\n${detail(r)}`).to.equal(0);
      return r;
    };

    // 2. plan create: without --yes it shows what it sends and asks; "n" sends nothing.
    const merchant = new Wallet(MERCHANT_KEY).address;
    const nonce = await provider.getTransactionCount(merchant);
    const terms = ["plan", "create", "--token", "tUSDC", "--price", "9.99", "--period", "30d", "--trial", "7d", "--grace", "3d"];
    const asked = await runKeeper([...terms, "--env-file", path.join(dir, ".env")], files, { stdin: "n\n" });
    expect(asked.stderr).to.include("Send? [y/N]").and.include("price             9.99");
    expect(await provider.getTransactionCount(merchant)).to.equal(nonce);
    const created = JSON.parse((await recur([...terms, "--yes", "--json"])).stdout) as { plan: string; checkout: string };
    expect(created.checkout).to.include(`plan=`);
    const plan = created.plan.toLowerCase();

    // 3. customers subscribe (one with a ref, one short of allowance); 4. time moves past the trial.
    await subscribeCustomers(plan, [signers[3]!, signers[4]!, signers[5]!], say);
    await advance((m, p) => chain.node.send(m, p), 8 * 86_400, say);

    // 5. the keeper, with its own key from keeper.env.
    const keeper = await recur(["run", "--once"], "keeper.env");
    const pass = keeper.lines.find((l) => l.event === "pass")!;
    expect(pass).to.include({ due: 3, charged: 2 });
    expect(pass.skipped).to.deep.equal({ AllowanceTooLow: 1 });
    expect(keeper.lines.find((l) => l.event === "start")!.keeper).to.equal(new Wallet(KEEPER_KEY).address.toLowerCase());

    // What the chain holds.
    const planContract = at("FixedPricePlan", plan, provider as never);
    const charged = await planContract.queryFilter(planContract.filters.Charged!());
    const chainTotal = charged.reduce((sum, e) => sum + ((e as unknown as { args: { amount: bigint } }).args.amount), 0n);
    expect(charged.length).to.equal(2);
    expect(await token.getFunction("balanceOf")(merchant)).to.equal(chainTotal);

    // 6. the four reports.
    const plans = JSON.parse((await recur(["plans", "--json"])).stdout) as { plans: { plan: string; subscriptions: Record<string, number> }[] };
    expect(plans.plans.map((p) => p.plan)).to.deep.equal([plan]);
    expect(plans.plans[0]!.subscriptions).to.include({ Active: 2, PastDue: 1 });

    const subscribers = JSON.parse((await recur(["subscribers", "--plan", plan, "--json"])).stdout) as { subscribers: { subscriber: string; ref: string | null; status: string; totalPaidBaseUnits: string }[] };
    const bySubscriber = new Map(subscribers.subscribers.map((s) => [s.subscriber, s]));
    const [plain, withRef, short] = await Promise.all([3, 4, 5].map((i) => signers[i]!.getAddress().then((a) => a.toLowerCase())));
    expect(bySubscriber.get(plain!)).to.include({ status: "Active", ref: null, totalPaidBaseUnits: "9990000" });
    expect(bySubscriber.get(withRef!)).to.include({ status: "Active", ref: "order-1042", totalPaidBaseUnits: "9990000" });
    expect(bySubscriber.get(short!)).to.include({ status: "PastDue", totalPaidBaseUnits: "0" });

    const csv = (await recur(["charges", "--plan", plan, "--csv"])).stdout.trim().split("\n");
    const header = csv[0]!.split(",");
    const rows = csv.slice(1).map((line) => Object.fromEntries(line.split(",").map((v, i) => [header[i], v])));
    expect(rows.map((r) => [r.event, r.tx_hash, r.amount_base_units])).to.deep.equal(charged.map((e) => ["charged", e.transactionHash, "9990000"]));

    const revenue = JSON.parse((await recur(["revenue", "--by", "day", "--json"])).stdout) as { collected: { tokens: { currency: string; amountBaseUnits: string }[] }[] };
    const collected = revenue.collected.flatMap((b) => b.tokens).filter((t) => t.currency === stack.token.toLowerCase());
    expect(collected.reduce((sum, t) => sum + BigInt(t.amountBaseUnits), 0n)).to.equal(chainTotal);

    // Human output too (what the README shows).
    expect((await recur(["revenue", "--by", "day"])).stdout).to.match(/collected\s+\S+\s+0x[0-9a-f]{40}\s+tUSDC\s+19\.98/);
    expect(existsSync(files.RECUR_STORE)).to.equal(true);
  });
});

// `recur plan …` end to end: one real hardhat node for the file, a token, the factory and a USD feed
// deployed to it, and the real binary (bin/recur.ts) as a child process. What the chain holds afterwards
// (the factory's isPlan, the plan's views, the signer's nonce) is the proof; nothing is mocked.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { encryptKeystoreJsonSync, getAddress, Wallet } from "ethers";
import type { Contract, JsonRpcProvider } from "ethers";

import { accountKey, accounts, at, deploy, runKeeper, useSharedNode } from "../keeper/support/chain.ts";
import type { Node, RunResult } from "../keeper/support/chain.ts";

const MERCHANT_KEY = accountKey(1);
const MERCHANT = new Wallet(MERCHANT_KEY).address.toLowerCase();
const STRANGER_KEY = accountKey(2);
const STRANGER = new Wallet(STRANGER_KEY).address.toLowerCase();
const OTHER = new Wallet(accountKey(3)).address.toLowerCase();
const CHECKOUT = "https://pay.example.com/checkout.html";

const detail = (r: RunResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const errorLines = (r: RunResult) => r.stderr.split("\n").filter((l) => l.startsWith("recur: "));

describe("recur plan", function () {
  this.timeout(120_000);
  let node: Node;
  let provider: JsonRpcProvider;
  let token: Contract;
  let factory: Contract;
  let feed: Contract;
  let wideFeed: Contract;
  let tokenAddress: string;
  let factoryAddress: string;
  useSharedNode((n) => {
    node = n;
    provider = n.provider;
  });

  before(async () => {
    const [deployer] = accounts(provider, 1);
    token = await deploy("TestUSDC", deployer!);
    factory = await deploy("PlanFactory", deployer!);
    feed = await deploy("MockAggregator", deployer!, [8, 100_000_000n]);
    // 6 (the token) + 31 decimals: above the 36 the price conversion handles.
    wideFeed = await deploy("MockAggregator", deployer!, [31, 100_000_000n]);
    tokenAddress = (await token.getAddress()).toLowerCase();
    factoryAddress = (await factory.getAddress()).toLowerCase();
  });

  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    RECUR_RPC_URL: node.url,
    RECUR_CHAIN_ID: "31337",
    RECUR_FACTORY: factoryAddress,
    RECUR_FACTORY_BLOCK: "0",
    RECUR_PRIVATE_KEY: MERCHANT_KEY,
    RECUR_CONFIRMATIONS: "1",
    RECUR_TX_TIMEOUT: "30",
    RECUR_TOKENS: `USDC=${tokenAddress}`,
    RECUR_CHECKOUT_URL: CHECKOUT,
    ...extra,
  });
  const nonce = (address: string) => provider.getTransactionCount(address, "latest");
  const recur = (args: string[], extra: Record<string, string> = {}, stdin?: string) =>
    runKeeper(args, env(extra), stdin === undefined ? {} : { stdin });

  /** `plan create … --yes --json`: the report, after checking the exit code. */
  async function create(args: string[], extra: Record<string, string> = {}): Promise<Record<string, any>> {
    const r = await recur(["plan", "create", ...args, "--yes", "--json"], extra);
    expect(r.code, detail(r)).to.equal(0);
    return JSON.parse(r.stdout) as Record<string, any>;
  }

  const FIXED = ["--token", "USDC", "--price", "9.99", "--period", "30d", "--grace", "3d"];

  describe("plan create", () => {
    it("creates a fixed plan owned by the signer, with the terms as given, and prints its checkout link", async () => {
      const report = await create([...FIXED, "--trial", "7d", "--keeper-fee", "0.5%", "--keeper-restricted"]);
      const plan = at("FixedPricePlan", report.plan, provider as never);
      expect(await factory.getFunction("isPlan")(report.plan)).to.equal(true);
      expect(report.isPlan).to.equal(true);
      expect((await plan.getFunction("owner")()).toLowerCase()).to.equal(MERCHANT);
      expect((await plan.getFunction("token")()).toLowerCase()).to.equal(tokenAddress);
      expect((await plan.getFunction("payee")()).toLowerCase()).to.equal(MERCHANT);
      expect(await plan.getFunction("price")()).to.equal(9_990_000n);
      expect(await plan.getFunction("period")()).to.equal(30n * 86_400n);
      expect(await plan.getFunction("trialPeriod")()).to.equal(7n * 86_400n);
      expect(await plan.getFunction("gracePeriod")()).to.equal(3n * 86_400n);
      expect(await plan.getFunction("billingMode")()).to.equal(0n);
      expect(await plan.getFunction("keeperFeeBps")()).to.equal(50n);
      expect(await plan.getFunction("keeperRestricted")()).to.equal(true);
      expect(report.terms.price).to.deep.equal({ units: "9.99", base: "9990000" });
      expect(report.terms).to.include({ owner: MERCHANT, token: tokenAddress, symbol: "USDC", decimals: 6, billingMode: "Fixed", status: "Active", keeperFeeBps: 50 });
      expect(report.checkout).to.equal(`${CHECKOUT}?plan=${getAddress(report.plan)}`);
    });

    it("creates a USD-priced plan: the price in USD with 8 decimals, the feed, its age bound and the buffer", async () => {
      const feedAddress = (await feed.getAddress()).toLowerCase();
      const report = await create(["--token", tokenAddress, "--price-usd", "9.99", "--feed", feedAddress, "--max-price-age", "1h", "--allowance-buffer", "10%", "--period", "30d", "--grace", "3d"]);
      const plan = at("FixedPricePlan", report.plan, provider as never);
      expect(await plan.getFunction("price")()).to.equal(999_000_000n);
      const [pricedBy, maxAge, buffer] = await plan.getFunction("usdPricing")();
      expect([String(pricedBy).toLowerCase(), maxAge, buffer]).to.deep.equal([feedAddress, 3_600n, 1_000n]);
      expect(report.terms).to.include({ priceIn: "USD", priceFeed: feedAddress, maxPriceAge: 3600, allowanceBufferBps: 1000 });
      expect(report.terms.price).to.deep.equal({ units: "9.99", base: "999000000" });
    });

    it("creates a metered plan with its per-cycle cap and free credits, and another payee", async () => {
      const report = await create(["--token", "usdc", "--metered", "--cap", "50", "--free-credits", "5", "--period", "30d", "--grace", "3d", "--payee", OTHER]);
      const plan = at("MeteredPlan", report.plan, provider as never);
      expect(await factory.getFunction("isPlan")(report.plan)).to.equal(true);
      expect(await plan.getFunction("billingMode")()).to.equal(1n);
      expect(await plan.getFunction("perCycleCap")()).to.equal(50_000_000n);
      expect(await plan.getFunction("freeCredits")()).to.equal(5_000_000n);
      expect((await plan.getFunction("payee")()).toLowerCase()).to.equal(OTHER);
      expect(report.terms.perCycleCap).to.deep.equal({ units: "50", base: "50000000" });
      expect(report.terms.freeCredits).to.deep.equal({ units: "5", base: "5000000" });
    });

    it("reads the terms from --file (keyed by the flags' names), flags overriding it", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "recur-terms-"));
      const file = path.join(dir, "terms.json");
      writeFileSync(file, JSON.stringify({ token: "USDC", price: "1.5", period: "7d", grace: "1d", trial: "1d", "keeper-restricted": true }));
      const report = await create(["--file", file, "--price", "2.25"]);
      const plan = at("FixedPricePlan", report.plan, provider as never);
      expect(await plan.getFunction("price")()).to.equal(2_250_000n);
      expect(await plan.getFunction("period")()).to.equal(7n * 86_400n);
      expect(await plan.getFunction("trialPeriod")()).to.equal(86_400n);
      expect(await plan.getFunction("keeperRestricted")()).to.equal(true);
    });

    it("accepts every term at its bounds (the chain agrees: --dry-run simulates createPlan)", async () => {
      const feedAddress = (await feed.getAddress()).toLowerCase();
      for (const args of [
        ["--token", "USDC", "--price", "0.000001", "--period", "1h", "--grace", "15m"],
        ["--token", "USDC", "--price", "79228162514264337593543.950335", "--period", "3660d", "--grace", "3659d", "--trial", "366d", "--keeper-fee", "10%"],
        ["--token", "USDC", "--price", "1", "--period", "1h", "--grace", "3599s", "--keeper-fee", "0.01%"],
        ["--token", "USDC", "--price-usd", "0.00000001", "--feed", feedAddress, "--max-price-age", "1m", "--period", "1h", "--grace", "15m"],
        ["--token", "USDC", "--price-usd", "1", "--feed", feedAddress, "--max-price-age", "7d", "--allowance-buffer", "50%", "--period", "1h", "--grace", "15m"],
        ["--token", "USDC", "--metered", "--cap", "0.000001", "--period", "1h", "--grace", "15m"],
        ["--token", "USDC", "--metered", "--cap", "79228162514264337593543.950335", "--free-credits", "79228162514264337593543.950335", "--period", "30d", "--grace", "3d"],
      ]) {
        const r = await recur(["plan", "create", ...args, "--dry-run", "--json"]);
        expect(r.code, `${args.join(" ")}\n${detail(r)}`).to.equal(0);
        expect(JSON.parse(r.stdout)).to.include({ dryRun: true });
      }
    });

    describe("refuses every term out of bounds with one line, and sends nothing", () => {
      let wideAddress = "";
      let feedAddress = "";
      const cases: [string, () => string[], string | (() => string)][] = [
        ["period below 1h", () => ["--token", "USDC", "--price", "1", "--period", "59m", "--grace", "15m"], '--period: expected a duration from 1h to 3660d, like 90s, 10m, 6h, 30d, got "59m"'],
        ["period above 3660d", () => ["--token", "USDC", "--price", "1", "--period", "3661d", "--grace", "3d"], '--period: expected a duration from 1h to 3660d, like 90s, 10m, 6h, 30d, got "3661d"'],
        ["period not a duration", () => ["--token", "USDC", "--price", "1", "--period", "a month", "--grace", "3d"], '--period: expected a duration from 1h to 3660d, like 90s, 10m, 6h, 30d, got "a month"'],
        ["grace below 15m", () => ["--token", "USDC", "--price", "1", "--period", "30d", "--grace", "14m"], '--grace: expected a duration from 15m to 2591999s (the period 30d less 1s), like 90s, 10m, 6h, 30d, got "14m"'],
        ["grace as long as the period", () => ["--token", "USDC", "--price", "1", "--period", "30d", "--grace", "30d"], '--grace: expected a duration from 15m to 2591999s (the period 30d less 1s), like 90s, 10m, 6h, 30d, got "30d"'],
        ["grace missing", () => ["--token", "USDC", "--price", "1", "--period", "30d"], "--grace: expected a duration from 15m to 2591999s (the period 30d less 1s), got nothing"],
        ["trial above 366d", () => [...FIXED, "--trial", "367d"], '--trial: expected a duration from 0s to 366d, like 90s, 10m, 6h, 30d, got "367d"'],
        ["price 0", () => ["--token", "USDC", "--price", "0", "--period", "30d", "--grace", "3d"], '--price: expected an amount from 0.000001 to 79228162514264337593543.950335 token units with at most 6 decimals, got "0"'],
        ["price above uint96", () => ["--token", "USDC", "--price", "79228162514264337593543.950336", "--period", "30d", "--grace", "3d"], '--price: expected an amount from 0.000001 to 79228162514264337593543.950335 token units with at most 6 decimals, got "79228162514264337593543.950336"'],
        ["price finer than the token's decimals", () => ["--token", "USDC", "--price", "9.9999991", "--period", "30d", "--grace", "3d"], '--price: expected an amount from 0.000001 to 79228162514264337593543.950335 token units with at most 6 decimals, got "9.9999991"'],
        ["price and price-usd both", () => [...FIXED, "--price-usd", "1"], '--price: expected either --price (token units) or --price-usd with --feed, not both and not neither, got "9.99 and --price-usd 1"'],
        ["no price", () => ["--token", "USDC", "--period", "30d", "--grace", "3d"], "--price: expected either --price (token units) or --price-usd with --feed, not both and not neither, got nothing"],
        ["keeper fee above 10%", () => [...FIXED, "--keeper-fee", "10.01%"], '--keeper-fee: expected a percentage from 0% to 10% in steps of 0.01% (1 bps), e.g. "0.5%", got "10.01%"'],
        ["keeper fee finer than 1 bps", () => [...FIXED, "--keeper-fee", "0.005%"], '--keeper-fee: expected a percentage from 0% to 10% in steps of 0.01% (1 bps), e.g. "0.5%", got "0.005%"'],
        ["keeper fee without %", () => [...FIXED, "--keeper-fee", "50"], '--keeper-fee: expected a percentage from 0% to 10% in steps of 0.01% (1 bps), e.g. "0.5%", got "50"'],
        ["usd price 0", () => usd(["--price-usd", "0"]), '--price-usd: expected an amount from 0.00000001 to 792281625142643375935.43950335 USD with at most 8 decimals, got "0"'],
        ["usd price finer than 8 decimals", () => usd(["--price-usd", "9.999999991"]), '--price-usd: expected an amount from 0.00000001 to 792281625142643375935.43950335 USD with at most 8 decimals, got "9.999999991"'],
        ["price age below 1m", () => usd(["--max-price-age", "59s"]), '--max-price-age: expected a duration from 1m to 7d, like 90s, 10m, 6h, 30d, got "59s"'],
        ["price age above 7d", () => usd(["--max-price-age", "604801"]), '--max-price-age: expected a duration from 1m to 7d, like 90s, 10m, 6h, 30d, got "604801"'],
        ["price age missing", () => usd([], ["--max-price-age"]), "--max-price-age: expected a duration from 1m to 7d (with --price-usd), got nothing"],
        ["buffer above 50%", () => usd(["--allowance-buffer", "50.01%"]), '--allowance-buffer: expected a percentage from 0% to 50% in steps of 0.01% (1 bps), e.g. "0.5%", got "50.01%"'],
        ["feed missing", () => usd([], ["--feed"]), "--feed: expected the USD price feed's address (with --price-usd), got nothing"],
        ["feed and token decimals above 36", () => usd(["--feed", wideAddress]), () => `--feed: expected a feed whose decimals plus the token's (6) are at most 36, got "${wideAddress} (31 decimals)"`],
        ["feed that is no contract", () => usd(["--feed", OTHER]), `--feed: expected a price feed that answers decimals(), got "${OTHER}"`],
        ["feed on a token-priced plan", () => [...FIXED, "--feed", OTHER], `--feed: expected nothing: it does not apply to a plan priced in token units (only with --price-usd), got "${OTHER}"`],
        ["cap on a fixed plan", () => [...FIXED, "--cap", "5"], '--cap: expected nothing: it does not apply to a fixed plan (only with --metered), got "5"'],
        ["cap 0", () => metered(["--cap", "0"]), '--cap: expected an amount from 0.000001 to 79228162514264337593543.950335 token units with at most 6 decimals, got "0"'],
        ["cap above uint96", () => metered(["--cap", "79228162514264337593543.950336"]), '--cap: expected an amount from 0.000001 to 79228162514264337593543.950335 token units with at most 6 decimals, got "79228162514264337593543.950336"'],
        ["free credits above uint96", () => metered(["--free-credits", "79228162514264337593543.950336"]), '--free-credits: expected an amount from 0 to 79228162514264337593543.950335 token units with at most 6 decimals, got "79228162514264337593543.950336"'],
        ["a trial on a metered plan", () => metered(["--trial", "7d"]), '--trial: expected nothing: it does not apply to a metered plan, got "7d"'],
        ["a price on a metered plan", () => metered(["--price", "1"]), '--price: expected nothing: it does not apply to a metered plan, got "1"'],
        ["keeper-restricted on a metered plan", () => metered(["--keeper-restricted"]), '--keeper-restricted: expected nothing: it does not apply to a metered plan, got "true"'],
        ["payee zero", () => [...FIXED, "--payee", "0x0000000000000000000000000000000000000000"], '--payee: expected the payee\'s 0x-prefixed 20-byte address, not the zero address, got "0x0000000000000000000000000000000000000000"'],
        ["payee the token", () => [...FIXED, "--payee", tokenAddress], () => `--payee: expected an address other than the token contract, got "${tokenAddress}"`],
        ["token symbol unknown", () => ["--token", "DAI", "--price", "1", "--period", "30d", "--grace", "3d"], '--token: expected a token address (0x…) or a symbol of RECUR_TOKENS (USDC), got "DAI"'],
        ["token zero", () => ["--token", "0x0000000000000000000000000000000000000000", "--price", "1", "--period", "30d", "--grace", "3d"], '--token: expected a token address (0x…) or a symbol of RECUR_TOKENS (USDC), not the zero address, got "0x0000000000000000000000000000000000000000"'],
        ["token without decimals()", () => ["--token", OTHER, "--price", "1", "--period", "30d", "--grace", "3d"], `--token: expected an ERC-20 contract that answers decimals(), got "${OTHER}"`],
      ];
      before(async () => {
        wideAddress = (await wideFeed.getAddress()).toLowerCase();
        feedAddress = (await feed.getAddress()).toLowerCase();
      });
      /** A valid USD-priced plan's flags with `over` replacing (or adding) flags and `drop` left out. */
      function usd(over: string[], drop: string[] = []): string[] {
        const flags = new Map([["--token", "USDC"], ["--price-usd", "9.99"], ["--feed", feedAddress], ["--max-price-age", "1h"], ["--period", "30d"], ["--grace", "3d"]]);
        for (let i = 0; i < over.length; i += 2) flags.set(over[i]!, over[i + 1]!);
        for (const d of drop) flags.delete(d);
        return [...flags].flat();
      }
      function metered(extra: string[]): string[] {
        const flags = ["--token", "USDC", "--metered", "--cap", "50", "--period", "30d", "--grace", "3d"];
        const cap = extra.indexOf("--cap");
        if (cap >= 0) flags.splice(3, 2);
        return [...flags, ...extra];
      }

      for (const [name, args, expected] of cases) {
        it(`${name}: one line naming the term, exit 1, nothing sent`, async () => {
          const line = typeof expected === "string" ? expected : expected();
          const before = await nonce(MERCHANT);
          const count = await factory.getFunction("planCount")();
          const r = await recur(["plan", "create", ...args(), "--yes"]);
          expect(r.code, detail(r)).to.equal(1);
          expect(errorLines(r), detail(r)).to.deep.equal([`recur: ${line}`]);
          expect(r.stdout).to.equal("");
          expect(await nonce(MERCHANT)).to.equal(before);
          expect(await factory.getFunction("planCount")()).to.equal(count);
        });
      }
    });

    it("without --yes, says what it will send and sends nothing unless the answer is y", async () => {
      const before = await nonce(MERCHANT);
      const no = await recur(["plan", "create", ...FIXED], {}, "n\n");
      expect(no.code, detail(no)).to.equal(1);
      expect(no.stderr).to.include(`Create a plan through the factory ${factoryAddress}, owned by the signer ${MERCHANT}:`);
      expect(no.stderr).to.match(/price\s+9\.99 USDC/);
      expect(no.stderr).to.include("Send? [y/N]");
      expect(no.stderr).to.include("Send? [y/N] recur: not sent\n");
      const closed = await recur(["plan", "create", ...FIXED]);
      expect(closed.code, detail(closed)).to.equal(1);
      expect(await nonce(MERCHANT)).to.equal(before);

      const yes = await recur(["plan", "create", ...FIXED], {}, "y\n");
      expect(yes.code, detail(yes)).to.equal(0);
      expect(yes.stdout).to.match(/^Created plan 0x[0-9a-f]{40} /);
      expect(yes.stdout).to.include(`checkout: ${CHECKOUT}?plan=0x`);
      expect(await nonce(MERCHANT)).to.equal(before + 1);
    });

    it("signs from RECUR_KEYSTORE and never prints the key or the password", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "recur-keystore-"));
      const wallet = new Wallet(accountKey(4));
      const password = "correct horse battery staple";
      const file = path.join(dir, "keystore.json");
      // A low scrypt cost, so that the test does not spend seconds decrypting.
      writeFileSync(file, encryptKeystoreJsonSync({ address: wallet.address, privateKey: wallet.privateKey }, password, { scrypt: { N: 1024 } }));
      const keystoreEnv = { RECUR_PRIVATE_KEY: "", RECUR_KEYSTORE: file, RECUR_KEYSTORE_PASSWORD: password };
      const r = await runKeeper(["plan", "create", ...FIXED, "--yes"], Object.fromEntries(Object.entries(env(keystoreEnv)).filter(([k]) => k !== "RECUR_PRIVATE_KEY")));
      expect(r.code, detail(r)).to.equal(0);
      const out = r.stdout + r.stderr;
      expect(out).to.include(`owned by the signer ${wallet.address.toLowerCase()}`);
      for (const secret of [wallet.privateKey, wallet.privateKey.slice(2), password]) expect(out).to.not.include(secret);

      const wrong = await runKeeper(["plan", "create", ...FIXED, "--yes"], Object.fromEntries(Object.entries(env({ ...keystoreEnv, RECUR_KEYSTORE_PASSWORD: "wrong" })).filter(([k]) => k !== "RECUR_PRIVATE_KEY")));
      expect(wrong.code, detail(wrong)).to.equal(1);
      expect(errorLines(wrong)).to.deep.equal(["recur: RECUR_KEYSTORE_PASSWORD: expected the password of RECUR_KEYSTORE, got one that does not decrypt it"]);
    });

    it("--help lists the terms' options, the file format, the exit codes and examples", async () => {
      const r = await runKeeper(["plan", "create", "--help"], {});
      expect(r.code, detail(r)).to.equal(0);
      for (const flag of ["--token T", "--price AMOUNT", "--period DURATION", "--trial DURATION", "--grace DURATION", "--price-usd USD", "--feed ADDRESS", "--max-price-age DURATION", "--allowance-buffer PERCENT", "--metered", "--cap AMOUNT", "--free-credits AMOUNT", "--keeper-fee PERCENT", "--keeper-restricted", "--file FILE", "--yes"]) {
        expect(r.stdout, flag).to.include(flag);
      }
      expect(r.stdout).to.include("exit codes");
      expect(r.stdout).to.include("examples:\n  recur plan create --token USDC --price 9.99 --period 30d --trial 7d --grace 3d");
    });
  });

  describe("the owner's actions", () => {
    let fixedPlan: string;
    let meteredPlan: string;
    before(async () => {
      fixedPlan = (await create(FIXED)).plan as string;
      meteredPlan = (await create(["--token", "USDC", "--metered", "--cap", "50", "--period", "30d", "--grace", "3d"])).plan as string;
    });
    const fixed = () => at("FixedPricePlan", fixedPlan, provider as never);
    const meteredC = () => at("MeteredPlan", meteredPlan, provider as never);

    async function act(args: string[], extra: Record<string, string> = {}): Promise<Record<string, any>> {
      const r = await recur(["plan", ...args, "--yes", "--json"], extra);
      expect(r.code, detail(r)).to.equal(0);
      return JSON.parse(r.stdout) as Record<string, any>;
    }

    /** Refused with `line`, exit 1, and `who`'s nonce unchanged. */
    async function refused(args: string[], line: string, key = MERCHANT_KEY): Promise<void> {
      const who = new Wallet(key).address;
      const before = await nonce(who);
      const r = await recur(["plan", ...args, "--yes"], { RECUR_PRIVATE_KEY: key });
      expect(r.code, detail(r)).to.equal(1);
      expect(errorLines(r), detail(r)).to.deep.equal([`recur: ${line}`]);
      expect(await nonce(who)).to.equal(before);
    }

    it("hold, activate and retire set the status; after retirement, activate is refused with the contract's error", async () => {
      expect((await act(["hold", "--plan", fixedPlan])).status).to.equal("OnHold");
      expect(await fixed().getFunction("status")()).to.equal(1n);
      expect((await act(["activate", "--plan", fixedPlan])).status).to.equal("Active");
      expect(await fixed().getFunction("status")()).to.equal(0n);
      await refused(["activate", "--plan", fixedPlan], `--plan: the chain refused setStatus: InvalidStatusTransition(from Active, to Active); nothing sent`);
      const retiredPlan = (await create(FIXED)).plan as string;
      expect((await act(["retire", "--plan", retiredPlan])).status).to.equal("Retired");
      await refused(["activate", "--plan", retiredPlan], `--plan: the chain refused setStatus: InvalidStatusTransition(from Retired, to Active); nothing sent`);
    });

    it("payee changes where charges are paid; a payee the plan refuses (the token) is refused with its error, nothing sent", async () => {
      expect((await act(["payee", "--plan", fixedPlan, "--to", OTHER])).payee).to.equal(OTHER);
      expect((await fixed().getFunction("payee")()).toLowerCase()).to.equal(OTHER);
      await refused(["payee", "--plan", fixedPlan, "--to", tokenAddress], `--plan: the chain refused setPayee: InvalidPayee(payee ${getAddress(tokenAddress)}); nothing sent`);
    });

    it("keepers authorizes and revokes on a fixed plan, and is refused on a metered one", async () => {
      const report = await act(["keepers", "--plan", fixedPlan, "--add", `${OTHER},${STRANGER}`]);
      expect(report.sent).to.have.length(2);
      expect(await fixed().getFunction("isKeeper")(OTHER)).to.equal(true);
      expect(await fixed().getFunction("isKeeper")(STRANGER)).to.equal(true);
      const again = await act(["keepers", "--plan", fixedPlan, "--add", OTHER, "--remove", STRANGER]);
      expect(again.sent).to.have.length(1);
      expect(again.unchanged).to.deep.equal([`${OTHER} is already a keeper`]);
      expect(await fixed().getFunction("isKeeper")(STRANGER)).to.equal(false);
      await refused(["keepers", "--plan", meteredPlan, "--add", OTHER], `--plan: ${meteredPlan} is a metered plan: plan keepers applies to fixed plans only`);
    });

    it("reporters authorizes on a metered plan, and is refused on a fixed one", async () => {
      await act(["reporters", "--plan", meteredPlan, "--add", OTHER]);
      expect(await meteredC().getFunction("isReporter")(OTHER)).to.equal(true);
      await act(["reporters", "--plan", meteredPlan, "--remove", OTHER]);
      expect(await meteredC().getFunction("isReporter")(OTHER)).to.equal(false);
      await refused(["reporters", "--plan", fixedPlan, "--add", OTHER], `--plan: ${fixedPlan} is a fixed plan: plan reporters applies to metered plans only`);
    });

    it("block and unblock set a subscriber's block; cancel-subscriber and write-off decode the contract's refusal", async () => {
      expect((await act(["block", "--plan", fixedPlan, "--subscriber", OTHER])).blocked).to.equal(true);
      expect(await fixed().getFunction("isBlocked")(OTHER)).to.equal(true);
      expect((await act(["unblock", "--plan", fixedPlan, "--subscriber", OTHER])).blocked).to.equal(false);
      expect(await fixed().getFunction("isBlocked")(OTHER)).to.equal(false);
      await refused(["cancel-subscriber", "--plan", fixedPlan, "--subscriber", OTHER], `--plan: the chain refused cancelFor: InvalidSubscriptionStatus(subscriber ${getAddress(OTHER)}, status None); nothing sent`);
      await refused(["write-off", "--plan", meteredPlan, "--subscriber", OTHER], `--plan: the chain refused writeOff: NothingToWriteOff(subscriber ${getAddress(OTHER)}, status None); nothing sent`);
      await refused(["write-off", "--plan", fixedPlan, "--subscriber", OTHER], `--plan: ${fixedPlan} is a fixed plan: plan write-off applies to metered plans only`);
    });

    it("every action is refused for a signer that is not the owner, and nothing is sent", async () => {
      for (const args of [
        ["hold", "--plan", fixedPlan],
        ["retire", "--plan", fixedPlan],
        ["payee", "--plan", fixedPlan, "--to", STRANGER],
        ["keepers", "--plan", fixedPlan, "--add", STRANGER],
        ["reporters", "--plan", meteredPlan, "--add", STRANGER],
        ["block", "--plan", fixedPlan, "--subscriber", OTHER],
        ["cancel-subscriber", "--plan", fixedPlan, "--subscriber", OTHER],
        ["write-off", "--plan", meteredPlan, "--subscriber", OTHER],
      ]) {
        await refused(args, `--plan: ${args[2]!} is owned by ${MERCHANT}, not by the signer ${STRANGER}`, STRANGER_KEY);
      }
      expect(await fixed().getFunction("status")()).to.equal(0n);
    });

    it("without --yes, an action says what it will send and sends nothing", async () => {
      const before = await nonce(MERCHANT);
      const r = await recur(["plan", "hold", "--plan", fixedPlan], {}, "\n");
      expect(r.code, detail(r)).to.equal(1);
      expect(r.stderr).to.include(`On the plan ${fixedPlan}, as its owner ${MERCHANT}:\n  set the status to OnHold`);
      expect(await nonce(MERCHANT)).to.equal(before);
      expect(await fixed().getFunction("status")()).to.equal(0n);
    });
  });
});

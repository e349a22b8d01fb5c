// The customer pages in a real headless Chromium against a real `hardhat node`, served by the real
// `recur serve` process, with the test wallet of ./support/browser.ts. Every flow asserts what the page
// shows and what the chain then holds. Screenshots of each state go to test-results/screenshots/.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Contract, encodeBytes32String, HDNodeWallet, NonceManager, Wallet } from "ethers";
import type { Signer } from "ethers";
import type { Browser, BrowserContext, Page } from "playwright-core";

import { accountKey, accounts, at, deploy, killKeepers, poll as pollFor, ROOT, runKeeper, startKeeper, startNode } from "../keeper/support/chain.ts";
import type { KeeperProcess, Node } from "../keeper/support/chain.ts";
import { terms } from "../keeper/support/scenario.ts";
import { injectWallet, launchBrowser } from "./support/browser.ts";
import type { TestWallet, WalletState } from "./support/browser.ts";

const SHOTS = path.join(ROOT, "test-results/screenshots");
const DAY = 86_400n;
const PRICE = 9_990_000n; // 9.99 tUSDC
const CHAIN = 31_337n;

interface World {
  node: Node;
  browser: Browser;
  serve: KeeperProcess;
  url: string;
  deployer: Signer;
  merchant: Signer;
  merchantAddress: string;
  usdc: Contract;
  weth: Contract;
  factory: Contract;
  factoryBlock: bigint;
  env: Record<string, string>;
}

describe("customer pages (headless Chromium, recur serve, hardhat node)", function () {
  this.timeout(120_000);
  const w = {} as World;
  const contexts: BrowserContext[] = [];

  before(async function () {
    this.timeout(240_000);
    mkdirSync(SHOTS, { recursive: true });
    // Both started side by side; whichever started is kept for `after` to stop, even if the other failed
    // (a machine without Chromium gets its one line, and no node is left running).
    const [node, browser] = await Promise.allSettled([startNode(), launchBrowser()]);
    if (node.status === "fulfilled") w.node = node.value;
    if (browser.status === "fulfilled") w.browser = browser.value;
    if (node.status === "rejected") throw node.reason;
    if (browser.status === "rejected") throw browser.reason;
    [w.deployer, w.merchant] = accounts(w.node.provider, 2) as [Signer, Signer];
    w.merchantAddress = await w.merchant.getAddress();
    w.usdc = await deploy("TestUSDC", w.deployer);
    w.weth = await deploy("TestToken18", w.deployer);
    w.factory = await deploy("PlanFactory", w.deployer);
    w.factoryBlock = BigInt((await w.factory.deploymentTransaction()!.wait())!.blockNumber);
    w.env = {
      RECUR_RPC_URL: w.node.url,
      RECUR_CHAIN_ID: String(CHAIN),
      RECUR_FACTORY: String(w.factory.target),
      RECUR_FACTORY_BLOCK: String(w.factoryBlock),
      RECUR_TOKENS: `tUSDC=${String(w.usdc.target)},tWETH=${String(w.weth.target)}`,
      RECUR_EXPLORER_TX_URL: "https://explorer.example/tx/",
      RECUR_CONFIRMATIONS: "1",
    };
    w.serve = startKeeper(["serve", "--port", "0", "--json"], w.env);
    const line = await w.serve.waitForLine((l) => l.event === "serving");
    w.url = String(line.url);
  });

  after(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
    await w.browser?.close();
    w.serve?.kill("SIGTERM");
    await w.serve?.exited;
    await killKeepers();
    await w.node?.stop();
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => {})));
  });

  // --- helpers ---------------------------------------------------------------------------------

  async function createPlan(overrides: Record<string, unknown> = {}, token: Contract = w.usdc, kind: "FixedPricePlan" | "MeteredPlan" = "FixedPricePlan"): Promise<Contract> {
    const tx = await (w.factory.connect(w.merchant) as Contract).getFunction("createPlan")(terms(String(token.target), w.merchantAddress, { price: PRICE, ...overrides }));
    const receipt = await tx.wait();
    const event = receipt.logs.map((l: { topics: string[]; data: string }) => w.factory.interface.parseLog(l)).find((e: { name: string } | null) => e?.name === "PlanCreated");
    return at(kind, event.args.plan as string, w.merchant);
  }

  /** A fresh customer with 1 ETH and `tokens` base units of `token`. */
  async function customer(tokens: bigint, token: Contract = w.usdc): Promise<HDNodeWallet> {
    const wallet = Wallet.createRandom().connect(w.node.provider);
    await (await w.deployer.sendTransaction({ to: wallet.address, value: 10n ** 18n })).wait();
    if (tokens > 0n) await (await (token.connect(w.deployer) as Contract).getFunction("mint")(wallet.address, tokens)).wait();
    return wallet;
  }

  /** A new browser context (phone-sized) with the test wallet signing as `who`. */
  async function open(who: HDNodeWallet, pathAndQuery: string, wallet: Partial<WalletState> = {}): Promise<{ page: Page; wallet: TestWallet }> {
    const context = await w.browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
    contexts.push(context);
    const testWallet = await injectWallet(context, w.node.provider, who.privateKey, CHAIN, { connected: true, ...wallet });
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
    await page.goto(`${w.url}/${pathAndQuery}`);
    return { page, wallet: testWallet };
  }

  /** Screenshots a page state, after checking it fits a phone's width (no sideways scrolling). */
  async function shot(page: Page, name: string): Promise<void> {
    const [scroll, width] = (await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")) as [number, number];
    expect(scroll, `${name}: page wider than the screen`).to.be.at.most(width);
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  }

  const text = (page: Page) => page.locator("main").innerText();

  /** Moves the node's clock forward by `seconds` and mines a block. */
  async function advance(seconds: bigint): Promise<void> {
    await w.node.mineAt((await w.node.latestTimestamp()) + seconds);
  }

  const poll = <T>(probe: () => Promise<T | undefined>) => pollFor("the chain to show it", probe, 20_000);

  const status = async (plan: Contract, who: string) => Number(await plan.getFunction("statusOf")(who));

  // --- recur serve ----------------------------------------------------------------------------

  describe("recur serve", () => {
    it("serves the pages as text/html; charset=utf-8, modules as text/javascript, and its config.json", async () => {
      const html = await fetch(`${w.url}/checkout.html`);
      expect(html.status).to.equal(200);
      expect(html.headers.get("content-type")).to.equal("text/html; charset=utf-8");
      const js = await fetch(`${w.url}/lib/client.js`);
      expect(js.headers.get("content-type")).to.equal("text/javascript; charset=utf-8");
      const ethers = await fetch(`${w.url}/vendor/ethers.js`);
      expect(ethers.headers.get("content-type")).to.equal("text/javascript; charset=utf-8");
      expect(await ethers.text()).to.include("JsonRpcProvider");
      const config = (await (await fetch(`${w.url}/config.json`)).json()) as Record<string, unknown>;
      expect(config).to.deep.include({ chainId: "31337", rpcUrl: w.node.url, factory: String(w.factory.target), explorerTxUrl: "https://explorer.example/tx/" });
      expect(config.tokens).to.deep.equal({ [String(w.usdc.target).toLowerCase()]: "tUSDC", [String(w.weth.target).toLowerCase()]: "tWETH" });
    });

    it("answers 404 to anything outside app/, however the path is spelled", async () => {
      const { request } = await import("node:http");
      const raw = (p: string) => new Promise<number>((resolve, reject) => {
        const u = new URL(w.url);
        const req = request({ host: u.hostname, port: u.port, path: p, method: "GET" }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
        req.on("error", reject);
        req.end();
      });
      for (const p of ["/../package.json", "/..%2fpackage.json", "/%2e%2e/%2e%2e/package.json", "/lib/../../package.json", "/%2e%2e%2fsrc%2fcli%2fmain.ts", "/..\\package.json", "/nothing.html", "/lib", "//etc/passwd"]) {
        expect(await raw(p), p).to.equal(404);
      }
      expect(await raw("/manage.html")).to.equal(200);
    });

    it("refuses a bad explorer URL in one line naming the variable", async () => {
      const result = await runKeeper(["serve", "--port", "0"], { ...w.env, RECUR_EXPLORER_TX_URL: "javascript:alert(1)" });
      expect(result.code).to.equal(1);
      expect(result.stderr.trim()).to.equal('recur: RECUR_EXPLORER_TX_URL: expected an http(s) URL the transaction hash is appended to, e.g. "https://etherscan.io/tx/", got "javascript:alert(1)"');
    });

    it("has --help with its options and an example, like the other commands", async () => {
      const result = await runKeeper(["serve", "--help"], {});
      expect(result.code).to.equal(0);
      expect(result.stdout).to.include("usage: recur serve [--host 127.0.0.1] [--port 8080] [--json]").and.include("RECUR_EXPLORER_TX_URL").and.include("examples:");
      expect((await runKeeper(["--help"], {})).stdout).to.match(/\n  serve +serve the customer pages/);
    });

    it("refuses a bad port in one line", async () => {
      const result = await runKeeper(["serve", "--port", "99999"], w.env);
      expect(result.code).to.equal(1);
      expect(result.stderr.trim()).to.equal('recur: --port: expected a port from 0 to 65535 (0: any free port), got "99999"');
    });
  });

  // --- checkout ---------------------------------------------------------------------------------

  describe("checkout", () => {
    it("signs up with permit (one signature, one transaction), carries the ref into Subscribed, and returns to the merchant", async () => {
      const plan = await createPlan();
      const who = await customer(100n * PRICE);
      const returnUrl = "https://merchant.example/thanks?order=1";
      const { page, wallet } = await open(who, `checkout.html?plan=${String(plan.target)}&ref=ORDER-123&periods=6&return=${encodeURIComponent(returnUrl)}`);
      await page.route("https://merchant.example/**", (route) => route.fulfill({ contentType: "text/html; charset=utf-8", body: "<p>thanks</p>" }));
      await page.locator("#subscribe").waitFor();
      const shown = await text(page);
      expect(shown).to.include("9.99 tUSDC every 30 days").and.include("none").and.include(w.merchantAddress);
      expect(shown).to.include("up to 59.94 tUSDC in total, enough for 6 payments");
      expect(shown).to.include("Each payment is at most").and.include("Your balance").and.include("999.00 tUSDC");
      expect(shown).to.include("one signature (the permission) and one transaction");
      await shot(page, "checkout-permit-terms");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      const receipt = await text(page);
      expect(receipt).to.include("You're subscribed").and.include("Active").and.include("9.99 tUSDC").and.include("ORDER-123");
      await shot(page, "checkout-receipt");
      expect(wallet.state.calls.filter((c) => c === "eth_signTypedData_v4")).to.have.length(1);
      expect(wallet.state.calls.filter((c) => c === "eth_sendTransaction")).to.have.length(1);
      // The chain: active, paid once, the permit's allowance less one payment, the ref in Subscribed.
      expect(await status(plan, who.address)).to.equal(2);
      expect(await w.usdc.getFunction("allowance")(who.address, plan.target)).to.equal(5n * PRICE);
      expect(await w.usdc.getFunction("balanceOf")(who.address)).to.equal(99n * PRICE);
      const subscribed = await plan.queryFilter(plan.filters.Subscribed!(who.address));
      expect(subscribed).to.have.length(1);
      expect((subscribed[0] as unknown as { args: { ref: string } }).args.ref).to.equal(encodeBytes32String("ORDER-123"));
      await page.waitForURL(/^https:\/\/merchant\.example\/thanks/);
      const back = new URL(page.url());
      expect(back.searchParams.get("order")).to.equal("1");
      expect(back.searchParams.get("subscriber")?.toLowerCase()).to.equal(who.address.toLowerCase());
      expect(back.searchParams.get("plan")?.toLowerCase()).to.equal(String(plan.target).toLowerCase());
      expect(back.searchParams.get("ref")).to.equal("ORDER-123");
    });

    it("without permit (tWETH): approves requiredAllowance(periods), then subscribes; a trial charges nothing today", async () => {
      const plan = await createPlan({ price: 10n ** 16n, trialPeriod: 7n * DAY }, w.weth);
      const who = await customer(10n ** 18n, w.weth);
      const { page, wallet } = await open(who, `checkout.html?plan=${String(plan.target)}&periods=3`);
      await page.locator("#subscribe").waitFor();
      const shown = await text(page);
      expect(shown).to.include("0.01 tWETH every 30 days").and.include("1 week (first time only)").and.include("up to 0.03 tWETH in total, enough for 3 payments");
      expect(shown).to.include("Nothing: the first payment, about 0.01 tWETH, is due").and.include("two transactions: an approval, then the sign-up");
      await shot(page, "checkout-approve-trial");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await text(page)).to.include("Free trial").and.include("Paid today\nnothing").and.include("Next payment\n0.01 tWETH on");
      expect(wallet.state.calls.filter((c) => c === "eth_sendTransaction")).to.have.length(2);
      expect(wallet.state.calls).to.not.include("eth_signTypedData_v4");
      expect(await status(plan, who.address)).to.equal(1);
      expect(await w.weth.getFunction("allowance")(who.address, plan.target)).to.equal(3n * 10n ** 16n);
      expect(await w.weth.getFunction("balanceOf")(who.address)).to.equal(10n ** 18n);
    });

    it("a USD-priced plan shows the USD price and today's token amount, and charges that amount", async () => {
      const feed = await deploy("MockAggregator", w.deployer, [8, 2_000n * 10n ** 8n]); // $2,000 per tWETH
      const plan = await createPlan({ price: 999_000_000n, priceFeed: String(feed.target), maxPriceAge: 3_600n, allowanceBufferBps: 1_000n }, w.weth);
      const who = await customer(10n ** 18n, w.weth);
      const { page } = await open(who, `checkout.html?plan=${String(plan.target)}&periods=2`);
      await page.locator("#subscribe").waitFor();
      const quoted = ((await plan.getFunction("chargeability")(who.address)) as [boolean, bigint, bigint])[2];
      expect(quoted).to.equal(4_995_000_000_000_000n); // $9.99 / $2,000, in 18 decimals
      const shown = await text(page);
      expect(shown).to.include("$9.99 every 30 days, paid in tWETH").and.include("0.004995 tWETH (the amount follows the tWETH price at each payment)");
      expect(shown).to.include("0.0054945 tWETH (today's amount plus a 10% margin for price moves)").and.include("up to 0.010989 tWETH in total");
      await shot(page, "checkout-usd");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await text(page)).to.include("Paid today\n0.004995 tWETH");
      expect(await status(plan, who.address)).to.equal(2);
      expect(await w.weth.getFunction("balanceOf")(who.address)).to.equal(10n ** 18n - quoted);
      expect((await plan.getFunction("subscriptionOf")(who.address)).maxAmount).to.equal(5_494_500_000_000_000n);
    });

    it("a metered plan shows the cap and the free credits; signing up moves nothing", async () => {
      const plan = await createPlan({ price: 0n, billingMode: 1, perCycleCap: 50_000_000n, freeCredits: 5_000_000n }, w.usdc, "MeteredPlan");
      const who = await customer(100_000_000n);
      const { page } = await open(who, `checkout.html?plan=${String(plan.target)}&periods=2`);
      await page.locator("#subscribe").waitFor();
      const shown = await text(page);
      expect(shown).to.include("What you use, billed after each 30 days").and.include("Most per cycle\n50.00 tUSDC").and.include("5.00 tUSDC of usage free");
      expect(shown).to.include("up to 100.00 tUSDC in total, enough for 2 cycles").and.include("Nothing: usage is billed after each cycle ends.");
      await shot(page, "checkout-metered");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await status(plan, who.address)).to.equal(2);
      expect(await plan.getFunction("creditsOf")(who.address)).to.equal(5_000_000n);
      expect(await w.usdc.getFunction("balanceOf")(who.address)).to.equal(100_000_000n);

      // A cycle later the merchant bills 8.00 of usage: 5.00 from credits, 3.00 pulled; the page shows it.
      await advance(30n * DAY + 60n);
      await (await plan.getFunction("chargeUsage")(who.address, 8_000_000n, encodeBytes32String("inv-1"))).wait();
      const manage = await open(who, `manage.html?plan=${String(plan.target)}`);
      await manage.page.locator("[data-plan]").waitFor();
      const after = await text(manage.page);
      expect(after).to.include("Cycles billed\n1").and.include("Free credits left\n0.00 tUSDC").and.include("Most per cycle (the plan's cap)\n50.00 tUSDC");
      expect(after).to.include("Usage of 8.00 tUSDC billed: 5.00 tUSDC from free credits, 3.00 tUSDC paid");
      await shot(manage.page, "manage-metered-billed");
      expect(await w.usdc.getFunction("balanceOf")(who.address)).to.equal(97_000_000n);
    });

    it("says the balance is short before any prompt, and asks for nothing", async () => {
      const plan = await createPlan();
      const who = await customer(PRICE - 1n);
      const { page, wallet } = await open(who, `checkout.html?plan=${String(plan.target)}`);
      await page.locator("[data-state=short]").waitFor();
      expect(await page.locator("[data-state=short]").innerText()).to.equal("Your balance (9.989999 tUSDC) is less than the first payment (9.99 tUSDC): add tUSDC to your wallet, then reload this page.");
      expect(await page.locator("#subscribe").isDisabled()).to.equal(true);
      await shot(page, "checkout-insufficient-balance");
      expect(wallet.state.calls.filter((c) => c.startsWith("eth_sign") || c === "eth_sendTransaction")).to.deep.equal([]);
      expect(await status(plan, who.address)).to.equal(0);
    });

    it("a wallet on another chain is asked to switch only when the customer signs up, then signs up", async () => {
      const plan = await createPlan();
      const who = await customer(100n * PRICE);
      const { page, wallet } = await open(who, `checkout.html?plan=${String(plan.target)}`, { chainId: 1n, decline: ["wallet_switchEthereumChain"] });
      await page.locator("#subscribe").waitFor();
      expect(wallet.state.calls).to.not.include("wallet_switchEthereumChain");
      // Declining the switch is one sentence, and nothing is signed or sent.
      await page.locator("#subscribe").click();
      const line = page.locator("[data-state=signup] .message.error");
      await line.waitFor();
      expect(await line.innerText()).to.equal("You declined in your wallet, so nothing was sent. Press the button again when you're ready.");
      expect(wallet.state.calls.filter((c) => c.startsWith("eth_sign") || c === "eth_sendTransaction")).to.deep.equal([]);
      await shot(page, "checkout-switch-declined");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(wallet.state.calls).to.include("wallet_switchEthereumChain");
      expect(wallet.state.chainId).to.equal(CHAIN);
      expect(await status(plan, who.address)).to.equal(2);
    });

    it("a declined prompt is one sentence and changes nothing; pressing again signs up", async () => {
      const plan = await createPlan();
      const who = await customer(100n * PRICE);
      const { page } = await open(who, `checkout.html?plan=${String(plan.target)}`, { decline: ["eth_signTypedData_v4"] });
      await page.locator("#subscribe").click();
      const line = page.locator("[data-state=signup] .message.error");
      await line.waitFor();
      expect(await line.innerText()).to.equal("You declined in your wallet, so nothing was sent. Press the button again when you're ready.");
      await shot(page, "checkout-declined");
      expect(await status(plan, who.address)).to.equal(0);
      expect(await w.usdc.getFunction("allowance")(who.address, plan.target)).to.equal(0n);
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await status(plan, who.address)).to.equal(2);
    });

    it("a plan on hold gets a clear page and no prompt", async () => {
      const plan = await createPlan();
      await (await plan.getFunction("setStatus")(1)).wait();
      const who = await customer(100n * PRICE);
      const { page, wallet } = await open(who, `checkout.html?plan=${String(plan.target)}`);
      await page.getByText("This plan is on hold").waitFor();
      expect(await text(page)).to.include("The merchant isn't taking new subscribers on this plan right now");
      expect(await page.locator("#subscribe").count()).to.equal(0);
      await shot(page, "checkout-on-hold");
      expect(wallet.state.calls.filter((c) => c.startsWith("eth_sign") || c === "eth_sendTransaction")).to.deep.equal([]);
      expect(await status(plan, who.address)).to.equal(0);
    });

    it("a customer already subscribed gets a page saying so, with the way to manage it", async () => {
      const plan = await createPlan();
      const who = await customer(100n * PRICE);
      await (await (w.usdc.connect(who) as Contract).getFunction("approve")(plan.target, PRICE)).wait();
      await (await (plan.connect(who) as Contract).getFunction("subscribe")(PRICE)).wait();
      const { page } = await open(who, `checkout.html?plan=${String(plan.target)}`);
      await page.getByText("You already subscribe to this plan").waitFor();
      expect(await page.locator("a[href^='manage.html']").count()).to.equal(1);
      expect(await page.locator("#subscribe").count()).to.equal(0);
      await shot(page, "checkout-already-subscribed");
    });

    it("refuses a contract the factory did not create, and says a malformed link is broken", async () => {
      const who = await customer(0n);
      const stranger = await open(who, `checkout.html?plan=${String(w.usdc.target)}`);
      await stranger.page.getByText("This isn't a plan of this site").waitFor();
      expect(await text(stranger.page)).to.include(`which this site's plan factory did not create. Don't pay through this link`);
      await shot(stranger.page, "checkout-not-a-plan");
      const cases: [string, string][] = [
        ["checkout.html", "This checkout link is broken: it names no plan. Ask the merchant for a new link."],
        ["checkout.html?plan=0x1234", "This checkout link is broken: A plan in it is not a valid address. Ask the merchant for a new link."],
        [`checkout.html?plan=${String(w.usdc.target)}&periods=0`, "This checkout link is broken: its number of periods must be a whole number from 1 to 120. Ask the merchant for a new link."],
        [`checkout.html?plan=${String(w.usdc.target)}&return=javascript:alert(1)`, "This checkout link is broken: its return address is not a web address (http or https). Ask the merchant for a new link."],
        [`checkout.html?plan=${String(w.usdc.target)}&ref=${"x".repeat(32)}`, "This checkout link is broken: Its order reference is longer than 31 characters. Ask the merchant for a new link."],
      ];
      for (const [link, sentence] of cases) {
        await stranger.page.goto(`${w.url}/${link}`);
        await stranger.page.locator(".notice .sentence").waitFor();
        expect(await stranger.page.locator(".notice .sentence").innerText(), link).to.equal(sentence);
      }
      // A ref is text, never markup.
      await stranger.page.goto(`${w.url}/checkout.html?plan=0x12&ref=<img src=x onerror=alert(1)>`);
      await stranger.page.locator(".notice").waitFor();
      expect(await stranger.page.locator("main img").count()).to.equal(0);
      await shot(stranger.page, "checkout-malformed");
    });

    it("opens the link `recur plan create` prints (RECUR_CHECKOUT_URL pointing at `recur serve`)", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "recur-app-"));
      let created: { plan: string; checkout: string };
      try {
        const env = { ...w.env, RECUR_PRIVATE_KEY: accountKey(1), RECUR_CHECKOUT_URL: `${w.url}/checkout.html`, RECUR_STORE: path.join(dir, "recur.sqlite"), RECUR_USAGE_JOURNAL: path.join(dir, "journal.sqlite"), RECUR_TX_TIMEOUT: "30" };
        const result = await runKeeper(["plan", "create", "--token", "tUSDC", "--price", "4.5", "--period", "7d", "--grace", "2d", "--yes", "--json"], env);
        expect(result.code, result.stderr).to.equal(0);
        created = JSON.parse(result.stdout) as { plan: string; checkout: string };
      } finally {
        rmSync(dir, { recursive: true, force: true });
        // recur sent with the merchant's key: the merchant's NonceManager must read its nonce again.
        (w.merchant as NonceManager).reset();
      }
      expect(created.checkout).to.match(new RegExp(`^${w.url}/checkout\\.html\\?plan=0x[0-9a-fA-F]{40}$`));
      const who = await customer(100n * PRICE);
      const context = await w.browser.newContext({ viewport: { width: 390, height: 844 } });
      contexts.push(context);
      await injectWallet(context, w.node.provider, who.privateKey, CHAIN, { connected: true });
      const page = await context.newPage();
      await page.goto(created.checkout);
      await page.locator("#subscribe").waitFor();
      expect(await text(page)).to.include("4.50 tUSDC every week").and.include("up to 54.00 tUSDC in total, enough for 12 payments");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await status(at("FixedPricePlan", created.plan, w.merchant), who.address)).to.equal(2);
    });

    it("reads the chain again on the click: a plan put on hold after the page loaded is one sentence, and nothing is asked", async () => {
      const plan = await createPlan();
      const who = await customer(100n * PRICE);
      const { page, wallet } = await open(who, `checkout.html?plan=${String(plan.target)}`, { decline: [] });
      await page.locator("#subscribe").waitFor();
      await (await plan.getFunction("setStatus")(1)).wait();
      // The status is read again when the button is pressed: no signature, no transaction is asked for.
      await page.locator("#subscribe").click();
      const line = page.locator("[data-state=signup] .message.error");
      await line.waitFor();
      expect(await line.innerText()).to.equal("The merchant has put this plan on hold: it takes no new subscribers right now. Ask them when it reopens.");
      expect(wallet.state.calls).to.not.include("eth_sendTransaction");
      expect(wallet.state.calls).to.not.include("eth_signTypedData_v4");
      await shot(page, "checkout-simulation-refused");
      expect(await status(plan, who.address)).to.equal(0);
    });

    it("a wallet without ETH for the network fee is told so before any transaction prompt", async () => {
      const plan = await createPlan({}, w.weth);
      const who = Wallet.createRandom().connect(w.node.provider);
      await (await (w.weth.connect(w.deployer) as Contract).getFunction("mint")(who.address, 10n ** 18n)).wait();
      const { page, wallet } = await open(who as unknown as HDNodeWallet, `checkout.html?plan=${String(plan.target)}`);
      await page.locator("#subscribe").click();
      const line = page.locator("[data-state=signup] .message.error");
      await line.waitFor();
      expect(await line.innerText()).to.equal("Your wallet doesn't have enough ETH to pay the network fee for this: add some ETH to it, then try again.");
      expect(wallet.state.calls).to.not.include("eth_sendTransaction");
      expect(await status(plan, who.address)).to.equal(0);
    });

    it("asks for an unlimited allowance only when the customer ticks the box", async () => {
      const plan = await createPlan({ price: 10n ** 16n }, w.weth);
      const who = await customer(10n ** 18n, w.weth);
      const { page } = await open(who, `checkout.html?plan=${String(plan.target)}&periods=2`);
      await page.locator("#subscribe").waitFor();
      expect(await text(page)).to.include("up to 0.02 tWETH in total");
      await page.getByLabel(/Allow an unlimited amount instead/).check();
      await page.getByText("up to an unlimited amount in total").waitFor();
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await w.weth.getFunction("allowance")(who.address, plan.target)).to.equal(2n ** 256n - 1n);
    });

    it("plans=0xA,0xB lets the customer pick the currency, and signs up on the one picked", async () => {
      const usdcPlan = await createPlan({ price: 10_000_000n });
      const wethPlan = await createPlan({ price: 10n ** 16n }, w.weth);
      const who = await customer(10n ** 18n, w.weth);
      const { page } = await open(who, `checkout.html?plans=${String(usdcPlan.target)},${String(wethPlan.target)}&ref=${encodeURIComponent("<b>hi</b>")}`);
      await page.locator("fieldset.picker").waitFor();
      await page.getByLabel("tWETH").check();
      await page.getByText("0.01 tWETH every 30 days").waitFor();
      await shot(page, "checkout-pick-currency");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await status(wethPlan, who.address)).to.equal(2);
      expect(await status(usdcPlan, who.address)).to.equal(0);
      // The ref is shown as the text it is, never as markup, and travels as such.
      expect(await text(page)).to.include("Order reference\n<b>hi</b>");
      expect(await page.locator("main b").count()).to.equal(0);
      const subscribed = await wethPlan.queryFilter(wethPlan.filters.Subscribed!(who.address));
      expect((subscribed[0] as unknown as { args: { ref: string } }).args.ref).to.equal(encodeBytes32String("<b>hi</b>"));
    });
  });

  // --- the self-service page ----------------------------------------------------------------------

  describe("self-service page", () => {
    /** Subscribes `who` to `plan` directly (approve `allowance`, then subscribe with `maxAmount`). */
    async function subscribeDirect(plan: Contract, who: HDNodeWallet, allowance: bigint, maxAmount = PRICE): Promise<void> {
      if (allowance > 0n) await (await (w.usdc.connect(who) as Contract).getFunction("approve")(plan.target, allowance)).wait();
      await (await (plan.connect(who) as Contract).getFunction("subscribe")(maxAmount)).wait();
    }

    const card = (page: Page) => page.locator("[data-plan]");
    /** Waits until the card shows `status` (the page reads the chain again after each action). */
    const cardWithStatus = async (page: Page, status: string) => page.locator(`[data-plan][data-status=${status}]`).waitFor();

    it("trialing: shows the trial and what comes next; pause, resume, a new maximum and cancel each land on-chain", async () => {
      const plan = await createPlan({ trialPeriod: 7n * DAY });
      const who = await customer(100n * PRICE);
      await subscribeDirect(plan, who, 12n * PRICE);
      const { page } = await open(who, `manage.html?plan=${String(plan.target)}`);
      await cardWithStatus(page, "Trialing");
      const shown = await card(page).innerText();
      expect(shown).to.include("Status\nFree trial").and.include("Access until").and.include("Next payment\n9.99 tUSDC on");
      expect(shown).to.include("will go through").and.include("Your approval covers\n12 payments").and.include("Your balance covers\n100 payments");
      expect(shown).to.include("Cancel: You keep access until").and.include("Pause: nothing is charged while paused");
      await shot(page, "manage-trialing");

      // Pause, with the keyboard.
      await page.locator("#pause").focus();
      await page.keyboard.press("Enter");
      await cardWithStatus(page, "Paused");
      expect(await status(plan, who.address)).to.equal(4);
      expect(await card(page).innerText()).to.include("Status\nPaused").and.include("Paused since").and.include("Nothing will be charged while paused.");
      await shot(page, "manage-paused");

      await advance(DAY);
      await page.locator("#resume").click();
      await cardWithStatus(page, "Trialing");
      expect(await status(plan, who.address)).to.equal(1);
      const sub = await plan.getFunction("subscriptionOf")(who.address);
      expect(sub.pausedAt).to.equal(0n);

      await page.locator("#max-amount").fill("12.5");
      await page.locator("#set-max").click();
      await page.locator("#max-amount[value='12.5']").waitFor();
      expect((await plan.getFunction("subscriptionOf")(who.address)).maxAmount).to.equal(12_500_000n);
      expect(await card(page).innerText()).to.include("Most per payment (yours)\n12.50 tUSDC");

      await page.locator("#cancel").click();
      await cardWithStatus(page, "Cancelled");
      expect(await status(plan, who.address)).to.equal(5);
      const cancelled = await card(page).innerText();
      expect(cancelled).to.include("Status\nCancelled").and.include("Access until").and.include("Subscribe again");
      expect(cancelled).to.include("Most per payment set to 12.50 tUSDC").and.include("Paused").and.include("Resumed");
      await shot(page, "manage-cancelled");

      // Subscribing again while the trial's time is left restarts it on its old schedule, charging nothing.
      const before = await w.usdc.getFunction("balanceOf")(who.address);
      await page.locator("#resubscribe").click();
      await page.locator("#subscribe").waitFor();
      expect(await text(page)).to.include("Nothing: your cancelled subscription restarts on its old schedule");
      expect(await page.locator("#subscribe").innerText()).to.equal("Subscribe");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await status(plan, who.address)).to.equal(1);
      expect(await w.usdc.getFunction("balanceOf")(who.address)).to.equal(before);
    });

    it("active: next payment, history with explorer links and a CSV, and every subscribed plan without ?plan=", async () => {
      const plan = await createPlan();
      const other = await createPlan({ price: 5_000_000n });
      const who = await customer(100n * PRICE);
      await subscribeDirect(plan, who, 3n * PRICE);
      await subscribeDirect(other, who, 5_000_000n, 5_000_000n);
      const { page } = await open(who, "manage.html");
      await page.locator("[data-plan]").nth(1).waitFor();
      expect(await page.locator("[data-plan]").count()).to.equal(2);
      const first = page.locator(`[data-plan='${String(plan.target)}']`);
      const shown = await first.innerText();
      expect(shown).to.include("Status\nActive").and.include("Next payment\n9.99 tUSDC on").and.include("Your approval covers\n2 payments");
      expect(shown).to.include("History (1 payment)").and.include("Paid 9.99 tUSDC (payment 1)");
      const charged = await plan.queryFilter(plan.filters.Charged!(who.address));
      // The sign-up's transaction carries both Subscribed and the first Charged: two rows, one link each.
      expect(await first.locator(`a[href='https://explorer.example/tx/${charged[0]!.transactionHash}']`).count()).to.equal(2);
      await shot(page, "manage-active-two-plans");
      const [download] = await Promise.all([page.waitForEvent("download"), first.locator("#csv").click()]);
      const csv = (await (await download.createReadStream()).toArray()).join("");
      const lines = csv.trim().split("\n");
      expect(lines[0]).to.equal("time,event,amount_base_units,token,transaction");
      expect(lines.some((l) => l.includes(`,Charged,${PRICE},`) && l.endsWith(charged[0]!.transactionHash))).to.equal(true);
    });

    it("past due: the chain's prediction says approve more; approving more lets the keeper charge it", async () => {
      const plan = await createPlan({ trialPeriod: 7n * DAY });
      const who = await customer(100n * PRICE);
      await subscribeDirect(plan, who, 0n);
      const { page } = await open(who, `manage.html?plan=${String(plan.target)}`);
      await cardWithStatus(page, "Trialing");
      const warned = await page.locator("[data-prediction]").innerText();
      expect(warned).to.match(/^The next payment, on .+, will fail: your approval for this plan is too low: approve more so the payment can go through\.$/);
      await shot(page, "manage-will-fail");

      await advance(8n * DAY);
      await page.reload();
      await cardWithStatus(page, "PastDue");
      expect(await status(plan, who.address)).to.equal(3);
      expect(await card(page).innerText()).to.include("Status\nPayment overdue").and.include("Pay by").and.include("Your approval covers\n0 payments");
      expect(await page.locator("[data-prediction]").getAttribute("data-prediction")).to.equal("AllowanceTooLow");
      await shot(page, "manage-past-due");

      await page.locator("#approve-periods").fill("6");
      await page.locator("#approve").click();
      await page.locator("[data-prediction=Ok]").waitFor();
      expect(await w.usdc.getFunction("allowance")(who.address, plan.target)).to.equal(6n * PRICE);
      expect(await page.locator("[data-prediction]").innerText()).to.equal("The overdue payment can be taken now, and will go through.");

      const dir = mkdtempSync(path.join(tmpdir(), "recur-app-"));
      try {
        const keeper = await runKeeper(["run", "--once"], { ...w.env, RECUR_PRIVATE_KEY: accountKey(2), RECUR_STORE: path.join(dir, "recur.sqlite"), RECUR_TX_TIMEOUT: "30" });
        expect(keeper.code, keeper.stderr + keeper.stdout.slice(-2000)).to.equal(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(await status(plan, who.address)).to.equal(2);
      expect((await plan.getFunction("subscriptionOf")(who.address)).periodsPaid).to.equal(1n);
      await page.reload();
      await cardWithStatus(page, "Active");
      expect(await card(page).innerText()).to.include("Paid 9.99 tUSDC (payment 1)").and.include("Your approval covers\n5 payments");
      await shot(page, "manage-recovered");
    });

    it("expired: says it ended and offers a fresh sign-up, which the checkout accepts (no second trial: it pays now)", async () => {
      const plan = await createPlan({ trialPeriod: 7n * DAY });
      const who = await customer(100n * PRICE);
      await subscribeDirect(plan, who, 0n);
      await advance(7n * DAY + 3n * DAY + 60n);
      expect(await status(plan, who.address)).to.equal(6);
      const { page } = await open(who, `manage.html?plan=${String(plan.target)}`);
      await cardWithStatus(page, "Expired");
      expect(await card(page).innerText()).to.include("Status\nEnded (a payment was missed)").and.include("Subscribe again: a fresh subscription starts");
      expect(await page.locator("#cancel").count()).to.equal(0);
      await shot(page, "manage-expired");
      await page.locator("#resubscribe").click();
      await page.locator("#subscribe").waitFor();
      expect(await text(page)).to.include("The first payment, 9.99 tUSDC, is taken when you sign up (you have had this plan's free trial before).");
      expect(await page.locator("#subscribe").innerText()).to.equal("Subscribe and pay 9.99 tUSDC");
      await page.locator("#subscribe").click();
      await page.locator("[data-state=receipt]").waitFor();
      expect(await status(plan, who.address)).to.equal(2);
      expect(await w.usdc.getFunction("balanceOf")(who.address)).to.equal(99n * PRICE);
    });

    it("simulates before the prompt: a resume the chain would refuse (blocked meanwhile) is decoded into one sentence, nothing sent", async () => {
      const plan = await createPlan();
      const who = await customer(100n * PRICE);
      await subscribeDirect(plan, who, 2n * PRICE);
      await (await (plan.connect(who) as Contract).getFunction("pause")()).wait();
      const { page, wallet } = await open(who, `manage.html?plan=${String(plan.target)}`);
      await cardWithStatus(page, "Paused");
      await (await plan.getFunction("setBlocked")(who.address, true)).wait();
      await page.locator("#resume").click();
      const line = page.locator("[data-action=resume] .message.error");
      await line.waitFor();
      expect(await line.innerText()).to.equal("The merchant has blocked this address from this plan: contact them.");
      expect(wallet.state.calls).to.not.include("eth_sendTransaction");
      await shot(page, "manage-refused-by-simulation");
      expect(await status(plan, who.address)).to.equal(4);
    });

    it("voids outstanding sign-up signatures (the nonce moves on), and starts over when the wallet's account changes", async () => {
      const plan = await createPlan();
      const who = await customer(100n * PRICE);
      await subscribeDirect(plan, who, 2n * PRICE);
      const { page, wallet } = await open(who, `manage.html?plan=${String(plan.target)}`);
      await cardWithStatus(page, "Active");
      expect(await plan.getFunction("nonces")(who.address)).to.equal(0n);
      await page.locator("#revoke").click();
      await poll(async () => ((await plan.getFunction("nonces")(who.address)) === 1n ? true : undefined));
      expect(await status(plan, who.address)).to.equal(2);
      await page.evaluate("window.__before = 1");
      await wallet.emit("accountsChanged", []);
      await page.waitForFunction("window.__before === undefined");
      await cardWithStatus(page, "Active");
    });

    it("a plan the wallet never subscribed to offers the checkout; a broken link or a stranger's contract is one sentence", async () => {
      const plan = await createPlan();
      const who = await customer(0n);
      const { page } = await open(who, `manage.html?plan=${String(plan.target)}`);
      await cardWithStatus(page, "None");
      expect(await page.locator("#subscribe-link").getAttribute("href")).to.equal(`checkout.html?plan=${String(plan.target)}`);
      expect(await page.locator("#cancel").count()).to.equal(0);
      await page.goto(`${w.url}/manage.html?plan=0x12`);
      await page.locator(".notice .sentence").waitFor();
      expect(await page.locator(".notice .sentence").innerText()).to.equal("This link is broken: Its plan is not a valid address. Open the page without it to see all your subscriptions.");
      await page.goto(`${w.url}/manage.html?plan=${String(w.usdc.target)}`);
      await page.getByText("This isn't a plan of this site").waitFor();
      await page.goto(`${w.url}/manage.html`);
      await page.getByText("No subscriptions").waitFor();
      await shot(page, "manage-none");
    });

    it("a wallet that shares no account yet gets a Connect button, and nothing is asked before it is pressed", async () => {
      const plan = await createPlan();
      const who = await customer(100n * PRICE);
      await subscribeDirect(plan, who, 2n * PRICE);
      const { page, wallet } = await open(who, `manage.html?plan=${String(plan.target)}`, { connected: false });
      await page.locator("#connect").waitFor();
      expect(wallet.state.calls).to.not.include("eth_requestAccounts");
      await shot(page, "manage-connect");
      await page.locator("#connect").click();
      await cardWithStatus(page, "Active");
      expect(wallet.state.calls).to.include("eth_requestAccounts");
    });
  });
});

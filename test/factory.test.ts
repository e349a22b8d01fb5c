// PlanFactory: plan creation, ownership, discovery, and the validation of every term.
import { expect } from "chai";
import { network } from "hardhat";

import { BillingMode, DAY, deployFactory, deployToken, fixedTerms, meteredTerms, PlanStatus } from "../scripts/lib/plans.js";
import type { PlanTermsStruct } from "../typechain-types/contracts/PlanFactory.js";
import { actors, UINT96_MAX, ZERO_ADDRESS } from "./helpers/stack.js";

const { ethers, networkHelpers } = await network.create();

const MIN_PERIOD = 3_600n;
const MAX_PERIOD = 3_660n * DAY;
const MAX_TRIAL = 366n * DAY;
const MIN_GRACE = 900n;
const MAX_KEEPER_FEE_BPS = 1_000n;

async function factoryFixture() {
  const who = await actors(ethers);
  const token = await deployToken(ethers);
  const factory = await deployFactory(ethers);
  const tokenAddress = await token.getAddress();
  const terms = (overrides: Partial<PlanTermsStruct> = {}) => fixedTerms(tokenAddress, who.payee.address, overrides);
  return { ...who, token, tokenAddress, factory, terms };
}

describe("PlanFactory", () => {
  describe("createPlan", () => {
    it("emits PlanCreated with the plan, its owner, its token and the terms as given", async () => {
      const { factory, merchant, payee, tokenAddress, terms } = await networkHelpers.loadFixture(factoryFixture);
      const given = terms({ trialPeriod: 7n * DAY, keeperRestricted: true, keeperFeeBps: 250n });
      const planAddress = await factory.connect(merchant).createPlan.staticCall(given);
      const tx = factory.connect(merchant).createPlan(given);
      await expect(tx).to.emit(factory, "PlanCreated").withArgs(planAddress, merchant.address, tokenAddress, [
        tokenAddress,
        payee.address,
        10_000_000n,
        30n * DAY,
        7n * DAY,
        3n * DAY,
        BillingMode.Fixed,
        true,
        250n,
        0n,
        ZERO_ADDRESS,
        0n,
        0n,
        0n,
      ]);
    });

    it("makes the caller the owner of the new plan", async () => {
      const { factory, merchant, stranger, terms } = await networkHelpers.loadFixture(factoryFixture);
      const planAddress = await factory.connect(merchant).createPlan.staticCall(terms());
      await factory.connect(merchant).createPlan(terms());
      const plan = await ethers.getContractAt("FixedPricePlan", planAddress);
      expect(await plan.owner()).to.equal(merchant.address);
      expect(await plan.owner()).to.not.equal(stranger.address);
    });

    it("records every plan it created in isPlan and planCount, and nothing else", async () => {
      const { factory, merchant, stranger, tokenAddress, terms } = await networkHelpers.loadFixture(factoryFixture);
      expect(await factory.planCount()).to.equal(0n);
      const first = await factory.connect(merchant).createPlan.staticCall(terms());
      await factory.connect(merchant).createPlan(terms());
      const second = await factory.connect(stranger).createPlan.staticCall(terms({ price: 1n }));
      await factory.connect(stranger).createPlan(terms({ price: 1n }));
      expect(first).to.not.equal(second);
      expect(await factory.planCount()).to.equal(2n);
      expect(await factory.isPlan(first)).to.equal(true);
      expect(await factory.isPlan(second)).to.equal(true);
      expect(await factory.isPlan(tokenAddress)).to.equal(false);
      expect(await factory.isPlan(merchant.address)).to.equal(false);
    });

    it("makes the terms readable through the plan's views", async () => {
      const { factory, merchant, payee, tokenAddress, terms } = await networkHelpers.loadFixture(factoryFixture);
      const given = terms({
        price: 123_456n,
        period: 7n * DAY,
        trialPeriod: 2n * DAY,
        gracePeriod: DAY,
        keeperRestricted: true,
        keeperFeeBps: 100n,
      });
      const planAddress = await factory.connect(merchant).createPlan.staticCall(given);
      await factory.connect(merchant).createPlan(given);
      const plan = await ethers.getContractAt("FixedPricePlan", planAddress);
      expect(await plan.token()).to.equal(tokenAddress);
      expect(await plan.payee()).to.equal(payee.address);
      expect(await plan.price()).to.equal(123_456n);
      expect(await plan.period()).to.equal(7n * DAY);
      expect(await plan.trialPeriod()).to.equal(2n * DAY);
      expect(await plan.gracePeriod()).to.equal(DAY);
      expect(await plan.billingMode()).to.equal(BigInt(BillingMode.Fixed));
      expect(await plan.perCycleCap()).to.equal(0n);
      expect(await plan.status()).to.equal(BigInt(PlanStatus.Active));
      expect(await plan.keeperRestricted()).to.equal(true);
      expect(await plan.keeperFeeBps()).to.equal(100n);
    });

    it("accepts every term at its bounds", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      const atBounds: Partial<PlanTermsStruct>[] = [
        { price: 1n },
        { price: UINT96_MAX },
        { period: MIN_PERIOD, gracePeriod: MIN_GRACE },
        { period: MAX_PERIOD },
        { trialPeriod: MAX_TRIAL },
        { gracePeriod: MIN_GRACE },
        { gracePeriod: 30n * DAY - 1n },
        { keeperFeeBps: MAX_KEEPER_FEE_BPS },
      ];
      for (const overrides of atBounds) {
        await expect(factory.connect(merchant).createPlan(terms(overrides))).to.emit(factory, "PlanCreated");
      }
      expect(await factory.planCount()).to.equal(BigInt(atBounds.length));
    });

    it("gives the plan no setter for its terms: the only state-changing functions are the documented ones", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      const planAddress = await factory.connect(merchant).createPlan.staticCall(terms());
      await factory.connect(merchant).createPlan(terms());
      const plan = await ethers.getContractAt("FixedPricePlan", planAddress);
      const mutating: string[] = [];
      plan.interface.forEachFunction((fn) => {
        if (fn.stateMutability !== "view" && fn.stateMutability !== "pure") mutating.push(fn.name);
      });
      expect(mutating.sort()).to.deep.equal(
        [
          "acceptOwnership",
          "cancel",
          "cancelFor",
          "charge",
          "chargeMany",
          "pause",
          "resume",
          "revokeAuthorizations",
          "setBlocked",
          "setKeeper",
          "setMaxAmount",
          "setPayee",
          "setStatus",
          "subscribe",
          "subscribeBySig",
          "subscribeBySigWithRef",
          "subscribeWithPermit",
          "subscribeWithPermitAndRef",
          "subscribeWithRef",
          "transferOwnership",
        ].sort(),
      );
      // renounceOwnership is still in the ABI (Ownable's), but only to refuse: it is a view that reverts.
      expect(plan.interface.getFunction("renounceOwnership")?.stateMutability).to.equal("view");
    });
  });

  describe("term validation", () => {
    it("reverts InvalidToken when the token is an account without code", async () => {
      const { factory, merchant, stranger, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ token: stranger.address })))
        .to.be.revertedWithCustomError(factory, "InvalidToken")
        .withArgs(stranger.address);
    });

    it("reverts InvalidToken when the token is the zero address", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ token: ZERO_ADDRESS })))
        .to.be.revertedWithCustomError(factory, "InvalidToken")
        .withArgs(ZERO_ADDRESS);
    });

    it("reverts InvalidPayee when the payee is the zero address", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ payee: ZERO_ADDRESS })))
        .to.be.revertedWithCustomError(factory, "InvalidPayee")
        .withArgs(ZERO_ADDRESS);
    });

    it("reverts PriceOutOfRange for a price of 0", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ price: 0n })))
        .to.be.revertedWithCustomError(factory, "PriceOutOfRange")
        .withArgs(0n, UINT96_MAX);
    });

    it("reverts PriceOutOfRange for a price above the uint96 maximum", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ price: UINT96_MAX + 1n })))
        .to.be.revertedWithCustomError(factory, "PriceOutOfRange")
        .withArgs(UINT96_MAX + 1n, UINT96_MAX);
    });

    it("reverts PeriodOutOfRange for a period one second shorter than an hour", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ period: MIN_PERIOD - 1n, gracePeriod: MIN_GRACE })))
        .to.be.revertedWithCustomError(factory, "PeriodOutOfRange")
        .withArgs(MIN_PERIOD - 1n, MIN_PERIOD, MAX_PERIOD);
    });

    it("reverts PeriodOutOfRange for a period one second longer than the maximum", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ period: MAX_PERIOD + 1n })))
        .to.be.revertedWithCustomError(factory, "PeriodOutOfRange")
        .withArgs(MAX_PERIOD + 1n, MIN_PERIOD, MAX_PERIOD);
    });

    it("reverts TrialOutOfRange for a trial one second longer than 366 days", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ trialPeriod: MAX_TRIAL + 1n })))
        .to.be.revertedWithCustomError(factory, "TrialOutOfRange")
        .withArgs(MAX_TRIAL + 1n, MAX_TRIAL);
    });

    it("reverts GracePeriodOutOfRange for a grace one second shorter than 15 minutes", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ gracePeriod: MIN_GRACE - 1n })))
        .to.be.revertedWithCustomError(factory, "GracePeriodOutOfRange")
        .withArgs(MIN_GRACE - 1n, MIN_GRACE, 30n * DAY - 1n);
    });

    it("reverts GracePeriodOutOfRange for a grace equal to the period", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ gracePeriod: 30n * DAY })))
        .to.be.revertedWithCustomError(factory, "GracePeriodOutOfRange")
        .withArgs(30n * DAY, MIN_GRACE, 30n * DAY - 1n);
    });

    it("reverts GracePeriodOutOfRange for a grace longer than the period", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ period: DAY, gracePeriod: 2n * DAY })))
        .to.be.revertedWithCustomError(factory, "GracePeriodOutOfRange")
        .withArgs(2n * DAY, MIN_GRACE, DAY - 1n);
    });

    it("reverts KeeperFeeOutOfRange for a keeper fee above 10%", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ keeperFeeBps: MAX_KEEPER_FEE_BPS + 1n })))
        .to.be.revertedWithCustomError(factory, "KeeperFeeOutOfRange")
        .withArgs(MAX_KEEPER_FEE_BPS + 1n, MAX_KEEPER_FEE_BPS);
    });

    it("deploys a MeteredPlan for metered terms, with its cap and free credits, and a FixedPricePlan for fixed ones", async () => {
      const { factory, merchant, payee, tokenAddress, terms } = await networkHelpers.loadFixture(factoryFixture);
      const given = meteredTerms(tokenAddress, payee.address, { perCycleCap: 5_000_000n, freeCredits: 1_000_000n });
      const meteredAddress = await factory.connect(merchant).createPlan.staticCall(given);
      await expect(factory.connect(merchant).createPlan(given)).to.emit(factory, "PlanCreated");
      const metered = await ethers.getContractAt("MeteredPlan", meteredAddress);
      expect(await metered.billingMode()).to.equal(BillingMode.Metered);
      expect(await metered.perCycleCap()).to.equal(5_000_000n);
      expect(await metered.freeCredits()).to.equal(1_000_000n);
      expect(await metered.price()).to.equal(0n);
      expect(await metered.owner()).to.equal(merchant.address);
      expect(await factory.isPlan(meteredAddress)).to.equal(true);
      const fixedAddress = await factory.connect(merchant).createPlan.staticCall(terms());
      await factory.connect(merchant).createPlan(terms());
      expect(await (await ethers.getContractAt("FixedPricePlan", fixedAddress)).billingMode()).to.equal(BillingMode.Fixed);
    });

    it("reverts PerCycleCapOutOfRange for a metered plan whose cap is 0 or above the uint96 maximum", async () => {
      const { factory, merchant, payee, tokenAddress } = await networkHelpers.loadFixture(factoryFixture);
      for (const cap of [0n, UINT96_MAX + 1n]) {
        await expect(factory.connect(merchant).createPlan(meteredTerms(tokenAddress, payee.address, { perCycleCap: cap })))
          .to.be.revertedWithCustomError(factory, "PerCycleCapOutOfRange")
          .withArgs(cap, UINT96_MAX);
      }
    });

    it("reverts FreeCreditsOutOfRange for metered free credits above the uint96 maximum", async () => {
      const { factory, merchant, payee, tokenAddress } = await networkHelpers.loadFixture(factoryFixture);
      const terms = meteredTerms(tokenAddress, payee.address, { freeCredits: UINT96_MAX + 1n });
      await expect(factory.connect(merchant).createPlan(terms))
        .to.be.revertedWithCustomError(factory, "FreeCreditsOutOfRange")
        .withArgs(UINT96_MAX + 1n, UINT96_MAX);
    });

    it("reverts TermNotApplicable for each fixed-plan term set on a metered plan, naming it", async () => {
      const { factory, merchant, payee, tokenAddress } = await networkHelpers.loadFixture(factoryFixture);
      const feed = await (await ethers.deployContract("MockAggregator", [8, 100_000_000n])).getAddress();
      const cases: [Partial<PlanTermsStruct>, string, bigint][] = [
        [{ price: 1n }, "price", 1n],
        [{ trialPeriod: DAY }, "trialPeriod", DAY],
        [{ keeperFeeBps: 10n }, "keeperFeeBps", 10n],
        [{ keeperRestricted: true }, "keeperRestricted", 1n],
        [{ priceFeed: feed }, "priceFeed", BigInt(feed)],
        [{ maxPriceAge: 60n }, "maxPriceAge", 60n],
        [{ allowanceBufferBps: 1n }, "allowanceBufferBps", 1n],
      ];
      for (const [override, name, value] of cases) {
        await expect(factory.connect(merchant).createPlan(meteredTerms(tokenAddress, payee.address, override)))
          .to.be.revertedWithCustomError(factory, "TermNotApplicable")
          .withArgs(name, value);
      }
    });

    it("checks the terms every plan has on metered plans too: token, payee, period and grace", async () => {
      const { factory, merchant, payee, stranger, tokenAddress } = await networkHelpers.loadFixture(factoryFixture);
      const metered = (o: Partial<PlanTermsStruct>) => factory.connect(merchant).createPlan(meteredTerms(tokenAddress, payee.address, o));
      await expect(metered({ token: stranger.address })).to.be.revertedWithCustomError(factory, "InvalidToken").withArgs(stranger.address);
      await expect(metered({ payee: ZERO_ADDRESS })).to.be.revertedWithCustomError(factory, "InvalidPayee").withArgs(ZERO_ADDRESS);
      await expect(metered({ period: MIN_PERIOD - 1n, gracePeriod: MIN_GRACE }))
        .to.be.revertedWithCustomError(factory, "PeriodOutOfRange")
        .withArgs(MIN_PERIOD - 1n, MIN_PERIOD, MAX_PERIOD);
      await expect(metered({ gracePeriod: 30n * DAY }))
        .to.be.revertedWithCustomError(factory, "GracePeriodOutOfRange")
        .withArgs(30n * DAY, MIN_GRACE, 30n * DAY - 1n);
    });

    it("reverts TermNotApplicable for free credits on a fixed plan", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ freeCredits: 1n })))
        .to.be.revertedWithCustomError(factory, "TermNotApplicable")
        .withArgs("freeCredits", 1n);
    });

    it("its deployers deploy only for it: a direct call reverts OnlyFactory", async () => {
      const { factory, stranger, terms } = await networkHelpers.loadFixture(factoryFixture);
      const [fixedDeployer, meteredDeployer] = await factory.deployers();
      for (const address of [fixedDeployer, meteredDeployer]) {
        const deployer = await ethers.getContractAt("FixedPlanDeployer", address);
        expect(await deployer.FACTORY()).to.equal(await factory.getAddress());
        await expect(deployer.connect(stranger).deploy(stranger.address, terms()))
          .to.be.revertedWithCustomError(deployer, "OnlyFactory")
          .withArgs(stranger.address);
      }
    });

    it("a plan contract deployed directly with terms of the other mode reverts UnsupportedBillingMode", async () => {
      const { merchant, payee, tokenAddress, terms } = await networkHelpers.loadFixture(factoryFixture);
      const fixedFactory = await ethers.getContractFactory("FixedPricePlan");
      await expect(fixedFactory.deploy(merchant.address, terms({ billingMode: BillingMode.Metered })))
        .to.be.revertedWithCustomError(fixedFactory, "UnsupportedBillingMode")
        .withArgs(BillingMode.Metered);
      const meteredFactory = await ethers.getContractFactory("MeteredPlan");
      await expect(meteredFactory.deploy(merchant.address, { ...meteredTerms(tokenAddress, payee.address), billingMode: BillingMode.Fixed }))
        .to.be.revertedWithCustomError(meteredFactory, "UnsupportedBillingMode")
        .withArgs(BillingMode.Fixed);
    });

    it("creates a USD-priced plan whose usdPricing view reports its feed, max age and buffer", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      const feed = await ethers.deployContract("MockAggregator", [8, 100_000_000n]);
      const tx = await factory.connect(merchant).createPlan(terms({ priceFeed: await feed.getAddress(), maxPriceAge: 3_600n, allowanceBufferBps: 500n }));
      const created = (await tx.wait())!.logs.map((l) => factory.interface.parseLog(l)).find((e) => e?.name === "PlanCreated")!;
      const plan = await ethers.getContractAt("FixedPricePlan", created.args.plan as string);
      expect(await plan.usdPricing()).to.deep.equal([await feed.getAddress(), 3_600n, 500n]);
    });

    it("reverts InvalidPriceFeed for a feed without code", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      const feed = ethers.Wallet.createRandom().address;
      await expect(factory.connect(merchant).createPlan(terms({ priceFeed: feed, maxPriceAge: 3_600n })))
        .to.be.revertedWithCustomError(factory, "InvalidPriceFeed")
        .withArgs(feed);
    });

    it("reverts PriceAgeOutOfRange for a max price age under a minute or over seven days", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      const feed = await (await ethers.deployContract("MockAggregator", [8, 100_000_000n])).getAddress();
      for (const age of [0n, 59n, 7n * DAY + 1n]) {
        await expect(factory.connect(merchant).createPlan(terms({ priceFeed: feed, maxPriceAge: age })))
          .to.be.revertedWithCustomError(factory, "PriceAgeOutOfRange")
          .withArgs(age, 60n, 7n * DAY);
      }
    });

    it("reverts AllowanceBufferOutOfRange for a buffer above 50%", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      const feed = await (await ethers.deployContract("MockAggregator", [8, 100_000_000n])).getAddress();
      await expect(factory.connect(merchant).createPlan(terms({ priceFeed: feed, maxPriceAge: 3_600n, allowanceBufferBps: 5_001n })))
        .to.be.revertedWithCustomError(factory, "AllowanceBufferOutOfRange")
        .withArgs(5_001n, 5_000n);
    });

    it("reverts InvalidPriceFeed for a feed with code that does not answer decimals()", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      const notAFeed = await factory.getAddress();
      await expect(factory.connect(merchant).createPlan(terms({ priceFeed: notAFeed, maxPriceAge: 3_600n })))
        .to.be.revertedWithCustomError(factory, "InvalidPriceFeed")
        .withArgs(notAFeed);
    });

    it("reverts DecimalsOutOfRange(255, feed, 36) for a USD-priced plan whose token does not answer decimals()", async () => {
      const { factory, merchant, payee } = await networkHelpers.loadFixture(factoryFixture);
      const feed = await (await ethers.deployContract("MockAggregator", [8, 100_000_000n])).getAddress();
      const noDecimals = await (await ethers.deployContract("ERC1271Wallet", [merchant.address])).getAddress();
      await expect(factory.connect(merchant).createPlan(fixedTerms(noDecimals, payee.address, { priceFeed: feed, maxPriceAge: 3_600n })))
        .to.be.revertedWithCustomError(factory, "DecimalsOutOfRange")
        .withArgs(255n, 8n, 36n);
    });

    it("reverts DecimalsOutOfRange when token and feed decimals add up to more than 36", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      const feed = await (await ethers.deployContract("MockAggregator", [31, 100_000_000n])).getAddress();
      await expect(factory.connect(merchant).createPlan(terms({ priceFeed: feed, maxPriceAge: 3_600n })))
        .to.be.revertedWithCustomError(factory, "DecimalsOutOfRange")
        .withArgs(6n, 31n, 36n);
    });

    it("reverts TermNotApplicable for a per-cycle cap on a fixed plan", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ perCycleCap: 1n })))
        .to.be.revertedWithCustomError(factory, "TermNotApplicable")
        .withArgs("perCycleCap", 1n);
    });

    it("reverts TermNotApplicable for a max price age on a token-priced plan", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ maxPriceAge: 3_600n })))
        .to.be.revertedWithCustomError(factory, "TermNotApplicable")
        .withArgs("maxPriceAge", 3_600n);
    });

    it("reverts TermNotApplicable for an allowance buffer on a token-priced plan", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ allowanceBufferBps: 500n })))
        .to.be.revertedWithCustomError(factory, "TermNotApplicable")
        .withArgs("allowanceBufferBps", 500n);
    });

    it("creates nothing when a term is refused", async () => {
      const { factory, merchant, terms } = await networkHelpers.loadFixture(factoryFixture);
      await expect(factory.connect(merchant).createPlan(terms({ price: 0n }))).to.be.revertedWithCustomError(
        factory,
        "PriceOutOfRange",
      );
      expect(await factory.planCount()).to.equal(0n);
    });
  });
});

// The parts of the factory's and the plans' ABI that `recur plan …` uses: creating a plan, reading its
// terms back, and the owner's actions. Written out (no build step); test/merchant/plans-abi.test.ts
// checks every fragment against the compiled artifacts.
import { Interface } from "ethers";

const TERMS_TUPLE =
  "(address token, address payee, uint256 price, uint32 period, uint32 trialPeriod, uint32 gracePeriod, uint8 billingMode, bool keeperRestricted, uint16 keeperFeeBps, uint256 perCycleCap, address priceFeed, uint32 maxPriceAge, uint16 allowanceBufferBps, uint256 freeCredits)";

/** ITermsErrors: raised by the factory (and the plan's constructor) for terms out of bounds. */
export const TERMS_ERRORS = [
  "error AllowanceBufferOutOfRange(uint256 allowanceBufferBps, uint256 maxBufferBps)",
  "error DecimalsOutOfRange(uint256 tokenDecimals, uint256 feedDecimals, uint256 maxSum)",
  "error FreeCreditsOutOfRange(uint256 freeCredits, uint256 maxCredits)",
  "error GracePeriodOutOfRange(uint256 gracePeriod, uint256 minGrace, uint256 maxGrace)",
  "error InvalidPayee(address payee)",
  "error InvalidPriceFeed(address priceFeed)",
  "error InvalidToken(address token)",
  "error KeeperFeeOutOfRange(uint256 keeperFeeBps, uint256 maxFeeBps)",
  "error PerCycleCapOutOfRange(uint256 perCycleCap, uint256 maxCap)",
  "error PeriodOutOfRange(uint256 period, uint256 minPeriod, uint256 maxPeriod)",
  "error PriceAgeOutOfRange(uint256 maxPriceAge, uint256 minAge, uint256 maxAge)",
  "error PriceOutOfRange(uint256 price, uint256 maxPrice)",
  "error TermNotApplicable(string term, uint256 value)",
  "error TrialOutOfRange(uint256 trialPeriod, uint256 maxTrial)",
  "error UnsupportedBillingMode(uint8 billingMode)",
] as const;

export const PLAN_FACTORY_ABI = [
  `event PlanCreated(address indexed plan, address indexed owner, address indexed token, ${TERMS_TUPLE} terms)`,
  `function createPlan(${TERMS_TUPLE} terms) returns (address plan)`,
  "function isPlan(address plan) view returns (bool created)",
  ...TERMS_ERRORS,
] as const;

/** What fixed and metered plans share, with the same signature and mutability in both. */
export const PLAN_CORE_ABI = [
  "function owner() view returns (address)",
  "function token() view returns (address)",
  "function payee() view returns (address)",
  "function period() view returns (uint256)",
  "function gracePeriod() view returns (uint256)",
  "function billingMode() pure returns (uint8)",
  "function status() view returns (uint8)",
  "function isBlocked(address subscriber) view returns (bool)",
  "function setStatus(uint8 newStatus)",
  "function setPayee(address newPayee)",
  "function setBlocked(address subscriber, bool blocked)",
  "function cancelFor(address subscriber)",
  "error AlreadySubscribed(address subscriber, uint8 status)",
  "error InvalidPayee(address payee)",
  "error InvalidPlanStatus(uint256 status)",
  "error InvalidStatusTransition(uint8 from, uint8 to)",
  "error InvalidSubscriptionStatus(address subscriber, uint8 status)",
  "error NotSubscribed(address subscriber)",
  "error OwnableInvalidOwner(address owner)",
  "error OwnableUnauthorizedAccount(address account)",
  "error PlanNotActive(uint8 status)",
  "error PlanRetired()",
  "error ReentrancyGuardReentrantCall()",
  "error SafeERC20FailedOperation(address token)",
  "error SubscriberBlocked(address subscriber)",
  "error SubscriptionCancelled(address subscriber)",
  "error SubscriptionExpired(address subscriber, uint256 graceEndedAt, uint256 now)",
  "error SubscriptionPaused(address subscriber, uint256 pausedAt)",
] as const;

/** FixedPricePlan only. */
export const FIXED_PLAN_ABI = [
  "function price() view returns (uint256)",
  "function trialPeriod() view returns (uint256)",
  "function usdPricing() view returns (address, uint256, uint256)",
  "function keeperRestricted() view returns (bool)",
  "function keeperFeeBps() view returns (uint256)",
  "function isKeeper(address account) view returns (bool)",
  "function setKeeper(address keeper, bool authorized)",
  "error NotAuthorizedKeeper(address caller)",
] as const;

/** MeteredPlan only. */
export const METERED_ONLY_ABI = [
  "function perCycleCap() view returns (uint256)",
  "function freeCredits() view returns (uint256)",
  "function isReporter(address account) view returns (bool)",
  "function setReporter(address reporter, bool authorized)",
  "function writeOff(address subscriber)",
  "error NothingToWriteOff(address subscriber, uint8 status)",
  "error UnbilledCycle(address subscriber, uint256 cycleIndex, uint256 cycleEnd)",
] as const;

/** `decimals()` of an ERC-20 token and of a Chainlink-style feed. */
export const DECIMALS_ABI = ["function decimals() view returns (uint8)"] as const;

export const planFactoryInterface = new Interface(PLAN_FACTORY_ABI);
export const fixedPlanInterface = new Interface([...PLAN_CORE_ABI, ...FIXED_PLAN_ABI]);
export const meteredPlanOwnerInterface = new Interface([...PLAN_CORE_ABI, ...METERED_ONLY_ABI]);
export const decimalsInterface = new Interface(DECIMALS_ABI);

/** `PlanStatus` codes, as in contracts/interfaces/PlanTypes.sol. */
export const PLAN_STATUSES = ["Active", "OnHold", "Retired"] as const;
/** `SubscriptionStatus` codes. */
export const SUBSCRIPTION_STATUSES = ["None", "Trialing", "Active", "PastDue", "Paused", "Cancelled", "Expired"] as const;
/** `BillingMode` codes. */
export const BILLING_MODES = ["Fixed", "Metered"] as const;

// The parts of the contracts' ABI the pages read and call (human-readable fragments for ethers), with
// every custom error a customer's transaction can meet, so that each revert decodes to a name.
export const FACTORY_ABI = [
  "function isPlan(address plan) view returns (bool)",
  "event PlanCreated(address indexed plan, address indexed owner, address indexed token, (address token, address payee, uint256 price, uint32 period, uint32 trialPeriod, uint32 gracePeriod, uint8 billingMode, bool keeperRestricted, uint16 keeperFeeBps, uint256 perCycleCap, address priceFeed, uint32 maxPriceAge, uint16 allowanceBufferBps, uint256 freeCredits) terms)",
];

export const PLAN_ABI = [
  "function owner() view returns (address)",
  "function token() view returns (address)",
  "function payee() view returns (address)",
  "function price() view returns (uint256)",
  "function period() view returns (uint256)",
  "function trialPeriod() view returns (uint256)",
  "function gracePeriod() view returns (uint256)",
  "function billingMode() view returns (uint8)",
  "function perCycleCap() view returns (uint256)",
  "function status() view returns (uint8)",
  "function usdPricing() view returns (address priceFeed, uint256 maxPriceAge, uint256 allowanceBufferBps)",
  "function freeCredits() view returns (uint256)",
  "function creditsOf(address subscriber) view returns (uint256)",
  "function billingLimit(address subscriber) view returns (uint256)",
  "function requiredAllowance(uint256 periods) view returns (uint256)",
  "function statusOf(address subscriber) view returns (uint8)",
  "function nextChargeAt(address subscriber) view returns (uint256)",
  "function amountDue(address subscriber) view returns (uint256)",
  "function hasAccess(address subscriber) view returns (bool)",
  "function isBlocked(address subscriber) view returns (bool)",
  "function nonces(address subscriber) view returns (uint256)",
  "function chargeability(address subscriber) view returns (bool ok, uint8 reason, uint256 amount)",
  "function subscriptionOf(address subscriber) view returns ((uint96 maxAmount, uint40 nextChargeAt, uint40 startedAt, uint40 pausedAt, uint32 periodsPaid, uint8 flags))",
  "function subscribeWithRef(uint256 maxAmount, bytes32 ref) returns (uint256)",
  "function subscribeWithPermitAndRef(uint256 maxAmount, bytes32 ref, uint256 allowance, uint256 deadline, uint8 v, bytes32 r, bytes32 s) returns (uint256)",
  "function cancel()",
  "function pause()",
  "function resume()",
  "function setMaxAmount(uint256 maxAmount)",
  "function revokeAuthorizations()",
  "event Subscribed(address indexed subscriber, uint256 maxAmount, uint256 startedAt, uint256 nextChargeAt, bool trial, bytes32 indexed ref)",
  "event Charged(address indexed subscriber, uint256 periodIndex, uint256 amount, uint256 nextChargeAt)",
  "event ChargeFailed(address indexed subscriber, uint8 reason)",
  "event UsageCharged(address indexed subscriber, uint256 cycleIndex, uint256 usage, uint256 fromCredits, uint256 pulled, uint256 nextChargeAt, bytes32 indexed usageRef)",
  "event Cancelled(address indexed subscriber, address indexed by, uint256 paidThrough)",
  "event Paused(address indexed subscriber, uint256 pausedAt)",
  "event Resumed(address indexed subscriber, uint256 nextChargeAt, uint256 pausedFor)",
  "event MaxAmountUpdated(address indexed subscriber, uint256 oldMaxAmount, uint256 newMaxAmount)",
  "error NotSubscribed(address subscriber)",
  "error NotDue(address subscriber, uint256 nextChargeAt, uint256 now)",
  "error MaxAmountExceeded(uint256 amount, uint256 maxAmount)",
  "error SubscriptionCancelled(address subscriber)",
  "error SubscriptionPaused(address subscriber, uint256 pausedAt)",
  "error SubscriptionExpired(address subscriber, uint256 graceEndedAt, uint256 now)",
  "error PlanRetired()",
  "error PlanNotActive(uint8 status)",
  "error AlreadySubscribed(address subscriber, uint8 status)",
  "error InvalidSubscriptionStatus(address subscriber, uint8 status)",
  "error SafeERC20FailedOperation(address token)",
  "error SubscriberBlocked(address subscriber)",
  "error BatchOutOfGas(address subscriber)",
  "error SignatureExpired(uint256 deadline, uint256 now)",
  "error InvalidSignature(address subscriber)",
  "error PriceUnavailable(int256 answer, uint256 updatedAt, uint256 maxPriceAge)",
  "error InsufficientFunds(address subscriber, uint8 reason)",
  "error UnbilledCycle(address subscriber, uint256 cycleIndex, uint256 cycleEnd)",
  "error ReentrancyGuardReentrantCall()",
  // OpenZeppelin ERC-20 / ERC-2612 errors a token may revert with inside a sign-up.
  "error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed)",
  "error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)",
  "error ERC2612ExpiredSignature(uint256 deadline)",
  "error ERC2612InvalidSigner(address signer, address owner)",
];

export const ERC20_ABI = [
  "function symbol() view returns (string)",
  "function decimals() view returns (uint8)",
  "function balanceOf(address) view returns (uint256)",
  "function allowance(address owner, address spender) view returns (uint256)",
  "function approve(address spender, uint256 amount) returns (bool)",
  "function nonces(address owner) view returns (uint256)",
  "function DOMAIN_SEPARATOR() view returns (bytes32)",
  "function eip712Domain() view returns (bytes1 fields, string name, string version, uint256 chainId, address verifyingContract, bytes32 salt, uint256[] extensions)",
  "function name() view returns (string)",
];

export const FEED_ABI = [
  "function latestRoundData() view returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)",
  "function decimals() view returns (uint8)",
];

/** `SubscriptionStatus` codes, as in contracts/interfaces/PlanTypes.sol. */
export const SUBSCRIPTION_STATUSES = ["None", "Trialing", "Active", "PastDue", "Paused", "Cancelled", "Expired"];
/** `PlanStatus` codes. */
export const PLAN_STATUSES = ["Active", "OnHold", "Retired"];
/** `ChargeReason` codes. */
export const CHARGE_REASONS = ["Ok", "NotSubscribed", "NotDue", "Paused", "Cancelled", "Expired", "PlanRetired", "MaxAmountExceeded", "AllowanceTooLow", "BalanceTooLow", "TransferFailed", "PriceStale", "UsageAboveCap"];

// The parts of the contracts' ABI the keeper uses, written out so that the keeper runs on plain Node
// without a build step. test/keeper/abi.test.ts checks every fragment against the compiled artifacts.
import { EventFragment, Interface } from "ethers";
import type { Result } from "ethers";

export const FACTORY_ABI = [
  "event PlanCreated(address indexed plan, address indexed owner, address indexed token, (address token, address payee, uint256 price, uint32 period, uint32 trialPeriod, uint32 gracePeriod, uint8 billingMode, bool keeperRestricted, uint16 keeperFeeBps, uint256 perCycleCap, address priceFeed, uint32 maxPriceAge, uint16 allowanceBufferBps, uint256 freeCredits) terms)",
] as const;

export const PLAN_ABI = [
  "event Subscribed(address indexed subscriber, uint256 maxAmount, uint256 startedAt, uint256 nextChargeAt, bool trial, bytes32 indexed ref)",
  "event Charged(address indexed subscriber, uint256 periodIndex, uint256 amount, uint256 nextChargeAt)",
  "event ChargeFailed(address indexed subscriber, uint8 reason)",
  "event Cancelled(address indexed subscriber, address indexed by, uint256 paidThrough)",
  "event Paused(address indexed subscriber, uint256 pausedAt)",
  "event Resumed(address indexed subscriber, uint256 nextChargeAt, uint256 pausedFor)",
  "event MaxAmountUpdated(address indexed subscriber, uint256 oldMaxAmount, uint256 newMaxAmount)",
  "event PlanStatusChanged(uint8 oldStatus, uint8 newStatus)",
  "event KeeperAuthorized(address indexed keeper, bool authorized)",
  "event KeeperFeePaid(address indexed keeper, address indexed subscriber, uint256 fee)",
  "event PayeeChanged(address indexed oldPayee, address indexed newPayee)",
  "event OwnershipTransferred(address indexed previousOwner, address indexed newOwner)",
  "event SubscriberBlockUpdated(address indexed subscriber, bool blocked)",
  "event AuthorizationsRevoked(address indexed subscriber, uint256 nonce)",
  "error BatchOutOfGas(address subscriber)",
  "function chargeMany(address[] subscribers) returns (uint256 charged)",
  "function chargeabilityMany(address[] subscribers) view returns (uint8[] reasons)",
  "function isKeeper(address account) view returns (bool)",
] as const;

/** What `recur usage` reads and calls on a metered plan (never the keeper's passes: they leave
 * metered plans alone). */
export const METERED_PLAN_ABI = [
  "event UsageCharged(address indexed subscriber, uint256 cycleIndex, uint256 usage, uint256 fromCredits, uint256 pulled, uint256 nextChargeAt, bytes32 indexed usageRef)",
  "event UsageChargeFailed(address indexed subscriber, uint8 reason, uint256 usage, bytes32 indexed usageRef)",
  "event CreditsGranted(address indexed subscriber, uint256 credits)",
  "event ReporterAuthorized(address indexed reporter, bool authorized)",
  "event CycleWrittenOff(address indexed subscriber, uint256 cycleIndex, uint256 cycleEnd)",
  "function chargeUsageMany(address[] subscribers, uint256[] usages, bytes32[] usageRefs) returns (uint256 charged)",
  "function usageChargeability(address subscriber, uint256 usage) view returns (bool, uint8, uint256, uint256)",
  "function subscriptionOf(address subscriber) view returns ((uint96 maxAmount, uint40 nextChargeAt, uint40 startedAt, uint40 pausedAt, uint32 periodsPaid, uint8 flags))",
  "function isReporter(address account) view returns (bool)",
  "function billingMode() pure returns (uint8)",
  "function perCycleCap() view returns (uint256)",
  "function token() view returns (address)",
] as const;

export const factoryInterface = new Interface(FACTORY_ABI);
export const planInterface = new Interface(PLAN_ABI);
export const meteredPlanInterface = new Interface(METERED_PLAN_ABI);

/** `ChargeReason` codes, as in contracts/interfaces/PlanTypes.sol. */
export const CHARGE_REASONS = [
  "Ok",
  "NotSubscribed",
  "NotDue",
  "Paused",
  "Cancelled",
  "Expired",
  "PlanRetired",
  "MaxAmountExceeded",
  "AllowanceTooLow",
  "BalanceTooLow",
  "TransferFailed",
  "PriceStale",
  "UsageAboveCap",
] as const;
export type ChargeReasonName = (typeof CHARGE_REASONS)[number];
export const reasonName = (code: number | bigint): ChargeReasonName | "Unknown" => CHARGE_REASONS[Number(code)] ?? "Unknown";

/** `BillingMode` code of a fixed plan: the only kind the keeper charges (metered plans are billed by
 * their owner or reporters, who supply the usage: see `recur usage`). */
export const BILLING_FIXED = 0;
/** `BillingMode` code of a metered plan: the only kind `recur usage` bills. */
export const BILLING_METERED = 1;

/** `PlanStatus` code of a retired plan. */
export const PLAN_RETIRED = 2;

/** Every event of both plan kinds (fixed and metered), to parse any plan's logs with one interface. */
export const planEventsInterface = new Interface([
  ...PLAN_ABI.filter((f) => f.startsWith("event ")),
  ...METERED_PLAN_ABI.filter((f) => f.startsWith("event ")),
]);

/** topic0 of every plan event the indexer reads: every event of either plan kind but a started (not yet
 * accepted) ownership transfer and EIP-712 domain changes. */
export const PLAN_EVENT_TOPICS: string[] = [];
// Each event by topic0, as an anonymous fragment: decoding it hashes no signature. (Interface.parseLog
// hashes every fragment's signature on each call until one matches: on the indexer's path, hundreds of
// thousands of logs, that was most of its time.)
const PLAN_EVENTS = new Map<string, { name: string; fragment: EventFragment }>();
planEventsInterface.forEachEvent((event) => {
  PLAN_EVENT_TOPICS.push(event.topicHash);
  const json = JSON.parse(event.format("json")) as Record<string, unknown>;
  PLAN_EVENTS.set(event.topicHash, { name: event.name, fragment: EventFragment.from({ ...json, anonymous: true }) });
});

/** A plan event (either kind) decoded by its topic0; null for any other log. */
export function parsePlanEvent(log: { topics: readonly string[]; data: string }): { name: string; args: Result } | null {
  const known = PLAN_EVENTS.get(String(log.topics[0]).toLowerCase());
  if (known === undefined) return null;
  return { name: known.name, args: planEventsInterface.decodeEventLog(known.fragment, log.data, log.topics.slice(1)) };
}

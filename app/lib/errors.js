// Every failure the customer can meet, as one sentence that says what to do: the plans' custom errors
// (decoded by lib/client.js), the token's, and the wallet's (EIP-1193 codes: 4001 declined, 4902 unknown
// network, -32002 a request already open; no gas money).
import * as fmt from "./format.js";

/** A failure the pages explain: `kind` (config, link, revert, wallet, gas, failed), an optional ready
 * sentence, a transaction hash, and a decoded custom error `{ name, args }`. */
export class RecurError extends Error {
  constructor(kind, sentence, hash = null, decoded = null) {
    super(sentence ?? decoded?.name ?? kind);
    this.kind = kind;
    this.sentence = sentence;
    this.hash = hash;
    this.decoded = decoded;
  }
}

const STATUS_WORDS = { None: "not started", Trialing: "in its free trial", Active: "active", PastDue: "waiting for an overdue payment", Paused: "paused", Cancelled: "cancelled", Expired: "lapsed" };
const SUB_STATUSES = ["None", "Trialing", "Active", "PastDue", "Paused", "Cancelled", "Expired"];

/** What a ChargeReason means for the customer, and what to do. */
export function reasonSentence(reason, token) {
  switch (reason) {
    case "AllowanceTooLow": return `Your approval for this plan is too low: approve more so the payment can go through.`;
    case "BalanceTooLow": return `Your wallet doesn't hold enough ${token?.symbol ?? "tokens"}: add funds before the payment is due.`;
    case "MaxAmountExceeded": return "The payment would be above the maximum you allow per payment: raise your maximum.";
    case "PriceStale": return "The plan's price source is out of date, so the payment can't be worked out now; it will go through once the price is fresh again.";
    case "TransferFailed": return "The token refused the payment: contact the merchant.";
    case "Paused": return "Your subscription is paused: nothing will be charged until you resume.";
    case "Cancelled": return "Your subscription is cancelled: nothing more will be charged.";
    case "Expired": return "Your subscription has lapsed: nothing more will be charged. You can subscribe again.";
    case "PlanRetired": return "The merchant has closed this plan: nothing more will be charged.";
    case "NotSubscribed": return "You don't have a subscription to this plan.";
    default: return "The next payment can't be taken right now.";
  }
}

/** A decoded custom error as one sentence; `ctx.token` formats amounts. */
function revertSentence(decoded, ctx) {
  const token = ctx.token;
  const money = (v) => (token ? fmt.amount(v, token) : String(v));
  const a = decoded.args ?? [];
  switch (decoded.name) {
    case "PlanNotActive": return "The merchant has put this plan on hold: it takes no new subscribers right now. Ask them when it reopens.";
    case "PlanRetired": return "The merchant has closed this plan: it takes no new subscribers and charges no one.";
    case "AlreadySubscribed": return "You already subscribe to this plan: open your subscription page to manage it.";
    case "MaxAmountExceeded": return `The payment (${money(a[0])}) is above the maximum per payment (${money(a[1])}): raise the maximum, then try again.`;
    case "ERC20InsufficientAllowance": return `Your approval (${money(a[1])}) is less than the payment (${money(a[2])}): approve more, then try again.`;
    case "ERC20InsufficientBalance": return `Your balance (${money(a[1])}) is less than the payment (${money(a[2])}): add ${token?.symbol ?? "tokens"} to your wallet, then try again.`;
    case "InsufficientFunds": return reasonSentence(["Ok", "NotSubscribed", "NotDue", "Paused", "Cancelled", "Expired", "PlanRetired", "MaxAmountExceeded", "AllowanceTooLow", "BalanceTooLow", "TransferFailed", "PriceStale"][Number(a[1])], token);
    case "SafeERC20FailedOperation": return "The token refused the payment: check your balance and your approval, then try again.";
    case "SubscriberBlocked": return "The merchant has blocked this address from this plan: contact them.";
    case "NotSubscribed": return "You don't have a subscription to this plan.";
    case "SubscriptionCancelled": return "This subscription is cancelled: subscribe again to restart it.";
    case "SubscriptionPaused": return "Your subscription is paused: resume it first.";
    case "SubscriptionExpired": return "This subscription has lapsed: subscribe again to restart it.";
    case "InvalidSubscriptionStatus": return `That can't be done while your subscription is ${STATUS_WORDS[SUB_STATUSES[Number(a[1])]] ?? "in its current state"}: reload the page to see where it stands.`;
    case "PriceUnavailable": return "The plan's price source is out of date, so today's amount can't be worked out: try again later.";
    case "UnbilledCycle": return "Your last subscription's final usage hasn't been billed yet: the merchant must settle it before you can sign up again.";
    case "ERC2612ExpiredSignature": case "SignatureExpired": return "Your signature expired before it was used: try again.";
    case "ERC2612InvalidSigner": case "InvalidSignature": return "Your wallet's signature didn't match: try again, or sign up with an approval instead.";
    case "BatchOutOfGas": return "Too little gas was sent with the transaction: try again.";
    case "NotDue": return "Nothing is due yet.";
    default: return `The transaction would fail${decoded.message ? ` (${String(decoded.message).slice(0, 120)})` : ""}: nothing was sent. Reload the page and try again.`;
  }
}

/** Any error as the one sentence the page shows. */
export function explain(error, ctx = {}) {
  if (error instanceof RecurError) {
    if (error.sentence) return error.sentence;
    if (error.decoded) return revertSentence(error.decoded, ctx);
  }
  const code = error?.code ?? error?.error?.code ?? error?.info?.error?.code;
  const message = String(error?.message ?? error);
  if (code === 4001 || code === "ACTION_REJECTED") return "You declined in your wallet, so nothing was sent. Press the button again when you're ready.";
  if (code === 4902) return `Your wallet doesn't know this network (chain ${ctx.chainId ?? "?"}): add it in your wallet, then try again.`;
  if (code === -32002) return "Your wallet already has a request waiting: open your wallet and answer it there.";
  if (code === 4100) return "Your wallet hasn't allowed this site yet: connect it, then try again.";
  if (/insufficient funds|doesn't have enough funds/i.test(message)) return "Your wallet doesn't have enough ETH to pay the network fee for this: add some ETH to it, then try again.";
  if (/chain|network/i.test(message) && /wrong|mismatch|switch/i.test(message)) return `Your wallet is on another network: switch it to chain ${ctx.chainId ?? "?"} and try again.`;
  return `Something went wrong (${message.slice(0, 160)}): nothing was sent unless a receipt is shown. Reload the page and try again.`;
}

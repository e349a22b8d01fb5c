// `recur plan create` and the owner's actions on one plan (hold, activate, retire, payee, keepers,
// reporters, block, unblock, cancel-subscriber, write-off). Each checks what it can off-chain first
// (the terms' bounds, the plan's owner and kind), says what it will send, waits for --yes or a "y",
// simulates, and turns a revert into one line naming the contract's error.
// Exit codes: 0 sent (or, with --dry-run, would succeed); 1 bad input or refused, nothing sent; 2 a
// failure on the way (an RPC fault, a transaction that failed); 3 the node is on another chain.
import { readFileSync } from "node:fs";

import { getAddress, isAddress, ZeroAddress } from "ethers";
import type { Interface, Result } from "ethers";

import { BILLING_FIXED, BILLING_METERED } from "../../chain/abi.ts";
import type { Receipt } from "../../chain/rpc.ts";
import { RpcError } from "../../chain/rpc.ts";
import { configError, KeeperError } from "../../errors.ts";
import {
  BILLING_MODES,
  decimalsInterface,
  fixedPlanInterface,
  meteredPlanOwnerInterface,
  PLAN_STATUSES,
  planFactoryInterface,
  SUBSCRIPTION_STATUSES,
} from "../../plans/abi.ts";
import {
  buildTerms,
  describeTerms,
  formatBps,
  formatDuration,
  mergeTermsInput,
  nonZeroAddress,
  resolveTermsAddresses,
  TERM_OPTIONS,
} from "../../plans/terms.ts";
import type { PlanTerms, TermName, TermsInput } from "../../plans/terms.ts";
import type { Command, Context } from "../command.ts";
import { USD_DECIMALS } from "../../reports/format.ts";
import { tokenUnits } from "../output.ts";


// --- chain reads and sends ------------------------------------------------------------------------

async function view(ctx: Context, iface: Interface, to: string, name: string, args: unknown[] = []): Promise<Result> {
  return iface.decodeFunctionResult(name, await ctx.rpc.ethCall(to, iface.encodeFunctionData(name, args), "latest"));
}

/** `decimals()` of a token or a feed; null when it does not answer one. */
async function decimalsOf(ctx: Context, address: string): Promise<number | null> {
  try {
    const value = (await view(ctx, decimalsInterface, address, "decimals"))[0] as bigint;
    return value <= 255n ? Number(value) : null;
  } catch (error) {
    if (error instanceof RpcError || (error as { code?: string }).code === "BAD_DATA") return null;
    throw error;
  }
}

/** The revert data in an RPC error (a hex string, or { data } as some nodes wrap it). */
function revertData(error: unknown): string | null {
  if (!(error instanceof RpcError)) return null;
  let data: unknown = error.data;
  if (typeof data === "object" && data !== null && "data" in data) data = (data as { data: unknown }).data;
  return typeof data === "string" && /^0x[0-9a-fA-F]*$/.test(data) ? data : null;
}

/** The errors' enum arguments, named: `error.argument` → the enum's members. */
const ENUM_ARGS: Record<string, readonly string[]> = {
  "InvalidStatusTransition.from": PLAN_STATUSES,
  "InvalidStatusTransition.to": PLAN_STATUSES,
  "PlanNotActive.status": PLAN_STATUSES,
  "InvalidSubscriptionStatus.status": SUBSCRIPTION_STATUSES,
  "NothingToWriteOff.status": SUBSCRIPTION_STATUSES,
  "AlreadySubscribed.status": SUBSCRIPTION_STATUSES,
};

/** `InvalidStatusTransition(from Retired, to Active)`: a custom error with its arguments by name. */
export function describeRevert(iface: Interface, data: string): string {
  const parsed = (() => {
    try {
      return iface.parseError(data);
    } catch {
      return null;
    }
  })();
  if (parsed === null) return data === "0x" ? "a revert without a reason" : `an unknown error ${data.slice(0, 10)}`;
  const args = parsed.fragment.inputs.map((input, i) => {
    const value = parsed.args[i] as unknown;
    const names = input.type !== "uint8" ? undefined : ENUM_ARGS[`${parsed.name}.${input.name}`];
    return `${input.name} ${names?.[Number(value)] ?? String(value)}`;
  });
  return `${parsed.name}(${args.join(", ")})`;
}

/** Sends through ctx.send (which simulates first); a revert in the simulation is refused with one line
 * naming the contract's error, and nothing is sent. */
async function sendOrRefuse(ctx: Context, iface: Interface, to: string, data: string, what: string, option: string): Promise<Receipt | null> {
  try {
    const receipt = await ctx.send(to, data, what);
    if (receipt.status !== 1) throw new KeeperError("TX_FAILED", `${what}: transaction ${receipt.transactionHash} reverted`);
    return receipt;
  } catch (error) {
    const revert = revertData(error);
    if (revert === null) throw error;
    ctx.err(`${option}: the chain refused ${what}: ${describeRevert(iface, revert)}; nothing sent`);
    return null;
  }
}

/** --dry-run: the call simulated from the signer, nothing signed. */
async function simulate(ctx: Context, iface: Interface, from: string, to: string, data: string, what: string, option: string): Promise<boolean> {
  try {
    await ctx.rpc.estimateGas({ from, to, data });
    return true;
  } catch (error) {
    const revert = revertData(error);
    if (revert === null) throw error;
    ctx.err(`${option}: the chain would refuse ${what}: ${describeRevert(iface, revert)}`);
    return false;
  }
}

function addressListValue(name: string, raw: unknown): string[] {
  if (raw === undefined) return [];
  return String(raw).split(",").map((e) => e.trim()).filter((e) => e !== "").map((e) => nonZeroAddress(name, e, "comma-separated 0x-prefixed 20-byte addresses"));
}

const symbolOf = (ctx: Context, token: string): string => [...ctx.config.tokens].find(([, a]) => a === token)?.[0] ?? "";

// --- recur plan create ------------------------------------------------------------------------------

/** A plan's terms as its views report them now, in both units. */
async function readPlan(ctx: Context, plan: string): Promise<Record<string, unknown>> {
  const mode = Number((await view(ctx, fixedPlanInterface, plan, "billingMode"))[0] as bigint);
  const iface = mode === BILLING_METERED ? meteredPlanOwnerInterface : fixedPlanInterface;
  const one = async (name: string) => (await view(ctx, iface, plan, name))[0] as unknown;
  const token = String(await one("token")).toLowerCase();
  const decimals = (await decimalsOf(ctx, token)) ?? 0;
  const amount = (base: bigint, d = decimals) => ({ units: tokenUnits(base, d), base: base.toString() });
  const out: Record<string, unknown> = {
    owner: String(await one("owner")).toLowerCase(),
    token, symbol: symbolOf(ctx, token) || null, decimals,
    payee: String(await one("payee")).toLowerCase(),
    billingMode: BILLING_MODES[mode] ?? `Unknown(${mode})`,
    status: PLAN_STATUSES[Number(await one("status"))] ?? "Unknown",
    period: Number(await one("period")),
    gracePeriod: Number(await one("gracePeriod")),
  };
  if (mode === BILLING_FIXED) {
    const [feed, maxPriceAge, buffer] = await view(ctx, iface, plan, "usdPricing");
    const usd = String(feed).toLowerCase() !== ZeroAddress;
    out.price = amount((await one("price")) as bigint, usd ? USD_DECIMALS : decimals);
    out.priceIn = usd ? "USD" : "token";
    out.trialPeriod = Number(await one("trialPeriod"));
    out.keeperRestricted = Boolean(await one("keeperRestricted"));
    out.keeperFeeBps = Number(await one("keeperFeeBps"));
    if (usd) Object.assign(out, { priceFeed: String(feed).toLowerCase(), maxPriceAge: Number(maxPriceAge), allowanceBufferBps: Number(buffer) });
  } else {
    out.perCycleCap = amount((await one("perCycleCap")) as bigint);
    out.freeCredits = amount((await one("freeCredits")) as bigint);
  }
  return out;
}

function planLines(p: Record<string, unknown>): string[] {
  const amount = (a: unknown) => (a as { units: string }).units;
  const unit = String(p.symbol ?? "token units");
  const lines = [
    `  owner     ${String(p.owner)}`,
    `  token     ${String(p.token)}${p.symbol === null ? "" : ` (${String(p.symbol)}, ${String(p.decimals)} decimals)`}`,
    `  payee     ${String(p.payee)}`,
    `  billing   ${String(p.billingMode)}, status ${String(p.status)}`,
  ];
  if (p.billingMode === "Fixed") lines.push(`  price     ${amount(p.price)} ${p.priceIn === "USD" ? "USD" : unit} per ${formatDuration(Number(p.period))}`);
  else lines.push(`  cycle     ${formatDuration(Number(p.period))}, at most ${amount(p.perCycleCap)} ${unit} per cycle, ${amount(p.freeCredits)} ${unit} free credits`);
  if (p.billingMode === "Fixed") lines.push(`  trial     ${Number(p.trialPeriod) === 0 ? "none" : formatDuration(Number(p.trialPeriod))}`);
  lines.push(`  grace     ${formatDuration(Number(p.gracePeriod))}`);
  if (p.priceFeed !== undefined) lines.push(`  feed      ${String(p.priceFeed)}, answers at most ${formatDuration(Number(p.maxPriceAge))} old, allowance buffer ${formatBps(Number(p.allowanceBufferBps))}`);
  if (p.billingMode === "Fixed") lines.push(`  keepers   fee ${formatBps(Number(p.keeperFeeBps))}, ${p.keeperRestricted === true ? "restricted to the owner and its keepers" : "anyone may charge"}`);
  return lines;
}

/** The placeholder of each term's value in --help. */
const TERM_VALUE: Partial<Record<TermName, string>> = {
  token: "T", payee: "ADDRESS", price: "AMOUNT", period: "DURATION", trial: "DURATION", grace: "DURATION", "price-usd": "USD",
  feed: "ADDRESS", "max-price-age": "DURATION", "allowance-buffer": "PERCENT", cap: "AMOUNT", "free-credits": "AMOUNT", "keeper-fee": "PERCENT",
};

const TERM_HELP: Record<TermName, string> = {
  token: "the ERC-20 charged: an address, or a symbol of RECUR_TOKENS (\"USDC=0x…\")",
  payee: "where charges are paid, default the signer",
  price: "price per period in token units (9.99), read with the token's decimals()",
  period: "billing period (fixed) or usage cycle (metered), 1h to 3660d: 90s, 10m, 6h, 30d",
  trial: "free trial before the first charge, 0 to 366d (fixed plans)",
  grace: "how long a due payment may still be collected, 15m to the period less 1s",
  "price-usd": "price per period in USD (up to 8 decimals), converted at each charge by --feed",
  feed: "Chainlink-style USD feed of the token (with --price-usd)",
  "max-price-age": "oldest feed answer a charge may use, 1m to 7d (with --price-usd)",
  "allowance-buffer": "margin for price moves, 0% to 50%, e.g. 10% (with --price-usd)",
  metered: "usage billed after each cycle by the owner or reporters (recur usage)",
  cap: "metered: the most one cycle may bill, in token units",
  "free-credits": "metered: usage granted free to each new subscriber, in token units",
  "keeper-fee": "share of each charge paid to whoever calls charge, 0% to 10% in 0.01% steps",
  "keeper-restricted": "only the owner and its keepers (recur plan keepers) may charge",
};

const create: Command = {
  spec: {
    name: "plan create",
    options: { ...TERM_OPTIONS, file: { type: "string" } },
    factory: "required",
    signer: "create a plan (the signer becomes its owner)",
    csv: false,
  },
  summary: "create a plan through the factory, owned by the signer, and print its checkout link",
  synopsis: "recur plan create --token T (--price P | --price-usd P --feed F --max-price-age D | --metered --cap C) --period D --grace D [options]",
  help: [
    ...Object.entries(TERM_HELP).map(([name, text]) => ({ flag: `--${name}${TERM_VALUE[name as TermName] === undefined ? "" : ` ${TERM_VALUE[name as TermName]!}`}`, text })),
    { flag: "--file FILE", text: "the terms as JSON, keyed by these flags' names without \"--\" ({\"token\": \"USDC\", \"price-usd\": \"9.99\", \"metered\": false}); flags override it" },
    { flag: "--dry-run", text: "check the terms and simulate createPlan; send nothing" },
    { flag: "exit codes", text: "0 created; 1 a bad term or not confirmed (nothing sent); 2 a failure while sending; 3 another chain" },
  ],
  examples: [
    "recur plan create --token USDC --price 9.99 --period 30d --trial 7d --grace 3d",
    "recur plan create --token USDC --price-usd 9.99 --feed 0x… --max-price-age 1h --allowance-buffer 10% --period 30d --grace 3d",
    "recur plan create --token USDC --metered --cap 50 --free-credits 5 --period 30d --grace 3d --yes --json",
    "recur plan create --file terms.json --payee 0x…",
  ],
  async run(ctx) {
    const flags: TermsInput = {};
    for (const name of Object.keys(TERM_OPTIONS) as TermName[]) {
      const value = ctx.values[name];
      if (typeof value === "string" || typeof value === "boolean") flags[name] = value;
    }
    const file = ctx.values.file;
    let fileText: string | null = null;
    if (typeof file === "string") {
      try {
        fileText = readFileSync(file, "utf8");
      } catch {
        throw configError("--file", "a readable JSON file of terms", file);
      }
    }
    const input = mergeTermsInput(typeof file === "string" ? file : null, fileText, flags);
    // Everything that needs no chain is checked first: a bad token or feed address stops here.
    const { token, feed } = resolveTermsAddresses(input, ctx.config.tokens);
    const signer = (await ctx.wallet()).address.toLowerCase();
    const tokenDecimals = await decimalsOf(ctx, token);
    const feedDecimals = feed === null || input["price-usd"] === undefined ? null : await decimalsOf(ctx, feed);
    const terms: PlanTerms = buildTerms(input, { signer, tokenDecimals, feedDecimals }, ctx.config.tokens);
    const factory = ctx.config.factory!;
    const described = describeTerms(terms, tokenDecimals ?? 0, symbolOf(ctx, token));
    const width = Math.max(...Object.keys(described).map((k) => k.length));
    const data = planFactoryInterface.encodeFunctionData("createPlan", [terms]);
    const lines = [
      `Create a plan through the factory ${factory}, owned by the signer ${signer}:`,
      ...Object.entries(described).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    ];
    if (ctx.config.dryRun) {
      for (const line of lines) ctx.io.stderr.write(`${line}\n`);
      if (!(await simulate(ctx, planFactoryInterface, signer, factory, data, "createPlan", "terms"))) return 1;
      ctx.print({ json: { dryRun: true, factory, signer, terms }, head: ["dry run: createPlan would succeed; nothing sent"] });
      return 0;
    }
    if (!(await ctx.confirm(lines))) return 1;
    const receipt = await sendOrRefuse(ctx, planFactoryInterface, factory, data, "createPlan", "terms");
    if (receipt === null) return 1;
    let plan: string | undefined;
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== factory) continue;
      const parsed = planFactoryInterface.parseLog(log);
      if (parsed?.name === "PlanCreated") plan = String(parsed.args.plan).toLowerCase();
    }
    if (plan === undefined) throw new KeeperError("TX_FAILED", `createPlan: no PlanCreated event in ${receipt.transactionHash}`);
    const isPlan = (await view(ctx, planFactoryInterface, factory, "isPlan", [plan]))[0] as boolean;
    const onChain = await readPlan(ctx, plan);
    const checkout = `${ctx.config.checkoutUrl}?plan=${getAddress(plan)}`;
    ctx.print({
      json: { plan, factory, isPlan, transaction: receipt.transactionHash, block: receipt.blockNumber, checkout, terms: onChain },
      head: [`Created plan ${plan} (transaction ${receipt.transactionHash}, block ${receipt.blockNumber}):`, ...planLines(onChain), `checkout: ${checkout}`],
    });
    return 0;
  },
};

// --- the owner's actions ------------------------------------------------------------------------

type Kind = "any" | "fixed" | "metered";

interface Call {
  fn: string;
  args: unknown[];
  /** One line for the confirmation and the log ("set the status to OnHold"). */
  what: string;
}

interface ActionSpec {
  name: string;
  summary: string;
  kind: Kind;
  options: Record<string, { type: "string" | "boolean" }>;
  help: { flag: string; text: string }[];
  example: string;
  /** The calls to send; may read the plan first to leave out what is already so. */
  calls(ctx: Context, plan: string, iface: Interface): Promise<{ calls: Call[]; unchanged: string[] }>;
  /** What the plan holds afterwards, for the report. */
  after(ctx: Context, plan: string, iface: Interface): Promise<Record<string, unknown>>;
}

const PLAN_OPTION = { flag: "--plan ADDRESS", text: "the plan (owned by the signer)" };

function ownerAction(spec: ActionSpec): Command {
  return {
    spec: { name: `plan ${spec.name}`, options: { plan: { type: "string" }, ...spec.options }, factory: "optional", signer: `${spec.summary} (as the plan's owner)`, csv: false },
    summary: spec.summary,
    synopsis: `recur plan ${spec.name} --plan ADDRESS ${spec.help.map((h) => h.flag).join(" ")} [--yes] [--dry-run] [--json]`.replace(/\s+/g, " "),
    help: [
      PLAN_OPTION,
      ...spec.help,
      { flag: "--dry-run", text: "check and simulate; send nothing" },
      { flag: "exit codes", text: "0 done; 1 bad input, not the owner, the wrong kind of plan, refused or not confirmed (nothing sent); 2 a failure while sending; 3 another chain" },
    ],
    examples: [spec.example],
    async run(ctx) {
      const plan = nonZeroAddress("--plan", ctx.values.plan, "the plan's 0x-prefixed 20-byte address");
      const signer = (await ctx.wallet()).address.toLowerCase();
      const code = await ctx.rpc.call<string>("eth_getCode", [plan, "latest"]);
      if (code === "0x") throw configError("--plan", "a plan contract", `${plan} (no code there)`);
      const factory = ctx.config.factory;
      if (factory !== null && !((await view(ctx, planFactoryInterface, factory, "isPlan", [plan]))[0] as boolean)) {
        throw configError("--plan", `a plan of the factory ${factory}`, plan);
      }
      let mode: number;
      let owner: string;
      try {
        mode = Number((await view(ctx, fixedPlanInterface, plan, "billingMode"))[0] as bigint);
        owner = String((await view(ctx, fixedPlanInterface, plan, "owner"))[0]).toLowerCase();
      } catch (error) {
        if (error instanceof RpcError || (error as { code?: string }).code === "BAD_DATA") throw configError("--plan", "a Recur plan (billingMode() and owner())", plan);
        throw error;
      }
      if (owner !== signer) {
        ctx.err(`--plan: ${plan} is owned by ${owner}, not by the signer ${signer}`);
        return 1;
      }
      const kindName = mode === BILLING_METERED ? "metered" : "fixed";
      if (spec.kind !== "any" && spec.kind !== kindName) {
        ctx.err(`--plan: ${plan} is a ${kindName} plan: plan ${spec.name} applies to ${spec.kind} plans only`);
        return 1;
      }
      const iface = mode === BILLING_METERED ? meteredPlanOwnerInterface : fixedPlanInterface;
      const { calls, unchanged } = await spec.calls(ctx, plan, iface);
      for (const line of unchanged) ctx.io.stderr.write(`${line}\n`);
      const sent: { what: string; transaction: string; block: bigint }[] = [];
      if (calls.length > 0) {
        const lines = [`On the plan ${plan}, as its owner ${signer}:`, ...calls.map((c) => `  ${c.what}`)];
        if (ctx.config.dryRun) {
          for (const line of lines) ctx.io.stderr.write(`${line}\n`);
          for (const c of calls) if (!(await simulate(ctx, iface, signer, plan, iface.encodeFunctionData(c.fn, c.args), c.fn, "--plan"))) return 1;
          ctx.print({ json: { dryRun: true, plan, calls: calls.map((c) => c.what) }, head: [`dry run: ${calls.length} call(s) would succeed; nothing sent`] });
          return 0;
        }
        if (!(await ctx.confirm(lines))) return 1;
        for (const c of calls) {
          const receipt = await sendOrRefuse(ctx, iface, plan, iface.encodeFunctionData(c.fn, c.args), c.fn, "--plan");
          if (receipt === null) return sent.length === 0 ? 1 : 2;
          sent.push({ what: c.what, transaction: receipt.transactionHash, block: receipt.blockNumber });
        }
      }
      const state = await spec.after(ctx, plan, iface);
      ctx.print({
        json: { plan, action: spec.name, sent, unchanged, ...state },
        head: [
          ...sent.map((s) => `${s.what}: done (transaction ${s.transaction}, block ${s.block})`),
          ...(sent.length === 0 ? ["nothing to send"] : []),
          ...Object.entries(state).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") || "(none)" : String(v)}`),
        ],
      });
      return 0;
    },
  };
}

const statusAfter = async (ctx: Context, plan: string, iface: Interface) => ({ status: PLAN_STATUSES[Number((await view(ctx, iface, plan, "status"))[0])] ?? "Unknown" });

function statusAction(name: string, code: number, summary: string): Command {
  return ownerAction({
    name, summary, kind: "any", options: {}, help: [], example: `recur plan ${name} --plan 0x…`,
    async calls() {
      return { calls: [{ fn: "setStatus", args: [code], what: `set the status to ${PLAN_STATUSES[code]!}` }], unchanged: [] };
    },
    after: statusAfter,
  });
}

/** keepers / reporters: --add and --remove lists; addresses already so are left out. */
function roleAction(name: "keepers" | "reporters", kind: Kind, setter: string, getter: string, role: string): Command {
  return ownerAction({
    name, summary: `authorize or revoke a ${kind} plan's ${name} (${setter})`, kind,
    options: { add: { type: "string" }, remove: { type: "string" } },
    help: [
      { flag: "--add A,B", text: `addresses to authorize as ${name}` },
      { flag: "--remove A,B", text: `addresses to revoke` },
    ],
    example: `recur plan ${name} --plan 0x… --add 0x…,0x… --remove 0x…`,
    async calls(ctx, plan, iface) {
      const add = addressListValue("--add", ctx.values.add);
      const remove = addressListValue("--remove", ctx.values.remove);
      if (add.length === 0 && remove.length === 0) throw configError("--add", `addresses to authorize (or --remove: to revoke) as ${name}`, undefined);
      const both = add.find((a) => remove.includes(a));
      if (both !== undefined) throw configError("--remove", "addresses not also in --add", both);
      const calls: Call[] = [];
      const unchanged: string[] = [];
      for (const [list, authorized] of [[add, true], [remove, false]] as const) {
        for (const account of list) {
          const now = (await view(ctx, iface, plan, getter, [account]))[0] as boolean;
          if (now === authorized) unchanged.push(`${account} is already ${authorized ? "" : "not "}a ${role}`);
          else calls.push({ fn: setter, args: [account, authorized], what: `${authorized ? "authorize" : "revoke"} ${role} ${account}` });
        }
      }
      return { calls, unchanged };
    },
    async after(ctx, plan, iface) {
      const listed = [...addressListValue("--add", ctx.values.add), ...addressListValue("--remove", ctx.values.remove)];
      const authorized: string[] = [];
      for (const account of listed) if ((await view(ctx, iface, plan, getter, [account]))[0] as boolean) authorized.push(account);
      return { [`${name}Authorized`]: authorized };
    },
  });
}

function subscriberAction(name: string, kind: Kind, summary: string, call: (subscriber: string) => Call): Command {
  return ownerAction({
    name, summary, kind,
    options: { subscriber: { type: "string" } },
    help: [{ flag: "--subscriber ADDRESS", text: "the subscriber" }],
    example: `recur plan ${name} --plan 0x… --subscriber 0x…`,
    async calls(ctx) {
      return { calls: [call(nonZeroAddress("--subscriber", ctx.values.subscriber, "the subscriber's 0x-prefixed 20-byte address"))], unchanged: [] };
    },
    async after(ctx, plan, iface) {
      const subscriber = nonZeroAddress("--subscriber", ctx.values.subscriber, "the subscriber's address");
      return { subscriber, blocked: (await view(ctx, iface, plan, "isBlocked", [subscriber]))[0] as boolean };
    },
  });
}

export const PLAN_COMMANDS: Command[] = [
  create,
  statusAction("hold", 1, "put a plan on hold: no new subscriptions, existing ones billed as normal"),
  statusAction("activate", 0, "reopen a plan on hold to new subscriptions"),
  statusAction("retire", 2, "retire a plan for good: no new subscriptions and no further charges"),
  ownerAction({
    name: "payee", summary: "change where a plan's charges are paid (setPayee)", kind: "any",
    options: { to: { type: "string" } },
    help: [{ flag: "--to ADDRESS", text: "the new payee" }],
    example: "recur plan payee --plan 0x… --to 0x…",
    async calls(ctx, plan, iface) {
      const to = nonZeroAddress("--to", ctx.values.to, "the new payee's 0x-prefixed 20-byte address");
      const now = String((await view(ctx, iface, plan, "payee"))[0]).toLowerCase();
      if (now === to) return { calls: [], unchanged: [`${to} is already the payee`] };
      return { calls: [{ fn: "setPayee", args: [to], what: `pay charges to ${to} (was ${now})` }], unchanged: [] };
    },
    async after(ctx, plan, iface) {
      return { payee: String((await view(ctx, iface, plan, "payee"))[0]).toLowerCase() };
    },
  }),
  roleAction("keepers", "fixed", "setKeeper", "isKeeper", "keeper"),
  roleAction("reporters", "metered", "setReporter", "isReporter", "reporter"),
  subscriberAction("block", "any", "block a subscriber from signing up or resuming (setBlocked; cancel-subscriber ends a live subscription)", (s) => ({ fn: "setBlocked", args: [s, true], what: `block ${s}` })),
  subscriberAction("unblock", "any", "lift a subscriber's block (setBlocked)", (s) => ({ fn: "setBlocked", args: [s, false], what: `unblock ${s}` })),
  subscriberAction("cancel-subscriber", "any", "cancel a subscriber's subscription as the owner (cancelFor)", (s) => ({ fn: "cancelFor", args: [s], what: `cancel the subscription of ${s}` })),
  subscriberAction("write-off", "metered", "write off the unbilled cycle an ended metered subscription left (writeOff)", (s) => ({ fn: "writeOff", args: [s], what: `write off the unbilled cycle of ${s}` })),
];

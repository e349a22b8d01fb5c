// The self-service page: for one plan (?plan=0x…) or every plan of the factory the wallet subscribes to,
// the subscription as the chain holds it (status, access, next payment, how many payments the approval and
// the balance cover, the chain's own prediction, history with a CSV), and the customer's actions, each
// with its consequence stated before the wallet is asked. After each action the page reads the chain again.
import { formatUnits, parseUnits, MaxUint256 } from "./vendor/ethers.js";

import { createClient, loadConfig, planInterface, erc20Interface } from "./lib/client.js";
import { explain, reasonSentence, RecurError } from "./lib/errors.js";
import * as fmt from "./lib/format.js";
import { el, facts } from "./lib/format.js";
import { parseManageLink } from "./lib/link.js";
import { messageLine, notice, runAction, show, startWallet, walletPrompt } from "./lib/page.js";

const STATUS = {
  None: "No subscription",
  Trialing: "Free trial",
  Active: "Active",
  PastDue: "Payment overdue",
  Paused: "Paused",
  Cancelled: "Cancelled",
  Expired: "Ended (a payment was missed)",
};

async function start() {
  show(el("p", { class: "loading" }, "Reading your subscriptions from the chain…"));
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    return show(notice("error", "This page isn't set up", explain(error)));
  }
  const link = parseManageLink(location.search);
  if (link.error) return show(notice("error", "This link doesn't work", link.error));
  const client = createClient(config);
  const wallet = await startWallet(config);
  const state = { config, client, link, wallet };
  await render(state);
}

async function render(state) {
  const { client, wallet, link, config } = state;
  const head = el("h1", {}, "Your subscriptions");
  const prompt = walletPrompt(wallet, config, () => render(state));
  if (prompt !== null) return show(head, prompt);
  let addresses;
  if (link.plan !== null) addresses = [link.plan];
  else addresses = await client.plansOf(wallet.account);
  const cards = [];
  for (const address of addresses) {
    const plan = await client.readPlan(address, 1n);
    if (!plan.isPlan) {
      cards.push(notice("error", "This isn't a plan of this site", `${address} was not created by this site's plan factory: there is nothing to manage here.`));
      continue;
    }
    const customer = await client.readCustomer(plan, wallet.account);
    const events = await client.history(plan, wallet.account);
    cards.push(planCard(state, plan, customer, events));
  }
  if (cards.length === 0) cards.push(notice("info", "No subscriptions", `The address ${wallet.account} has no subscription to any plan of this site.`));
  show(head, el("p", { class: "who" }, "Wallet: ", el("code", { class: "address" }, wallet.account)), ...cards);
}

function priceText(plan) {
  const t = plan.token;
  if (plan.metered) return `usage, billed after each ${fmt.duration(plan.period)}, at most ${fmt.amount(plan.cap, t)} per cycle`;
  if (plan.usdPriced) return `${fmt.usd(plan.price)} ${fmt.every(plan.period)} in ${t.symbol} (today ${fmt.amount(plan.amountNow, t)})`;
  return `${fmt.amount(plan.price, t)} ${fmt.every(plan.period)}`;
}

/** "will succeed", or "will fail on 12 March: approve more". */
function predictionText(plan, customer) {
  const p = customer.prediction;
  if (["None", "Cancelled", "Expired"].includes(customer.status) || plan.status === "Retired") return null;
  if (customer.status === "Paused") return "Nothing will be charged while paused.";
  if (plan.metered) {
    return customer.prediction.reason === "NotDue" || customer.prediction.ok ? `The usage of this cycle is billed after ${fmt.day(customer.sub.nextChargeAt)}, up to ${fmt.amount(customer.billingLimit, plan.token)} after credits.` : reasonSentence(p.reason, plan.token);
  }
  const when = fmt.day(customer.sub.nextChargeAt);
  if (p.ok) return `The overdue payment can be taken now, and will go through.`;
  if (p.reason === "NotDue") return `The next payment, on ${when}, will go through.`;
  return `The next payment, on ${when}, will fail: ${reasonSentence(p.reason, plan.token).replace(/^[A-Z]/, (c) => c.toLowerCase())}`;
}

function covers(amount, held) {
  if (amount === 0n) return null;
  if (held >= MaxUint256 / 2n) return "unlimited";
  const n = held / amount;
  return `${n} payment${n === 1n ? "" : "s"}`;
}

function planCard(state, plan, customer, events) {
  const t = plan.token;
  const status = customer.status;
  const live = ["Trialing", "Active", "PastDue", "Paused"].includes(status);
  const perCharge = plan.metered ? customer.billingLimit : customer.amountDue > 0n ? customer.amountDue : plan.amountNow;
  const rows = [
    ["Plan", priceText(plan)],
    ["Status", STATUS[status] ?? status],
  ];
  if (plan.status !== "Active") rows.push(["Plan status", plan.status === "OnHold" ? "on hold: the merchant takes no new subscribers, yours goes on as normal" : "retired by the merchant: nothing more is charged"]);
  const accessUntil = customer.sub.nextChargeAt;
  if (customer.hasAccess && !plan.metered) rows.push(["Access until", fmt.date(accessUntil)]);
  if (status === "Cancelled" && !customer.hasAccess) rows.push(["Access", `ended ${fmt.date(accessUntil)}`]);
  if (live && !plan.metered && status !== "Paused") rows.push(["Next payment", `${fmt.amount(customer.amountDue, t)} on ${fmt.date(customer.nextChargeAt)}`]);
  if (status === "PastDue") rows.push(["Pay by", `${fmt.date(customer.sub.nextChargeAt + plan.grace)}, or the subscription ends`]);
  if (status === "Paused") rows.push(["Paused since", fmt.date(customer.sub.pausedAt)]);
  const prediction = predictionText(plan, customer);
  if (prediction !== null) rows.push(["What the chain predicts", el("span", { class: customer.prediction.ok || customer.prediction.reason === "NotDue" || status === "Paused" ? "good" : "bad", "data-prediction": customer.prediction.reason }, prediction)]);
  rows.push(["Most per payment (yours)", fmt.amount(customer.sub.maxAmount, t)]);
  if (live) {
    rows.push(["Your approval covers", covers(perCharge, customer.allowance) ?? "-"]);
    rows.push(["Your balance covers", covers(perCharge, customer.balance) ?? "-"]);
  }
  rows.push(["Approval left", customer.allowance >= MaxUint256 / 2n ? "unlimited" : fmt.amount(customer.allowance, t)]);
  rows.push(["Balance", fmt.amount(customer.balance, t)]);
  if (plan.metered) {
    rows.push(["Cycles billed", String(customer.sub.periodsPaid)]);
    rows.push(["Free credits left", fmt.amount(customer.credits, t)]);
    rows.push(["Most per cycle (the plan's cap)", fmt.amount(plan.cap, t)]);
  }
  const card = el("section", { class: "card subscription", "data-plan": plan.address, "data-status": status },
    el("h2", {}, STATUS[status] ?? status, " · ", el("code", { class: "address" }, fmt.short(plan.address))),
    facts(rows),
    actions(state, plan, customer),
    historySection(state, plan, events),
  );
  return card;
}

/** One action: its consequence, its button, and the line where progress and errors show. */
function action(state, plan, { id, label, consequence, run, input = null, kind = "" }) {
  const line = messageLine();
  const button = el("button", { type: "button", id, class: kind }, label);
  button.addEventListener("click", async () => {
    const ok = await runAction(button, line, async (say) => {
      say("Checking your wallet's network…");
      await state.wallet.ensureChain();
      say("Confirm in your wallet.");
      const tx = await run();
      await state.client.send(state.wallet, tx);
      say("Done. Reading the chain again…");
    }, { chainId: state.config.chainId, token: plan.token });
    if (ok) await render(state);
  });
  return el("div", { class: "action", "data-action": id }, el("p", { class: "consequence" }, consequence), ...(input ? [input] : []), button, line);
}

function actions(state, plan, customer) {
  const t = plan.token;
  const status = customer.status;
  const list = [];
  const data = (fn, args = []) => ({ to: plan.address, data: planInterface.encodeFunctionData(fn, args) });
  if (["Trialing", "Active", "PastDue", "Paused"].includes(status)) {
    const until = plan.metered ? "The cycle running now can still be billed for its usage; nothing after it." : status === "PastDue" ? "The overdue payment will not be taken, and access ends now." : `You keep access until ${fmt.date(customer.sub.nextChargeAt)}; nothing more is ever taken.`;
    list.push(action(state, plan, { id: "cancel", label: "Cancel subscription", kind: "danger", consequence: `Cancel: ${until} You can subscribe again later.`, run: () => data("cancel") }));
  }
  if (status === "Trialing" || status === "Active") {
    list.push(action(state, plan, { id: "pause", label: "Pause", consequence: "Pause: nothing is charged while paused, and the unused part of the time you paid for is kept for when you resume (you have no access meanwhile).", run: () => data("pause") }));
  }
  if (status === "Paused") {
    list.push(action(state, plan, { id: "resume", label: "Resume", consequence: "Resume: the schedule moves on by the time you were paused; the next payment is then due when your kept time runs out.", run: () => data("resume") }));
  }
  if (["Trialing", "Active", "PastDue", "Paused"].includes(status)) {
    const max = el("input", { id: "max-amount", type: "text", inputmode: "decimal", value: formatUnits(customer.sub.maxAmount, t.decimals), "aria-label": `Most per payment, in ${t.symbol}` });
    list.push(action(state, plan, {
      id: "set-max", label: "Change maximum", input: el("label", { for: "max-amount" }, `Most per payment (${t.symbol}) `, max),
      consequence: `Change the most one payment may take. Below ${plan.metered ? "a cycle's usage after credits" : "the price"}, payments fail until you raise it again.`,
      run: () => data("setMaxAmount", [amountInput(max.value, t)]),
    }));
    const periods = el("input", { id: "approve-periods", type: "number", min: "1", max: "120", value: "12", "aria-label": "Number of payments" });
    list.push(action(state, plan, {
      id: "approve", label: "Approve", input: el("label", { for: "approve-periods" }, "Payments to cover ", periods),
      consequence: `Approve more: set this plan's approval to cover that many payments (at most ${fmt.amount(plan.metered ? plan.cap : plan.maxPerCharge, t)} each). Your ${t.symbol} stay in your wallet.`,
      run: () => approveFor(state, plan, periods.value),
    }));
  }
  if (status === "None") {
    list.push(el("div", { class: "action", "data-action": "subscribe" }, el("p", { class: "consequence" }, "You don't subscribe to this plan. Subscribing shows every term before your wallet asks for anything."), el("a", { class: "button", id: "subscribe-link", href: `checkout.html?plan=${plan.address}` }, "See the plan and subscribe")));
    return el("div", { class: "actions" }, el("h3", {}, "What you can do"), ...list);
  }
  if (status === "Cancelled" || status === "Expired") {
    list.push(el("div", { class: "action", "data-action": "resubscribe" }, el("p", { class: "consequence" }, status === "Cancelled" && customer.hasAccess ? "Subscribe again: your subscription restarts on its old schedule, with nothing charged until the paid time runs out." : "Subscribe again: a fresh subscription starts (no second free trial)."), el("a", { class: "button", id: "resubscribe", href: `checkout.html?plan=${plan.address}` }, "Subscribe again")));
  }
  list.push(action(state, plan, { id: "revoke", label: "Void signatures", consequence: "Void sign-up signatures: any sign-up you signed for this plan and nobody has submitted yet stops working. Your subscription is not touched.", run: () => data("revokeAuthorizations") }));
  return el("div", { class: "actions" }, el("h3", {}, "What you can do"), ...list);
}

function amountInput(raw, token) {
  const text = String(raw).trim();
  if (!/^\d{1,30}(\.\d{1,30})?$/.test(text)) throw new RecurError("input", `Write the maximum as a number of ${token.symbol}, like 12.50.`);
  try {
    return parseUnits(text, token.decimals);
  } catch {
    throw new RecurError("input", `${token.symbol} has ${token.decimals} decimals: write the maximum with at most that many.`);
  }
}

/** The approval for `raw` more payments: the plan's requiredAllowance, read when the button is pressed. */
async function approveFor(state, plan, raw) {
  if (!/^\d{1,3}$/.test(String(raw)) || Number(raw) < 1 || Number(raw) > 120) throw new RecurError("input", "Write the number of payments as a whole number from 1 to 120.");
  const allowance = await state.client.requiredAllowance(plan.address, BigInt(raw));
  return { to: plan.token.address, data: erc20Interface.encodeFunctionData("approve", [plan.address, allowance]) };
}

function historySection(state, plan, events) {
  const t = plan.token;
  const payments = events.filter((e) => e.name === "Charged" || e.name === "UsageCharged" || e.name === "ChargeFailed");
  const rows = events.map((e) => ({ when: fmt.date(e.time), iso: new Date(Number(e.time) * 1000).toISOString(), what: eventWords(e, t), amount: eventAmount(e), tx: e.tx }));
  const table = el("table", { class: "history" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "When"), el("th", { scope: "col" }, "What"), el("th", { scope: "col" }, "Transaction"))),
    el("tbody", {}, rows.map((r) => el("tr", {}, el("td", {}, r.when), el("td", {}, r.what), el("td", {}, fmt.txLink(state.config, r.tx))))),
  );
  const download = el("button", { type: "button", id: "csv", class: "link" }, "Download as CSV");
  download.addEventListener("click", () => {
    const lines = ["time,event,amount_base_units,token,transaction", ...events.map((e) => [new Date(Number(e.time) * 1000).toISOString(), e.name, eventAmount(e) ?? "", t.address, e.tx].join(","))];
    const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    const a = el("a", { href: URL.createObjectURL(blob), download: `recur-${plan.address.slice(0, 10)}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
  });
  return el("details", { class: "history-box", open: true }, el("summary", {}, `History (${payments.length} payment${payments.length === 1 ? "" : "s"})`), rows.length > 0 ? table : el("p", {}, "Nothing yet."), download);
}

function eventAmount(e) {
  if (e.name === "Charged") return e.args.amount.toString();
  if (e.name === "UsageCharged") return e.args.pulled.toString();
  return null;
}

function eventWords(e, t) {
  const a = e.args;
  switch (e.name) {
    case "Subscribed": return a.trial ? "Subscribed, free trial started" : "Subscribed";
    case "Charged": return `Paid ${fmt.amount(a.amount, t)} (payment ${Number(a.periodIndex) + 1})`;
    case "ChargeFailed": return "A payment attempt failed";
    case "UsageCharged": return `Usage of ${fmt.amount(a.usage, t)} billed: ${fmt.amount(a.fromCredits, t)} from free credits, ${fmt.amount(a.pulled, t)} paid`;
    case "Cancelled": return "Cancelled";
    case "Paused": return "Paused";
    case "Resumed": return "Resumed";
    case "MaxAmountUpdated": return `Most per payment set to ${fmt.amount(a.newMaxAmount, t)}`;
    default: return e.name;
  }
}

start().catch((error) => show(notice("error", "Something went wrong", explain(error))));

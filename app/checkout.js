// The checkout link's page: reads the plan (refused unless the site's factory created it), shows every
// term and what the customer authorises before any prompt, then signs up through the cheapest path the
// token offers (permit: one signature + one transaction; else approve, then subscribe), with the
// merchant's ref; a receipt after, and the way back to the merchant's return URL.
import { MaxUint256 } from "./vendor/ethers.js";

import { createClient, loadConfig, planInterface, erc20Interface } from "./lib/client.js";
import { explain, RecurError } from "./lib/errors.js";
import * as fmt from "./lib/format.js";
import { el, facts } from "./lib/format.js";
import { parseCheckoutLink, returnWith } from "./lib/link.js";
import { messageLine, notice, runAction, show, startWallet, walletPrompt } from "./lib/page.js";

const LIVE = ["Trialing", "Active", "PastDue", "Paused"];

async function start() {
  show(el("p", { class: "loading" }, "Reading the plan from the chain…"));
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    return show(notice("error", "This page isn't set up", explain(error)));
  }
  const link = parseCheckoutLink(location.search);
  if (link.error) return show(notice("error", "This link doesn't work", link.error));
  const client = createClient(config);
  let plans;
  try {
    plans = await Promise.all(link.plans.map((address) => client.readPlan(address, link.periods)));
  } catch (error) {
    return show(notice("error", "The chain can't be read right now", `The plan couldn't be read (${String(error?.shortMessage ?? error?.message ?? error).slice(0, 120)}): reload the page in a moment.`));
  }
  const stranger = plans.find((p) => !p.isPlan);
  if (stranger) {
    return show(notice("error", "This isn't a plan of this site", `The link names ${stranger.address}, which this site's plan factory did not create. Don't pay through this link: ask the merchant for a new one.`));
  }
  if (plans.length > 1 && !sameOffer(plans)) {
    return show(notice("error", "This link doesn't work", "This checkout link is broken: it names plans that differ in more than the currency they are paid in. Ask the merchant for a new link."));
  }
  const wallet = await startWallet(config);
  const state = { config, client, link, plans, selected: 0, wallet, unlimited: false };
  await render(state);
}

/** Plans of one link must be one offer in several currencies: one owner, one billing rhythm. */
function sameOffer(plans) {
  const [first] = plans;
  return plans.every((p) => p.owner === first.owner && p.metered === first.metered && p.period === first.period && p.trial === first.trial && p.grace === first.grace && p.usdPriced === first.usdPriced && (!p.usdPriced || p.price === first.price));
}

async function render(state) {
  const plan = state.plans[state.selected];
  const parts = [el("h1", {}, "Subscribe"), merchantCard(plan)];
  if (state.plans.length > 1) parts.push(currencyPicker(state));
  parts.push(termsCard(plan));
  if (plan.status !== "Active") {
    parts.push(plan.status === "OnHold"
      ? notice("info", "This plan is on hold", "The merchant isn't taking new subscribers on this plan right now, so there is nothing to sign. Ask them when it reopens.")
      : notice("info", "This plan is closed", "The merchant has retired this plan: it takes no new subscribers and charges no one. Ask them for another plan."));
    return show(...parts);
  }
  if (plan.priceStale) {
    parts.push(notice("info", "The price can't be worked out right now", "This plan is priced in US dollars, and its price source is out of date, so today's amount in tokens isn't known. Try again later."));
    return show(...parts);
  }
  const prompt = walletPrompt(state.wallet, state.config, () => render(state));
  if (prompt !== null) return show(...parts, authorisationCard(plan, state, null), prompt);
  const customer = await state.client.readCustomer(plan, state.wallet.account);
  if (LIVE.includes(customer.status)) {
    parts.push(notice("info", "You already subscribe to this plan", `Your subscription is ${statusWords(customer.status)}, so there is nothing to sign here.`, el("p", {}, el("a", { href: `manage.html?plan=${plan.address}` }, "Open your subscription page"))));
    return show(...parts);
  }
  if (customer.blocked) {
    parts.push(notice("error", "You can't subscribe to this plan", "The merchant has blocked this address from this plan: contact them."));
    return show(...parts);
  }
  show(...parts, authorisationCard(plan, state, customer), signUpCard(plan, state, customer));
}

function statusWords(status) {
  return { Trialing: "in its free trial", Active: "active", PastDue: "waiting for an overdue payment", Paused: "paused" }[status] ?? status;
}

function merchantCard(plan) {
  return el("section", { class: "card", "data-state": "merchant" },
    facts([
      ["Merchant", el("code", { class: "address" }, plan.owner)],
      ["Payments go to", el("code", { class: "address" }, plan.payee)],
      ["Plan", el("code", { class: "address" }, plan.address)],
    ]),
  );
}

function currencyPicker(state) {
  const group = el("fieldset", { class: "card picker" }, el("legend", {}, "Pay in"));
  state.plans.forEach((p, i) => {
    const id = `currency-${i}`;
    const input = el("input", { type: "radio", name: "currency", id, value: p.token.symbol, checked: i === state.selected });
    input.addEventListener("change", () => {
      state.selected = i;
      render(state);
    });
    group.append(el("label", { for: id }, input, ` ${p.token.symbol}${p.token.known ? "" : " (a token this site doesn't list)"}`));
  });
  return group;
}

/** What is charged, how often, trial, grace, in words. */
function termsCard(plan) {
  const t = plan.token;
  const rows = [];
  if (plan.metered) {
    rows.push(["What you pay", `What you use, billed after each ${fmt.duration(plan.period)} (a cycle)`]);
    rows.push(["Most per cycle", fmt.amount(plan.cap, t)]);
    rows.push(["Free credits", plan.freeCredits > 0n ? `${fmt.amount(plan.freeCredits, t)} of usage free, used before anything is charged (first sign-up only)` : "none"]);
  } else if (plan.usdPriced) {
    rows.push(["Price", `${fmt.usd(plan.price)} ${fmt.every(plan.period)}, paid in ${t.symbol}`]);
    rows.push(["Today that is", `${fmt.amount(plan.amountNow, t)} (the amount follows the ${t.symbol} price at each payment)`]);
  } else {
    rows.push(["Price", `${fmt.amount(plan.price, t)} ${fmt.every(plan.period)}`]);
  }
  if (!plan.metered) rows.push(["Free trial", plan.trial > 0n ? `${fmt.duration(plan.trial)} (first time only)` : "none"]);
  rows.push(["If a payment fails", `it can still be taken for ${fmt.duration(plan.grace)}; after that the subscription ends and nothing more is taken`]);
  if (!t.known) rows.push(["Token", `${t.symbol} at ${t.address}: a token this site doesn't list, check it with the merchant`]);
  return el("section", { class: "card", "data-state": "terms" }, el("h2", {}, "The plan"), facts(rows));
}

/** What the customer authorises, their balance, and what they can do later. */
function authorisationCard(plan, state, customer) {
  const t = plan.token;
  const total = state.unlimited ? "an unlimited amount" : fmt.amount(plan.required, t);
  const rows = [
    ["You allow this plan to take", `up to ${total} in total${state.unlimited ? "" : `, enough for ${state.link.periods} ${plan.metered ? "cycles" : "payments"}`}. Your ${t.symbol} stay in your wallet until each payment.`],
    ["Each payment is at most", `${fmt.amount(plan.maxPerCharge, t)}${plan.usdPriced ? ` (today's amount plus a ${Number(plan.feed.bufferBps) / 100}% margin for price moves)` : ""}`],
    ["Today", today(plan, customer).text],
  ];
  if (customer !== null) rows.push(["Your balance", fmt.amount(customer.balance, t)]);
  rows.push(["Later", "You can cancel or pause at any time on your subscription page. After cancelling nothing more is taken, and you keep access until the end of the time paid for."]);
  const box = el("input", { type: "checkbox", id: "unlimited", checked: state.unlimited });
  box.addEventListener("change", () => {
    state.unlimited = box.checked;
    render(state);
  });
  return el("section", { class: "card", "data-state": "authorise" }, el("h2", {}, "What you authorise"), facts(rows),
    el("label", { class: "check", for: "unlimited" }, box, " Allow an unlimited amount instead (you won't need to approve again; not recommended)"));
}

/** Bit 1 of a subscription's flags: this address has used the plan's trial (PlanTypes.sol). */
const FLAG_TRIAL_USED = 2n;

/** What signing up takes today, for this customer (null: not connected, read as a first-time customer):
 * a metered plan nothing; a cancelled subscription with paid time left restarts on its old schedule,
 * nothing now; an unused trial nothing; otherwise the first period. */
function today(plan, customer) {
  const t = plan.token;
  if (plan.metered) return { amount: 0n, text: "Nothing: usage is billed after each cycle ends." };
  if (customer !== null && customer.status === "Cancelled" && customer.sub.nextChargeAt > customer.now) {
    return { amount: 0n, text: `Nothing: your cancelled subscription restarts on its old schedule, and the next payment, about ${fmt.amount(plan.amountNow, t)}, is due ${fmt.day(customer.sub.nextChargeAt)}.` };
  }
  const trialUsed = customer !== null && (BigInt(customer.sub.flags) & FLAG_TRIAL_USED) !== 0n;
  if (plan.trial > 0n && !trialUsed) return { amount: 0n, text: `Nothing: the first payment, about ${fmt.amount(plan.amountNow, t)}, is due ${fmt.day(plan.now + plan.trial)} when the trial ends.` };
  return { amount: plan.amountNow, text: `The first payment, ${fmt.amount(plan.amountNow, t)}, is taken when you sign up${plan.trial > 0n ? " (you have had this plan's free trial before)" : ""}.` };
}

function signUpCard(plan, state, customer) {
  const t = plan.token;
  const line = messageLine();
  const allowance = state.unlimited ? MaxUint256 : plan.required;
  const needsApproval = customer.allowance < allowance;
  const usePermit = needsApproval && plan.token.permitDomain !== null;
  const steps = !needsApproval ? "one transaction" : usePermit ? "one signature (the permission) and one transaction" : "two transactions: an approval, then the sign-up";
  const now = today(plan, customer);
  const button = el("button", { type: "button", class: "primary", id: "subscribe" }, now.amount === 0n ? "Subscribe" : `Subscribe and pay ${fmt.amount(now.amount, t)}`);
  const short = customer.balance < now.amount;
  const parts = [el("h2", {}, "Sign up"), el("p", {}, `Your wallet will ask for ${steps}. Each step shows in your wallet before anything happens.`)];
  if (short) {
    parts.push(el("p", { class: "message error", role: "alert", "data-state": "short" }, `Your balance (${fmt.amount(customer.balance, t)}) is less than the first payment (${fmt.amount(now.amount, t)}): add ${t.symbol} to your wallet, then reload this page.`));
    button.disabled = true;
  }
  button.addEventListener("click", () => runAction(button, line, (say) => signUp(plan, state, customer, allowance, usePermit, needsApproval, say), { chainId: state.config.chainId, token: t }));
  parts.push(button, line);
  return el("section", { class: "card", "data-state": "signup" }, ...parts);
}

async function signUp(plan, state, customer, allowance, usePermit, needsApproval, say) {
  const { client, wallet, link } = state;
  say("Checking your wallet's network…");
  await wallet.ensureChain();
  const ref = link.ref.value;
  // The chain may have moved since the page was drawn: the plan's status and the customer's are read
  // again before anything is asked (the simulation before each transaction catches the rest).
  const [now, fresh] = await Promise.all([client.readPlan(plan.address, link.periods), client.readCustomer(plan, wallet.account)]);
  if (now.status !== "Active") throw new RecurError("revert", null, null, { name: now.status === "OnHold" ? "PlanNotActive" : "PlanRetired", args: [] });
  if (LIVE.includes(fresh.status)) throw new RecurError("revert", null, null, { name: "AlreadySubscribed", args: [] });
  let receipt;
  if (usePermit) {
    say("Step 1 of 2: sign the permission in your wallet (it sends nothing and costs nothing).");
    const permit = await client.signPermit(wallet, plan.token, plan.address, allowance, fresh.now);
    say("Step 2 of 2: confirm the sign-up in your wallet.");
    const data = planInterface.encodeFunctionData("subscribeWithPermitAndRef", [plan.maxPerCharge, ref, allowance, permit.deadline, permit.v, permit.r, permit.s]);
    receipt = await client.send(wallet, { to: plan.address, data });
  } else {
    if (needsApproval) {
      say("Step 1 of 2: confirm the approval in your wallet.");
      await client.send(wallet, { to: plan.token.address, data: erc20Interface.encodeFunctionData("approve", [plan.address, allowance]) });
    }
    say(needsApproval ? "Step 2 of 2: confirm the sign-up in your wallet." : "Confirm the sign-up in your wallet.");
    receipt = await client.send(wallet, { to: plan.address, data: planInterface.encodeFunctionData("subscribeWithRef", [plan.maxPerCharge, ref]) });
  }
  say("");
  await showReceipt(plan, state, receipt);
}

/** The receipt, read again from the chain (never assumed from what was just sent). */
async function showReceipt(plan, state, receipt) {
  const { client, wallet, config, link } = state;
  const customer = await client.readCustomer(plan, wallet.account);
  if (!["Trialing", "Active"].includes(customer.status)) throw new RecurError("failed", "The sign-up went through but the subscription doesn't show as active: open your subscription page to see where it stands.", receipt.hash);
  const t = plan.token;
  const paid = receipt.logs.map((l) => { try { return planInterface.parseLog(l); } catch { return null; } }).find((e) => e?.name === "Charged");
  const rows = [
    ["Plan", el("code", { class: "address" }, plan.address)],
    ["Status", customer.status === "Trialing" ? "Free trial" : "Active"],
    ["Paid today", paid ? fmt.amount(paid.args.amount, t) : "nothing"],
    plan.metered ? ["Usage is billed", `after ${fmt.day(customer.sub.nextChargeAt)}`] : ["Next payment", `${fmt.amount(customer.amountDue, t)} on ${fmt.date(customer.nextChargeAt)}`],
    link.ref.text !== null ? ["Order reference", link.ref.text] : null,
    ["Transaction", fmt.txLink(config, receipt.hash)],
  ];
  const after = [el("p", {}, el("a", { href: `manage.html?plan=${plan.address}`, id: "manage-link" }, "Manage your subscription (cancel, pause, approve more)"))];
  let target = null;
  if (link.returnUrl !== null) {
    target = returnWith(link.returnUrl, wallet.account, plan.address, link.ref.text);
    after.push(el("p", { id: "returning" }, "Taking you back to the merchant… ", el("a", { href: target, id: "return-link" }, "Go back now")));
  }
  show(el("h1", {}, "You're subscribed"), el("section", { class: "card receipt", "data-state": "receipt" }, facts(rows), ...after));
  if (target !== null) setTimeout(() => location.assign(target), 2500);
}

start().catch((error) => show(notice("error", "Something went wrong", explain(error))));

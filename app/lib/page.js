// What both pages share on screen: the main area, notices, the busy/message line of an action, and the
// wallet start-up (discover, reuse an account already shared, start over when it changes).
import { discoverWallets, createWallet } from "./wallet.js";
import { explain } from "./errors.js";
import { el } from "./format.js";

export const main = () => document.querySelector("main");

/** Replaces the page's content. */
export function show(...nodes) {
  main().replaceChildren(...nodes);
  main().setAttribute("aria-busy", "false");
}

/** A page-sized notice: a heading, one sentence, and anything after. */
export function notice(kind, title, sentence, ...extra) {
  return el("section", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status", "data-state": kind }, el("h2", {}, title), el("p", { class: "sentence" }, sentence), ...extra);
}

/** The line under an action where progress and errors are written (aria-live for screen readers). */
export function messageLine() {
  return el("p", { class: "message", role: "status", "aria-live": "polite" });
}

/** Runs `action` with `button` disabled, writing progress to `line`; a failure is explained there in one
 * sentence. Returns whether it succeeded. */
export async function runAction(button, line, action, ctx) {
  const buttons = [...document.querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  line.className = "message";
  try {
    await action((text) => (line.textContent = text));
    return true;
  } catch (error) {
    line.className = "message error";
    line.textContent = explain(error, ctx);
    for (const b of buttons) b.disabled = false;
    button.focus();
    return false;
  }
}

/** The first wallet found (EIP-6963, else window.ethereum), with its already-shared account; any change
 * of account or network reloads the page, so it starts over from the chain. Null: no wallet. */
export async function startWallet(config) {
  const wallets = await discoverWallets();
  if (wallets.length === 0) return null;
  const wallet = createWallet(wallets[0], config.chainId, () => location.reload());
  try {
    await wallet.existing();
  } catch {
    wallet.account = null;
  }
  return wallet;
}

/** "No wallet" or "Connect" when there is no account yet; null when connected. */
export function walletPrompt(wallet, config, onConnected) {
  if (wallet === null) {
    return notice("info", "No wallet found", "This page needs a browser wallet (an extension or a wallet app's browser): install one, then reload this page.");
  }
  if (wallet.account !== null) return null;
  const line = messageLine();
  const button = el("button", { type: "button", class: "primary", id: "connect" }, `Connect ${wallet.name}`);
  button.addEventListener("click", () => runAction(button, line, async (say) => {
    say("Check your wallet: it asks to share an account with this page.");
    await wallet.connect();
    say("");
    await onConnected();
  }, { chainId: config.chainId }));
  return el("section", { class: "card", "data-state": "connect" }, el("h2", {}, "Your wallet"), el("p", {}, "Connect your wallet to see your balance and continue. Connecting shares your address only: nothing is sent."), button, line);
}

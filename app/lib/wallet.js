// The customer's wallet: injected wallets discovered through EIP-6963 (the first announced, or the one
// chosen), else window.ethereum; the account asked for only on a click; the network switched only when
// an action needs it; and a callback when the wallet's account or network changes, to start over.
import { RecurError } from "./errors.js";

/** Wallets announced through EIP-6963 within `waitMs`, else window.ethereum alone (if any). */
export function discoverWallets(waitMs = 150) {
  return new Promise((resolve) => {
    const found = [];
    const onAnnounce = (event) => {
      const detail = event.detail;
      if (detail?.provider && !found.some((w) => w.info?.uuid === detail.info?.uuid)) found.push({ info: detail.info ?? {}, provider: detail.provider });
    };
    window.addEventListener("eip6963:announceProvider", onAnnounce);
    window.dispatchEvent(new Event("eip6963:requestProvider"));
    setTimeout(() => {
      window.removeEventListener("eip6963:announceProvider", onAnnounce);
      if (found.length === 0 && window.ethereum) found.push({ info: { name: "Browser wallet", uuid: "window.ethereum" }, provider: window.ethereum });
      resolve(found);
    }, waitMs);
  });
}

/** One wallet as the pages use it. `onChange` runs once when its account or network changes (unless the
 * page itself asked for the change, mid-action). */
export function createWallet(entry, chainId, onChange) {
  const provider = entry.provider;
  // Set while the page itself asks for the switch, until the wallet reports the site's chain: that
  // chainChanged (before or after the request returns, as wallets differ) is the page's own, not a reason
  // to start over.
  let expecting = false;
  let changed = false;
  const wallet = {
    name: entry.info?.name ?? "wallet",
    account: null,
    async request(method, params = []) {
      return provider.request({ method, params });
    },
    /** The account already shared with this site, without a prompt (null if none). */
    async existing() {
      const accounts = await wallet.request("eth_accounts");
      wallet.account = accounts?.[0] ?? null;
      return wallet.account;
    },
    /** Asks the wallet for an account (a prompt). */
    async connect() {
      const accounts = await wallet.request("eth_requestAccounts");
      if (!accounts?.[0]) throw new RecurError("wallet", "Your wallet shared no account: unlock it, then try again.");
      wallet.account = accounts[0];
      return wallet.account;
    },
    /** Switches the wallet to the site's network when it is on another (a prompt), before an action. */
    async ensureChain() {
      const current = BigInt(await wallet.request("eth_chainId"));
      if (current === chainId) return;
      expecting = true;
      try {
        await wallet.request("wallet_switchEthereumChain", [{ chainId: "0x" + chainId.toString(16) }]);
      } catch (error) {
        expecting = false;
        throw error;
      }
      const now = BigInt(await wallet.request("eth_chainId"));
      if (now !== chainId) throw new RecurError("wallet", `Your wallet is on another network: switch it to chain ${chainId} and try again.`);
    },
  };
  const fire = (what) => (value) => {
    if (what === "chainChanged" && expecting && safeBigInt(value) === chainId) {
      expecting = false;
      return;
    }
    if (changed) return;
    changed = true;
    onChange(what);
  };
  provider.on?.("chainChanged", fire("chainChanged"));
  provider.on?.("accountsChanged", fire("accountsChanged"));
  return wallet;
}

function safeBigInt(value) {
  try {
    return BigInt(value);
  } catch {
    return null;
  }
}

// Page-test support: a real headless Chromium (the npm package @sparticuz/chromium, else Debian's
// /usr/bin/chromium) driven by playwright-core, and an EIP-1193 test wallet injected into every page
// (announced through EIP-6963) whose requests run here in Node: reads go to the hardhat node, signatures
// come from an ethers Wallet with a test key. It can decline a prompt (4001) or start on another chain.
import { existsSync } from "node:fs";

import { getBytes, Wallet } from "ethers";
import type { JsonRpcProvider } from "ethers";
import type { Browser, BrowserContext, Page } from "playwright-core";

/** Launches one headless Chromium, or fails with one line saying how to install one (never skips). */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  let executablePath: string | undefined;
  let args: string[] = ["--no-sandbox"];
  try {
    const packaged = (await import("@sparticuz/chromium")).default;
    executablePath = await packaged.executablePath();
    // Its arguments are made for AWS Lambda; in --single-process mode closing a browser context closes
    // the whole browser, so that one is left out.
    args = packaged.args.filter((a: string) => a !== "--single-process");
  } catch {
    if (existsSync("/usr/bin/chromium")) executablePath = "/usr/bin/chromium";
  }
  if (executablePath === undefined) {
    throw new Error("no Chromium for the page tests: run `npx -y -p node@22 -c 'npm install'` (it installs @sparticuz/chromium) or, as root, `apt-get install -y chromium`");
  }
  return chromium.launch({ executablePath, args, headless: true });
}

export interface WalletState {
  /** Whether the page was given the account (eth_requestAccounts). */
  connected: boolean;
  /** The chain the wallet says it is on. */
  chainId: bigint;
  /** Methods to decline once each, with 4001 (eth_sendTransaction, eth_signTypedData_v4 …). */
  decline: string[];
  /** Every method the page asked for, in order. */
  calls: string[];
}

export interface TestWallet {
  readonly address: string;
  readonly state: WalletState;
  /** Fires an EIP-1193 event in the page (accountsChanged, chainChanged). */
  emit(event: string, value: unknown): Promise<void>;
}

const INJECTED = `(() => {
  const listeners = {};
  const provider = {
    async request({ method, params }) {
      const answer = JSON.parse(await window.__recurTestWallet(JSON.stringify({ method, params: params ?? [] })));
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        if (answer.error.data !== undefined) error.data = answer.error.data;
        throw error;
      }
      return answer.result;
    },
    on(event, fn) { (listeners[event] = listeners[event] || []).push(fn); },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); },
  };
  window.__recurTestEmit = (event, value) => { for (const fn of listeners[event] || []) fn(value); };
  const info = Object.freeze({ uuid: "6f1e7c1a-0000-4000-8000-000000000001", name: "Test Wallet", icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E", rdns: "org.recur.test-wallet" });
  const detail = Object.freeze({ info, provider });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();`;

class RpcError extends Error {
  code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** Injects the test wallet into every page of `context`, signing with `key`; `chainId` is the node's. */
export async function injectWallet(context: BrowserContext, provider: JsonRpcProvider, key: string, chainId: bigint, initial: Partial<WalletState> = {}): Promise<TestWallet> {
  const signer = new Wallet(key, provider);
  const state: WalletState = { connected: false, chainId, decline: [], calls: [], ...initial };
  let pages: Page[] = [];
  context.on("page", (p) => void pages.push(p));
  const emit = async (event: string, value: unknown) => {
    pages = pages.filter((p) => !p.isClosed());
    await Promise.all(pages.map((p) => p.evaluate(`window.__recurTestEmit(${JSON.stringify(event)}, ${JSON.stringify(value)})`).catch(() => {})));
  };
  const declineOnce = (method: string) => {
    const i = state.decline.indexOf(method);
    if (i < 0) return;
    state.decline.splice(i, 1);
    throw new RpcError(4001, "User rejected the request.");
  };
  const handle = async (method: string, params: unknown[]): Promise<unknown> => {
    switch (method) {
      case "eth_accounts":
        return state.connected ? [signer.address] : [];
      case "eth_requestAccounts":
        declineOnce(method);
        state.connected = true;
        return [signer.address];
      case "eth_chainId":
        return "0x" + state.chainId.toString(16);
      case "wallet_switchEthereumChain": {
        declineOnce(method);
        const wanted = BigInt((params[0] as { chainId: string }).chainId);
        if (wanted !== chainId) throw new RpcError(4902, "Unrecognized chain ID.");
        state.chainId = wanted;
        setTimeout(() => void emit("chainChanged", "0x" + wanted.toString(16)), 0);
        return null;
      }
      case "eth_sendTransaction": {
        declineOnce(method);
        if (state.chainId !== chainId) throw new RpcError(-32000, `the test wallet is on chain ${state.chainId}: it would send there, not to the node`);
        const tx = params[0] as { to: string; data: string; gas?: string; value?: string };
        const sent = await signer.sendTransaction({ to: tx.to, data: tx.data, ...(tx.gas ? { gasLimit: BigInt(tx.gas) } : {}), ...(tx.value ? { value: BigInt(tx.value) } : {}) });
        return sent.hash;
      }
      case "eth_signTypedData_v4": {
        declineOnce(method);
        const typed = JSON.parse(params[1] as string) as { domain: Record<string, unknown>; types: Record<string, { name: string; type: string }[]>; message: Record<string, unknown> };
        const { EIP712Domain: _domain, ...types } = typed.types;
        return signer.signTypedData(typed.domain, types, typed.message);
      }
      case "personal_sign":
        declineOnce(method);
        return signer.signMessage(getBytes(params[0] as string));
      default:
        return provider.send(method, params);
    }
  };
  await context.exposeFunction("__recurTestWallet", async (json: string) => {
    const { method, params } = JSON.parse(json) as { method: string; params: unknown[] };
    state.calls.push(method);
    try {
      return JSON.stringify({ result: await handle(method, params) });
    } catch (error) {
      const e = error as { code?: unknown; message?: string; data?: unknown; info?: { error?: { code?: number; message?: string } } };
      const code = typeof e.code === "number" ? e.code : e.info?.error?.code ?? -32603;
      return JSON.stringify({ error: { code, message: e.info?.error?.message ?? e.message ?? String(error), data: e.data } });
    }
  });
  await context.addInitScript(INJECTED);
  return { address: signer.address, state, emit };
}

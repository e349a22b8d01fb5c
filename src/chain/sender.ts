// Sending: an explicit nonce, fees under the operator's cap, the signed bytes written to the journal
// before they are broadcast, a stuck transaction replaced with higher fees, and a wait for the
// configured confirmations. After a crash, `recover` settles every journalled transaction (its
// receipt, or the same bytes broadcast again) before anything new is sent, so a charge is neither
// lost nor repeated.
import { keccak256, Transaction } from "ethers";
import type { Wallet } from "ethers";

import { KeeperError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Receipt, Rpc } from "./rpc.ts";
import { RpcError } from "./rpc.ts";
import type { Store, TxRow } from "../index/store.ts";

export interface SenderDeps {
  rpc: Rpc;
  store: Store;
  wallet: Wallet;
  log: Logger;
  chainId: bigint;
  maxFeePerGas: bigint;
  confirmations: number;
  txTimeoutMs: number;
  pollMs: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

export interface Sent {
  receipt: Receipt;
  nonce: bigint;
  replacements: number;
}

/** Gas budget of one transaction: under the 2^24 per-transaction cap (EIP-7825) with room for the margin. */
export const MAX_GAS_PER_TX = 12_000_000n;

/** A replacement must raise both fees by at least 10% (geth, Hardhat); 12.5% leaves a margin. */
const bump = (fee: bigint) => (fee * 1125n) / 1000n + 1n;

const ALREADY_KNOWN = /already known|already imported|known transaction/i;
const NONCE_TOO_LOW = /nonce too low|nonce has already been used|invalid nonce/i;

export class Sender {
  readonly #deps: SenderDeps;
  #nonce: bigint | undefined;
  /** Mined transactions not yet confirmed: settled together by `settle`, once per pass. */
  #unsettled: { nonce: bigint; receipt: Receipt }[] = [];

  constructor(deps: SenderDeps) {
    this.#deps = deps;
  }

  get address(): string {
    return this.#deps.wallet.address.toLowerCase();
  }

  /** Resolves what an earlier run left pending in the journal: each is found mined, found dropped, or
   * broadcast again and waited for. Returns the receipts (not yet confirmed: see `settle`). */
  async recover(): Promise<Receipt[]> {
    const { store, rpc, log } = this.#deps;
    const byNonce = new Map<bigint, TxRow[]>();
    for (const tx of store.pendingTxs()) byNonce.set(tx.nonce, [...(byNonce.get(tx.nonce) ?? []), tx]);
    const receipts: Receipt[] = [];
    for (const [nonce, txs] of byNonce) {
      log.info("recover_pending", { nonce, hashes: txs.map((t) => t.hash), plan: txs[0]!.plan });
      const found = await this.#findReceipt(txs.map((t) => t.hash));
      if (found !== null) {
        this.#unsettled.push({ nonce, receipt: found });
        receipts.push(found);
        continue;
      }
      const mined = await rpc.nonce(this.address, "latest");
      if (mined > nonce) {
        // Another transaction of ours used this nonce and none of ours is known: nothing of it landed.
        store.setTxStatus(nonce, "dropped");
        log.warn("pending_dropped", { nonce });
        continue;
      }
      const newest = txs[txs.length - 1]!;
      await this.#broadcast(newest.raw, nonce);
      const settledNow = await this.#waitMined(nonce, txs.map((t) => t.hash), Transaction.from(newest.raw));
      this.#unsettled.push({ nonce, receipt: settledNow.receipt });
      receipts.push(settledNow.receipt);
    }
    return receipts;
  }

  /** Signs, journals, broadcasts `data` to `to` and waits until it is mined (its confirmations are
   * waited for by `settle`, once for all the transactions of a pass). */
  async send(to: string, data: string, fees: { baseFee: bigint; priorityFee: bigint }, meta: { plan: string; subscribers: string[] }): Promise<Sent> {
    const { rpc, wallet, chainId, maxFeePerGas, log } = this.#deps;
    if (fees.baseFee >= maxFeePerGas) {
      throw new KeeperError("FEE_CAP", `base fee ${fees.baseFee} wei is at or above the cap of ${maxFeePerGas} wei`, { retryable: true });
    }
    this.#nonce ??= await rpc.nonce(this.address, "pending");
    const nonce = this.#nonce;
    // Simulation: eth_estimateGas runs the call; a revert stops here and costs nothing.
    const estimate = await rpc.estimateGas({ from: this.address, to, data });
    if (estimate > MAX_GAS_PER_TX) {
      throw new KeeperError("GAS_BUDGET", `a batch needs ${estimate} gas, above the ${MAX_GAS_PER_TX} budget of one transaction`);
    }
    const priority = fees.priorityFee < maxFeePerGas ? fees.priorityFee : maxFeePerGas / 2n;
    const wanted = 2n * fees.baseFee + priority;
    const tx = Transaction.from({
      type: 2,
      chainId,
      nonce: Number(nonce),
      to,
      data,
      gasLimit: (estimate * 12n) / 10n + 10_000n,
      maxPriorityFeePerGas: priority,
      maxFeePerGas: wanted < maxFeePerGas ? wanted : maxFeePerGas,
    });
    const raw = await wallet.signTransaction(tx);
    const hash = keccak256(raw);
    this.#deps.store.journal({ nonce, hash, raw, plan: meta.plan, subscribers: meta.subscribers, maxFeePerGas: tx.maxFeePerGas!, sentAt: this.#deps.now() });
    log.info("tx_sent", { nonce, hash, plan: meta.plan, subscribers: meta.subscribers.length, gasLimit: tx.gasLimit, maxFeePerGas: tx.maxFeePerGas });
    this.#nonce = nonce + 1n;
    try {
      await this.#broadcast(raw, nonce, hash);
    } catch (error) {
      // The node refused it: read the nonce again next time. The journal keeps it pending, so the next
      // pass's `recover` tries the same bytes once more (or finds the nonce used).
      this.#nonce = undefined;
      throw error;
    }
    const mined = await this.#waitMined(nonce, [hash], tx);
    this.#unsettled.push({ nonce, receipt: mined.receipt });
    return { receipt: mined.receipt, nonce, replacements: mined.replacements };
  }

  /** Waits once until every transaction mined since the last call has the configured confirmations and
   * is still on the chain, then marks them in the journal. A transaction a reorg removed stays pending
   * in the journal (the next pass's `recover` broadcasts it again) and fails this call. */
  async settle(): Promise<Receipt[]> {
    const { rpc, store, confirmations, pollMs, sleep } = this.#deps;
    const unsettled = this.#unsettled;
    this.#unsettled = [];
    if (unsettled.length === 0) return [];
    if (confirmations > 1) {
      const newest = unsettled.reduce((max, u) => (u.receipt.blockNumber > max ? u.receipt.blockNumber : max), 0n);
      while ((await rpc.blockNumber()) - newest + 1n < BigInt(confirmations)) await sleep(pollMs);
    }
    const settled: Receipt[] = [];
    for (const { nonce, receipt } of unsettled) {
      // At one confirmation the receipt just read is final: no second look at the chain.
      const current = confirmations > 1 ? await rpc.receipt(receipt.transactionHash) : receipt;
      if (current === null || current.blockHash !== receipt.blockHash) {
        throw new KeeperError("TX_FAILED", `transaction ${receipt.transactionHash} (nonce ${nonce}) left the chain in a reorg`, { retryable: true });
      }
      store.setTxStatus(nonce, current.status === 1 ? "mined" : "failed", current.transactionHash);
      settled.push(current);
    }
    return settled;
  }

  /** Broadcasts `raw`. An "already known" or "nonce too low" answer to a rebroadcast means it got
   * there before; for a fresh transaction (`fresh` = its hash), a used nonce without its receipt means
   * another sender used this key. */
  async #broadcast(raw: string, nonce: bigint, fresh?: string): Promise<void> {
    try {
      await this.#deps.rpc.sendRaw(raw);
    } catch (error) {
      if (error instanceof RpcError && ALREADY_KNOWN.test(error.message)) return;
      if (error instanceof RpcError && NONCE_TOO_LOW.test(error.message)) {
        if (fresh !== undefined && (await this.#deps.rpc.receipt(fresh)) === null) {
          this.#deps.store.setTxStatus(nonce, "dropped");
          throw new KeeperError("TX_FAILED", `nonce ${nonce} was already used by another sender: is another process using this key?`, { retryable: true });
        }
        // Mined already (a rebroadcast after a crash, or a retried send that got through).
        this.#deps.log.info("tx_already_mined", { nonce });
        return;
      }
      throw error;
    }
  }

  async #findReceipt(hashes: string[]): Promise<Receipt | null> {
    for (const hash of hashes) {
      const receipt = await this.#deps.rpc.receipt(hash);
      if (receipt !== null) return receipt;
    }
    return null;
  }

  /** Polls for a receipt of any of `hashes`; past the timeout, replaces the transaction with bumped fees. */
  async #waitMined(nonce: bigint, hashes: string[], tx: Transaction): Promise<{ receipt: Receipt; replacements: number }> {
    const { rpc, wallet, maxFeePerGas, txTimeoutMs, pollMs, now, sleep, store, log } = this.#deps;
    let deadline = now() + txTimeoutMs;
    let replacements = 0;
    let current = tx;
    for (;;) {
      const receipt = await this.#findReceipt(hashes);
      if (receipt !== null) return { receipt, replacements };
      if (now() >= deadline) {
        const mined = await rpc.nonce(this.address, "latest");
        if (mined > nonce) {
          // Our nonce was used but none of our hashes has a receipt yet: look once more, then give up waiting.
          const late = await this.#findReceipt(hashes);
          if (late !== null) return { receipt: late, replacements };
          throw new KeeperError("TX_FAILED", `nonce ${nonce} was used by a transaction this keeper did not journal`);
        }
        const nextMax = bump(current.maxFeePerGas!);
        if (nextMax > maxFeePerGas) {
          log.warn("tx_stuck_at_fee_cap", { nonce, maxFeePerGas: current.maxFeePerGas });
          deadline = now() + txTimeoutMs;
        } else {
          const replacement = Transaction.from({ ...current.toJSON(), maxFeePerGas: nextMax, maxPriorityFeePerGas: bump(current.maxPriorityFeePerGas!), signature: null });
          const raw = await wallet.signTransaction(replacement);
          const hash = keccak256(raw);
          store.journal({ nonce, hash, raw, plan: String(current.to).toLowerCase(), subscribers: [], maxFeePerGas: nextMax, sentAt: now() });
          log.info("tx_replaced", { nonce, hash, maxFeePerGas: nextMax, replaces: hashes[hashes.length - 1] });
          hashes = [...hashes, hash];
          current = Transaction.from(raw);
          replacements++;
          await this.#broadcast(raw, nonce);
          deadline = now() + txTimeoutMs;
        }
      }
      await sleep(pollMs);
    }
  }
}

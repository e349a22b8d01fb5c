// The benchmarks' own JSON-RPC to a local `hardhat node` (setup and checks, never the code measured):
// fresh connections, read retries, batches; and locally signed setup transactions from deterministic keys.
import { Agent, request } from "node:http";

import { keccak256, toUtf8Bytes, Transaction, Wallet } from "ethers";

export const CHAIN_ID = 31_337n;
const SETUP_MAX_FEE = 50n * 10n ** 9n;
const SETUP_TIP = 10n ** 9n;
const RPC_BATCH = 500;

export type Call = [method: string, params: unknown[]];

// A new connection per request (no keep-alive): the node's HTTP server closes a kept-alive socket after
// 5 s idle, and a socket reused at that moment dies with "other side closed"; the benchmark's own
// connections sit idle for minutes while the keeper runs. Reads are retried a few times on a transport
// fault; transactions are never resent.
const NO_KEEP_ALIVE = new Agent({ keepAlive: false });
const READ_RETRIES = 3;

function post(url: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent: NO_KEEP_ALIVE, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

export async function rpcBatch(url: string, calls: Call[]): Promise<unknown[]> {
  const body = JSON.stringify(calls.map(([method, params], id) => ({ jsonrpc: "2.0", id, method, params })));
  const idempotent = calls.every(([method]) => method !== "eth_sendRawTransaction" && method !== "evm_mine");
  let text: string;
  for (let attempt = 0; ; attempt++) {
    try {
      text = await post(url, body);
      break;
    } catch (error) {
      if (!idempotent || attempt >= READ_RETRIES) throw new Error(`${calls[0]![0]} ×${calls.length}: ${(error as Error).message}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
    }
  }
  const answers = JSON.parse(text) as { id: number; result?: unknown; error?: { message: string } }[];
  const out: unknown[] = new Array(calls.length);
  for (const a of answers) {
    if (a.error !== undefined) throw new Error(`${calls[a.id]![0]}: ${a.error.message}`);
    out[a.id] = a.result;
  }
  return out;
}

/** Many calls in JSON-RPC batches of RPC_BATCH, two batches in flight. */
export async function rpcMany(url: string, calls: Call[]): Promise<unknown[]> {
  const chunks: Call[][] = [];
  for (let i = 0; i < calls.length; i += RPC_BATCH) chunks.push(calls.slice(i, i + RPC_BATCH));
  const results: unknown[][] = new Array(chunks.length);
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const k = next++;
      results[k] = await rpcBatch(url, chunks[k]!);
    }
  };
  await Promise.all([worker(), worker()]);
  return results.flat();
}

export const rpc = async <T = unknown>(url: string, method: string, params: unknown[] = []): Promise<T> => (await rpcBatch(url, [[method, params]]))[0] as T;
export const hex = (n: bigint | number) => "0x" + n.toString(16);


export const walletsFor = (label: string, count: number, prefix = "recur-bench-keeper"): Wallet[] =>
  Array.from({ length: count }, (_, i) => new Wallet(keccak256(toUtf8Bytes(`${prefix}/${label}/${i}`))));

export function sign(wallet: Wallet, nonce: number, to: string, data: string, gasLimit: number): string {
  const tx = Transaction.from({ type: 2, chainId: CHAIN_ID, nonce, to, data, gasLimit, maxFeePerGas: SETUP_MAX_FEE, maxPriorityFeePerGas: SETUP_TIP });
  tx.signature = wallet.signingKey.sign(tx.unsignedHash);
  return tx.serialized;
}

// A small JSON-RPC client over fetch: every call has a timeout and bounded retries with backoff on
// transport faults, and every call is counted by method (the benchmark reports these counts). An
// optional observer sees each attempt with its method, duration and outcome (src/ops/metrics.ts).
// Only what the keeper needs; no polling behind its back (unlike a full provider).
import { KeeperError } from "../errors.ts";

export interface RpcOptions {
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  signal?: AbortSignal;
  /** Called once per attempt (a retried call is seen once per try), after it ends. */
  observe?: RpcObserver;
}

/** How one attempt ended: answered; answered with a JSON-RPC error (a revert, a refused transaction);
 * no answer in time; no usable answer (unreachable, HTTP error, not JSON); stopped by the signal. */
export type RpcOutcome = "ok" | "error" | "timeout" | "transport" | "aborted";
export type RpcObserver = (method: string, seconds: number, outcome: RpcOutcome) => void;

export interface Block {
  number: bigint;
  hash: string;
  timestamp: bigint;
  baseFeePerGas: bigint | null;
}

export interface Log {
  address: string;
  topics: string[];
  data: string;
  blockNumber: bigint;
  blockHash: string;
  logIndex: number;
  transactionHash: string;
  /** The block's timestamp (seconds), when the node adds it to its logs (geth and others do). */
  blockTimestamp?: number;
}

export interface Receipt {
  status: number;
  blockNumber: bigint;
  blockHash: string;
  gasUsed: bigint;
  effectiveGasPrice: bigint;
  logs: Log[];
  transactionHash: string;
}

export interface Rpc {
  readonly calls: Map<string, number>;
  call<T = unknown>(method: string, params: unknown[]): Promise<T>;
  chainId(): Promise<bigint>;
  blockNumber(): Promise<bigint>;
  block(tag: bigint | "latest"): Promise<Block>;
  logs(filter: { address: string | string[]; topics?: (string | string[] | null)[]; fromBlock: bigint; toBlock: bigint }): Promise<Log[]>;
  ethCall(to: string, data: string, blockTag: bigint | "latest"): Promise<string>;
  estimateGas(tx: { from: string; to: string; data: string }): Promise<bigint>;
  nonce(address: string, tag: "latest" | "pending"): Promise<bigint>;
  /** The account's ether balance, wei. */
  balance(address: string, tag: bigint | "latest"): Promise<bigint>;
  maxPriorityFee(): Promise<bigint>;
  sendRaw(raw: string): Promise<string>;
  receipt(hash: string): Promise<Receipt | null>;
}

/** A JSON-RPC error answered by the node (a revert, a rejected transaction): never retried. */
export class RpcError extends KeeperError {
  readonly rpcCode: number;
  readonly data: unknown;
  constructor(method: string, rpcCode: number, message: string, data: unknown) {
    super("RPC_ERROR", `${method}: ${message}`);
    this.rpcCode = rpcCode;
    this.data = data;
  }
}

const hex = (n: bigint) => "0x" + n.toString(16);
const big = (v: unknown) => BigInt(v as string);
const tag = (t: bigint | "latest" | "pending") => (typeof t === "bigint" ? hex(t) : t);

function toLog(raw: Record<string, unknown>): Log {
  return {
    address: String(raw.address).toLowerCase(),
    topics: raw.topics as string[],
    data: String(raw.data),
    blockNumber: big(raw.blockNumber),
    blockHash: String(raw.blockHash),
    logIndex: Number(big(raw.logIndex)),
    transactionHash: String(raw.transactionHash),
    ...(raw.blockTimestamp === undefined || raw.blockTimestamp === null ? {} : { blockTimestamp: Number(big(raw.blockTimestamp)) }),
  };
}

function outcomeOf(error: unknown): RpcOutcome {
  if (error instanceof RpcError) return "error";
  const code = error instanceof KeeperError ? error.code : undefined;
  return code === "RPC_TIMEOUT" ? "timeout" : code === "ABORTED" ? "aborted" : "transport";
}

export function createRpc(url: string, options: RpcOptions): Rpc {
  const calls = new Map<string, number>();
  let id = 0;

  async function once(method: string, params: unknown[]): Promise<unknown> {
    if (options.observe === undefined) return attempt(method, params);
    const started = performance.now();
    let outcome: RpcOutcome = "ok";
    try {
      return await attempt(method, params);
    } catch (error) {
      outcome = outcomeOf(error);
      throw error;
    } finally {
      options.observe(method, (performance.now() - started) / 1000, outcome);
    }
  }

  async function attempt(method: string, params: unknown[]): Promise<unknown> {
    calls.set(method, (calls.get(method) ?? 0) + 1);
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
        signal,
      });
    } catch (error) {
      if (options.signal?.aborted === true) throw new KeeperError("ABORTED", `${method}: stopped`);
      if (timeout.aborted) throw new KeeperError("RPC_TIMEOUT", `${method}: no answer in ${options.timeoutMs} ms`, { retryable: true });
      throw new KeeperError("RPC_TRANSPORT", `${method}: ${(error as Error).message}`, { retryable: true, cause: error });
    }
    const text = await response.text().catch(() => "");
    let body: { result?: unknown; error?: { code: number; message: string; data?: unknown } };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new KeeperError("RPC_TRANSPORT", `${method}: HTTP ${response.status}, not JSON`, { retryable: true });
    }
    if (body.error !== undefined) throw new RpcError(method, body.error.code, body.error.message, body.error.data);
    if (!response.ok) throw new KeeperError("RPC_TRANSPORT", `${method}: HTTP ${response.status}`, { retryable: true });
    return body.result;
  }

  async function call<T>(method: string, params: unknown[]): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await once(method, params)) as T;
      } catch (error) {
        const retry = error instanceof KeeperError && error.retryable && attempt < options.retries;
        if (!retry) throw error;
        const wait = options.backoffMs * 2 ** attempt;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  return {
    calls,
    call,
    chainId: async () => big(await call("eth_chainId", [])),
    blockNumber: async () => big(await call("eth_blockNumber", [])),
    async block(t) {
      const raw = await call<Record<string, unknown> | null>("eth_getBlockByNumber", [tag(t), false]);
      if (raw === null) throw new KeeperError("RPC_ERROR", `eth_getBlockByNumber: no block ${String(t)}`, { retryable: true });
      return {
        number: big(raw.number),
        hash: String(raw.hash),
        timestamp: big(raw.timestamp),
        baseFeePerGas: raw.baseFeePerGas === undefined || raw.baseFeePerGas === null ? null : big(raw.baseFeePerGas),
      };
    },
    async logs(filter) {
      const raw = await call<Record<string, unknown>[]>("eth_getLogs", [
        { address: filter.address, topics: filter.topics, fromBlock: hex(filter.fromBlock), toBlock: hex(filter.toBlock) },
      ]);
      return raw.map(toLog);
    },
    ethCall: (to, data, t) => call<string>("eth_call", [{ to, data }, tag(t)]),
    estimateGas: async (tx) => big(await call("eth_estimateGas", [tx])),
    nonce: async (address, t) => big(await call("eth_getTransactionCount", [address, t])),
    balance: async (address, t) => big(await call("eth_getBalance", [address, tag(t)])),
    maxPriorityFee: async () => big(await call("eth_maxPriorityFeePerGas", [])),
    sendRaw: (raw) => call<string>("eth_sendRawTransaction", [raw]),
    async receipt(hash) {
      const raw = await call<Record<string, unknown> | null>("eth_getTransactionReceipt", [hash]);
      if (raw === null) return null;
      return {
        status: Number(big(raw.status)),
        blockNumber: big(raw.blockNumber),
        blockHash: String(raw.blockHash),
        gasUsed: big(raw.gasUsed),
        effectiveGasPrice: big(raw.effectiveGasPrice ?? "0x0"),
        logs: (raw.logs as Record<string, unknown>[]).map(toLog),
        transactionHash: String(raw.transactionHash),
      };
    },
  };
}

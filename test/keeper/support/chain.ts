// End-to-end support: a real `hardhat node` process on 127.0.0.1 and a free port, contracts deployed
// to it over JSON-RPC, and the keeper run as a child process. Nothing here is mocked.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Contract, ContractFactory, HDNodeWallet, JsonRpcProvider, Mnemonic, NonceManager } from "ethers";
import type { Signer } from "ethers";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface Node {
  url: string;
  port: number;
  provider: JsonRpcProvider;
  stop(): Promise<void>;
  /** Moves the node's clock to `timestamp` and mines a block there. */
  mineAt(timestamp: bigint | number): Promise<void>;
  latestTimestamp(): Promise<bigint>;
  send(method: string, params?: unknown[]): Promise<unknown>;
}

/** Starts `hardhat node` on 127.0.0.1 and waits until it answers. Always call `stop()`. */
export async function startNode(): Promise<Node> {
  const port = await freePort();
  const child: ChildProcess = spawn(path.join(ROOT, "node_modules/.bin/hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, FORCE_COLOR: "0" },
  });
  // Only the tail, for error messages: the node prints a line per call, hundreds of MB in a long run.
  let output = "";
  const keep = (d: Buffer) => void (output = (output + d.toString()).slice(-4000));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hardhat node exited: ${output.slice(-2000)}`);
    try {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }) });
      if (res.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`hardhat node did not answer on ${url}: ${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, cacheTimeout: -1, pollingInterval: 50 });
  const send = (method: string, params: unknown[] = []) => provider.send(method, params) as Promise<unknown>;
  return {
    url,
    port,
    provider,
    send,
    async stop() {
      provider.destroy();
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
    async mineAt(timestamp) {
      await send("evm_setNextBlockTimestamp", [Number(timestamp)]);
      await send("evm_mine", []);
    },
    async latestTimestamp() {
      const block = await provider.getBlock("latest");
      return BigInt(block!.timestamp);
    },
  };
}

/** Registers mocha hooks that start a fresh `hardhat node` before each test and always stop it (and any
 * keeper a test left running) after; the running node is `handle.node`. */
export function useNodePerTest(): { readonly node: Node } {
  const handle: { node: Node } = { node: undefined as unknown as Node };
  beforeEach(async () => {
    handle.node = await startNode();
  });
  afterEach(async () => {
    await killKeepers();
    await handle.node?.stop();
  });
  return handle;
}

/** Registers mocha hooks that start one `hardhat node` for the whole `describe` (handed to `onStart`)
 * and always stop it after; any keeper a test left running is killed after each test. */
export function useSharedNode(onStart: (node: Node) => void): void {
  let node: Node | undefined;
  before(async () => {
    node = await startNode();
    onStart(node);
  });
  after(async () => {
    await killKeepers();
    await node?.stop();
  });
  afterEach(killKeepers);
}

/** Hardhat's default accounts (funded with ETH on every hardhat node), as signers on `provider`. */
export function accounts(provider: JsonRpcProvider, count = 20): Signer[] {
  const mnemonic = Mnemonic.fromPhrase(HARDHAT_MNEMONIC);
  return Array.from({ length: count }, (_, i) => new NonceManager(HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(provider)));
}

/** The private key of default account `i` (for the keeper's environment). */
export function accountKey(i: number): string {
  return HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(HARDHAT_MNEMONIC), `m/44'/60'/0'/0/${i}`).privateKey;
}

function artifact(name: string): { abi: unknown[]; bytecode: string } {
  const file = ["PlanFactory", "FixedPricePlan", "MeteredPlan"].includes(name) ? `contracts/${name}.sol/${name}.json` : `test/mocks/${name}.sol/${name}.json`;
  return JSON.parse(readFileSync(path.join(ROOT, "artifacts", file), "utf8")) as { abi: unknown[]; bytecode: string };
}

export async function deploy(name: string, signer: Signer, args: unknown[] = []): Promise<Contract> {
  const { abi, bytecode } = artifact(name);
  const contract = await new ContractFactory(abi as never, bytecode, signer).deploy(...args);
  await contract.waitForDeployment();
  return contract as Contract;
}

export function at(name: string, address: string, signer: Signer): Contract {
  return new Contract(address, artifact(name).abi as never, signer);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: Record<string, unknown>[];
  stdout: string;
  stderr: string;
}

const live = new Set<ChildProcess>();

/** SIGKILLs every keeper process still running (for afterEach: a failed test leaves none behind). */
export async function killKeepers(): Promise<void> {
  await Promise.all(
    [...live].map((child) => {
      const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
      child.kill("SIGKILL");
      return closed;
    }),
  );
}

/** Calls `onLine` with each JSON log line the keeper writes to `stream` (other output is ignored). */
export function onLogLines(stream: NodeJS.ReadableStream, onLine: (line: Record<string, unknown>) => void): void {
  let pending = "";
  stream.on("data", (d: Buffer) => {
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue; // not a log line
      }
      onLine(line);
    }
  });
}

export interface KeeperProcess {
  /** Log lines parsed so far (grows while the process runs). */
  readonly lines: Record<string, unknown>[];
  /** Resolves when the process exits. */
  readonly exited: Promise<RunResult>;
  kill(signal: NodeJS.Signals): void;
  /** Resolves with the first log line matching `match` (already seen or yet to come); rejects if the
   * process exits first or `timeoutMs` passes. */
  waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit; past `timeoutMs` kills the process (SIGKILL) and rejects. */
  waitForExit(timeoutMs?: number): Promise<RunResult>;
}

export interface KeeperOptions {
  killAfterLine?: (line: Record<string, unknown>) => boolean;
  /** Written to the process's stdin, which is then closed (without it, stdin is closed at once). */
  stdin?: string;
}

/** Starts the keeper (`recur ...args`) with `env` only (plus PATH). The caller must see it exit
 * (`exited`, `waitForExit`) or kill it. */
export function startKeeper(args: string[], env: Record<string, string>, options: KeeperOptions = {}): KeeperProcess {
  const cwd = mkdtempSync(path.join(tmpdir(), "recur-cwd-"));
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", path.join(ROOT, "bin/recur.ts"), ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.on("error", () => {}); // EPIPE when the process exits without reading it
  child.stdin.end(options.stdin ?? "");
  live.add(child);
  let stdout = "";
  let stderr = "";
  const lines: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  onLogLines(child.stdout, (line) => {
    lines.push(line);
    if (options.killAfterLine?.(line) === true) child.kill("SIGKILL");
    for (const listener of listeners) listener();
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  let done: RunResult | undefined;
  const exited = new Promise<RunResult>((resolve) => {
    // "close", not "exit": every byte of stdout and stderr has been read by then.
    child.on("close", (code, signal) => {
      live.delete(child);
      rmSync(cwd, { recursive: true, force: true });
      done = { code, signal, lines, stdout, stderr };
      for (const listener of listeners) listener();
      resolve(done);
    });
  });
  return {
    lines,
    exited,
    kill: (signal) => void child.kill(signal),
    waitForLine(match, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (found !== undefined) finish(() => resolve(found));
          else if (done !== undefined) finish(() => reject(new Error(`keeper exited (${done!.code ?? done!.signal}) before the expected line:\n${stdout.slice(-3000)}${stderr}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no expected keeper line within ${timeoutMs} ms:\n${stdout.slice(-3000)}${stderr}`))), timeoutMs);
        const finish = (then: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          then();
        };
        listeners.add(check);
        check();
      });
    },
    async waitForExit(timeoutMs = 60_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
      const result = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (result !== "timeout") return result;
      child.kill("SIGKILL");
      await exited;
      throw new Error(`keeper did not exit within ${timeoutMs} ms:\n${stdout.slice(-3000)}${stderr}`);
    },
  };
}

/** Runs the keeper (`recur ...args`) with `env` only (plus PATH); resolves when it exits. */
export function runKeeper(args: string[], env: Record<string, string>, options: KeeperOptions = {}): Promise<RunResult> {
  return startKeeper(args, env, options).exited;
}

/** Polls `probe` until it returns something other than undefined; fails after `timeoutMs`. */
export async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

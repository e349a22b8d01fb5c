// Bad configuration stops the keeper binary with exit code 1 and exactly one line on stderr naming the
// variable and what it expected; a key never reaches the output. A node is needed only for the chain-id
// check and the keystore.
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { encryptKeystoreJson, Wallet } from "ethers";

import { DEFAULT_METRICS_PORT, parseConfig } from "../../src/cli/config.ts";
import type { KeeperConfig } from "../../src/cli/config.ts";
import { runKeeper, startNode } from "./support/chain.ts";
import type { Node, RunResult } from "./support/chain.ts";

const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/** A key-shaped secret one character short, and one with a non-hex digit: never to be printed. */
const BAD_KEYS = ["0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690", "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690z"];

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "recur-config-"));
}

/** A complete, valid environment (the RPC URL points nowhere: config errors stop before any call). */
function validEnv(dir: string): Record<string, string> {
  return {
    RECUR_RPC_URL: "http://127.0.0.1:9",
    RECUR_CHAIN_ID: "31337",
    RECUR_FACTORY: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    RECUR_FACTORY_BLOCK: "1",
    RECUR_PRIVATE_KEY: KEY,
    RECUR_STORE: path.join(dir, "keeper.sqlite"),
  };
}

function without(env: Record<string, string>, ...names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !names.includes(k)));
}

/** Exit 1, one line on stderr that starts with the variable and says what was expected, no log lines. */
function expectOneLine(result: RunResult, variable: string, expected: RegExp): string {
  const detail = `stdout: ${result.stdout}\nstderr: ${result.stderr}`;
  expect(result.code, detail).to.equal(1);
  expect(result.stderr.endsWith("\n"), detail).to.equal(true);
  const lines = result.stderr.slice(0, -1).split("\n");
  expect(lines, detail).to.have.length(1);
  const line = lines[0]!;
  expect(line.startsWith(`recur: ${variable}: expected `), detail).to.equal(true);
  expect(line, detail).to.match(expected);
  expect(result.stdout, detail).to.equal("");
  return line;
}

interface Case {
  title: string;
  args?: string[];
  env: (valid: Record<string, string>, dir: string) => Record<string, string>;
  variable: string;
  expected: RegExp;
  secret?: string;
}

const CASES: Case[] = [
  { title: "RECUR_RPC_URL not a URL", env: (v) => ({ ...v, RECUR_RPC_URL: "localhost:8545" }), variable: "RECUR_RPC_URL", expected: /an http\(s\) URL/ },
  { title: "RECUR_RPC_URL missing", env: (v) => without(v, "RECUR_RPC_URL"), variable: "RECUR_RPC_URL", expected: /an http\(s\) URL, got nothing$/ },
  { title: "RECUR_CHAIN_ID not a number", env: (v) => ({ ...v, RECUR_CHAIN_ID: "mainnet" }), variable: "RECUR_CHAIN_ID", expected: /a positive integer, got "mainnet"$/ },
  { title: "RECUR_FACTORY not an address", env: (v) => ({ ...v, RECUR_FACTORY: "0x1234" }), variable: "RECUR_FACTORY", expected: /20-byte address, got "0x1234"$/ },
  { title: "RECUR_FACTORY_BLOCK missing", env: (v) => without(v, "RECUR_FACTORY_BLOCK"), variable: "RECUR_FACTORY_BLOCK", expected: /deployment block number, got nothing$/ },
  ...BAD_KEYS.map((bad, i): Case => ({
    title: `RECUR_PRIVATE_KEY malformed (${i === 0 ? "too short" : "not hex"})`,
    env: (v) => ({ ...v, RECUR_PRIVATE_KEY: bad }),
    variable: "RECUR_PRIVATE_KEY",
    expected: /32 bytes of hex/,
    secret: bad,
  })),
  {
    title: "RECUR_PRIVATE_KEY malformed, given as a flag",
    args: ["run", "--once", "--private-key", BAD_KEYS[0]!],
    env: (v) => without(v, "RECUR_PRIVATE_KEY"),
    variable: "RECUR_PRIVATE_KEY",
    expected: /32 bytes of hex/,
    secret: BAD_KEYS[0]!,
  },
  { title: "no signer for run", env: (v) => without(v, "RECUR_PRIVATE_KEY"), variable: "RECUR_PRIVATE_KEY", expected: /RECUR_KEYSTORE/ },
  {
    title: "both RECUR_PRIVATE_KEY and RECUR_KEYSTORE",
    env: (v, dir) => ({ ...v, RECUR_KEYSTORE: path.join(dir, "keystore.json"), RECUR_KEYSTORE_PASSWORD: "pw" }),
    variable: "RECUR_PRIVATE_KEY",
    expected: /not both/,
    secret: KEY,
  },
  {
    title: "RECUR_KEYSTORE file missing",
    env: (v, dir) => ({ ...without(v, "RECUR_PRIVATE_KEY"), RECUR_KEYSTORE: path.join(dir, "missing.json"), RECUR_KEYSTORE_PASSWORD: "pw" }),
    variable: "RECUR_KEYSTORE",
    expected: /an existing keystore JSON file, got ".*missing\.json"$/,
  },
  { title: "RECUR_BATCH_SIZE 0", env: (v) => ({ ...v, RECUR_BATCH_SIZE: "0" }), variable: "RECUR_BATCH_SIZE", expected: /an integer in \[1, 500\], got "0"$/ },
  { title: "RECUR_BATCH_SIZE 501", env: (v) => ({ ...v, RECUR_BATCH_SIZE: "501" }), variable: "RECUR_BATCH_SIZE", expected: /an integer in \[1, 500\], got "501"$/ },
  { title: 'RECUR_SHARD "2/2"', env: (v) => ({ ...v, RECUR_SHARD: "2/2" }), variable: "RECUR_SHARD", expected: /0 <= I < N.*got "2\/2"$/ },
  { title: 'RECUR_MAX_FEE_GWEI "-1"', env: (v) => ({ ...v, RECUR_MAX_FEE_GWEI: "-1" }), variable: "RECUR_MAX_FEE_GWEI", expected: /a positive number of gwei, got "-1"$/ },
  { title: "RECUR_DENY_PLANS with a bad entry", env: (v) => ({ ...v, RECUR_DENY_PLANS: "0x5FbDB2315678afecb367f032d93F642f64180aa3, 0xnope" }), variable: "RECUR_DENY_PLANS", expected: /comma-separated 0x-prefixed 20-byte addresses, got "0xnope"$/ },
  { title: "RECUR_ALLOW_TOKENS with a bad entry", env: (v) => ({ ...v, RECUR_ALLOW_TOKENS: "usdc" }), variable: "RECUR_ALLOW_TOKENS", expected: /addresses, got "usdc"$/ },
  { title: "RECUR_RETRY_SCHEDULE not increasing", env: (v) => ({ ...v, RECUR_RETRY_SCHEDULE: "1h,30m" }), variable: "RECUR_RETRY_SCHEDULE", expected: /increasing durations .*, got "30m"$/ },
  { title: "RECUR_RETRY_SCHEDULE not a duration", env: (v) => ({ ...v, RECUR_RETRY_SCHEDULE: "1h,soon" }), variable: "RECUR_RETRY_SCHEDULE", expected: /got "soon"$/ },
  { title: "RECUR_QUARANTINE_AFTER 0", env: (v) => ({ ...v, RECUR_QUARANTINE_AFTER: "0" }), variable: "RECUR_QUARANTINE_AFTER", expected: /an integer in \[1, 1000\], got "0"$/ },
  { title: "RECUR_QUARANTINE_MAX below the base", env: (v) => ({ ...v, RECUR_QUARANTINE_BASE: "1h", RECUR_QUARANTINE_MAX: "10m" }), variable: "RECUR_QUARANTINE_MAX", expected: /at least RECUR_QUARANTINE_BASE \(3600s\), got "10m"$/ },
  { title: "RECUR_METRICS_PORT 65536", env: (v) => ({ ...v, RECUR_METRICS_PORT: "65536" }), variable: "RECUR_METRICS_PORT", expected: /a port from 0 to 65535 \(0: any free port\) or "off", got "65536"$/ },
  { title: "RECUR_METRICS_PORT not a number", env: (v) => ({ ...v, RECUR_METRICS_PORT: "http" }), variable: "RECUR_METRICS_PORT", expected: /or "off", got "http"$/ },
  { title: "RECUR_METRICS_HOST not a host", env: (v) => ({ ...v, RECUR_METRICS_HOST: "local host" }), variable: "RECUR_METRICS_HOST", expected: /an IP address or a host name, e\.g\. "127\.0\.0\.1", got "local host"$/ },
  { title: "--metrics-host with a URL", args: ["run", "--metrics-host", "http://0.0.0.0"], env: (v) => v, variable: "RECUR_METRICS_HOST", expected: /got "http:\/\/0\.0\.0\.0"$/ },
  { title: "RECUR_MIN_BALANCE negative", env: (v) => ({ ...v, RECUR_MIN_BALANCE: "-1" }), variable: "RECUR_MIN_BALANCE", expected: /an amount of ether, e\.g\. "0\.05" \(at most 18 decimals\), got "-1"$/ },
  { title: "RECUR_MIN_BALANCE below one wei", env: (v) => ({ ...v, RECUR_MIN_BALANCE: "0.0000000000000000001" }), variable: "RECUR_MIN_BALANCE", expected: /at most 18 decimals\), got "0\.0000000000000000001"$/ },
  { title: "RECUR_MIN_BALANCE in wei with a unit", env: (v) => ({ ...v, RECUR_MIN_BALANCE: "5e16" }), variable: "RECUR_MIN_BALANCE", expected: /an amount of ether.*got "5e16"$/ },
  { title: "RECUR_READY_MAX_HEAD_AGE not a duration", env: (v) => ({ ...v, RECUR_READY_MAX_HEAD_AGE: "soon" }), variable: "RECUR_READY_MAX_HEAD_AGE", expected: /a duration from 0s to 30d.*got "soon"$/ },
  { title: "RECUR_READY_MAX_OUTBOX_AGE 0", env: (v) => ({ ...v, RECUR_READY_MAX_OUTBOX_AGE: "0" }), variable: "RECUR_READY_MAX_OUTBOX_AGE", expected: /a duration from 1s to 30d.*got "0"$/ },
  { title: "unknown command", args: ["charge"], env: (v) => v, variable: "command", expected: /one of "run", "status", "usage", "plan", .* got "charge"$/ },
  { title: "no command", args: [], env: (v) => v, variable: "command", expected: /one of "run", "status", "usage", "plan", .* got nothing$/ },
  { title: "unknown flag", args: ["run", "--once", "--bogus"], env: (v) => v, variable: "arguments", expected: /--bogus/ },
];

describe("keeper configuration (binary)", function () {
  this.timeout(60_000);

  for (const c of CASES) {
    it(`${c.title}: exit 1 and one line naming ${c.variable}`, async () => {
      const dir = tmp();
      const result = await runKeeper(c.args ?? ["run", "--once"], c.env(validEnv(dir), dir));
      expectOneLine(result, c.variable, c.expected);
      if (c.secret !== undefined) {
        expect(result.stdout).not.to.include(c.secret);
        expect(result.stderr).not.to.include(c.secret);
        // Nor its hex body without the 0x.
        expect(result.stderr).not.to.include(c.secret.slice(2, 40));
      }
    });
  }

  it("run --help prints the keeper's usage and exits 0", async () => {
    const result = await runKeeper(["run", "--help"], {});
    expect(result.code).to.equal(0);
    expect(result.stdout).to.match(/^usage: recur run/);
  });

  it("--help lists every command, keeper's and merchant's, with examples; plan --help lists the plan commands", async () => {
    const result = await runKeeper(["--help"], {});
    expect(result.code).to.equal(0);
    expect(result.stdout).to.match(/^usage: recur <command>/);
    for (const name of ["run", "status", "usage", "plan create", "plan hold", "plan write-off", "plans", "subscribers", "charges", "revenue"]) {
      expect(result.stdout, name).to.match(new RegExp(`^  ${name} +\\S`, "m"));
    }
    expect(result.stdout).to.include("recur plan create --token");
    const plan = await runKeeper(["plan", "--help"], {});
    expect(plan.code).to.equal(0);
    expect(plan.stdout).to.match(/^usage: recur plan <command>/);
    expect(plan.stdout).to.match(/^  plan retire +\S/m);
  });
});

describe("keeper configuration of the daemon's listener and readiness (parsed)", () => {
  const parse = (env: Record<string, string>, args = ["run"]) => parseConfig(args, { ...validEnv(tmp()), ...env }, tmp()) as KeeperConfig;

  it("defaults: 127.0.0.1 on the default port; a 5-minute head, no balance floor, a 1-hour outbox", () => {
    const config = parse({});
    expect(config.listen).to.deep.equal({ host: "127.0.0.1", port: DEFAULT_METRICS_PORT });
    expect(config.ready).to.deep.equal({ maxHeadAgeSeconds: 300, minBalanceWei: 0n, maxOutboxAgeSeconds: 3_600 });
  });

  it("RECUR_METRICS_PORT off runs no listener, 0 asks for a free port; flags win over the environment", () => {
    expect(parse({ RECUR_METRICS_PORT: "off" }).listen).to.equal(null);
    expect(parse({ RECUR_METRICS_PORT: "OFF" }).listen).to.equal(null);
    expect(parse({ RECUR_METRICS_PORT: "0" }).listen).to.deep.equal({ host: "127.0.0.1", port: 0 });
    expect(parse({ RECUR_METRICS_PORT: "off" }, ["run", "--metrics-port", "9100", "--metrics-host", "::1"]).listen).to.deep.equal({ host: "::1", port: 9100 });
    expect(parse({ RECUR_METRICS_HOST: "0.0.0.0", RECUR_METRICS_PORT: "65535" }).listen).to.deep.equal({ host: "0.0.0.0", port: 65_535 });
    expect(parse({ RECUR_METRICS_HOST: "keeper-1.internal" }).listen?.host).to.equal("keeper-1.internal");
  });

  it("RECUR_MIN_BALANCE is ether, exact to the wei; the readiness ages are durations (a head age of 0 turns that check off)", () => {
    expect(parse({ RECUR_MIN_BALANCE: "0.05" }).ready.minBalanceWei).to.equal(5n * 10n ** 16n);
    expect(parse({ RECUR_MIN_BALANCE: "2" }).ready.minBalanceWei).to.equal(2n * 10n ** 18n);
    expect(parse({ RECUR_MIN_BALANCE: "0.000000000000000001" }).ready.minBalanceWei).to.equal(1n);
    expect(parse({ RECUR_READY_MAX_HEAD_AGE: "0" }).ready.maxHeadAgeSeconds).to.equal(0);
    expect(parse({ RECUR_READY_MAX_HEAD_AGE: "90s", RECUR_READY_MAX_OUTBOX_AGE: "6h" }).ready).to.include({ maxHeadAgeSeconds: 90, maxOutboxAgeSeconds: 21_600 });
  });
});

describe("keeper configuration against a node (chain id, keystore)", function () {
  this.timeout(120_000);
  let node: Node;
  let dir: string;

  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node?.stop();
  });
  beforeEach(() => {
    dir = tmp();
  });

  const env = () => ({ ...validEnv(dir), RECUR_RPC_URL: node.url, RECUR_FACTORY_BLOCK: "0", RECUR_CONFIRMATIONS: "1" });

  it("a chain id other than the node's: exit 3 and one line naming RECUR_CHAIN_ID", async () => {
    for (const command of [["run", "--once"], ["status"]]) {
      const result = await runKeeper(command, { ...env(), RECUR_CHAIN_ID: "1" });
      expect(result.code, result.stderr + result.stdout).to.equal(3);
      const lines = result.stderr.trimEnd().split("\n");
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/^recur: RECUR_CHAIN_ID: expected the node's chain 31337, got 1$/);
    }
  });

  it("a metrics port already in use: the daemon stops with exit 1 and one line naming RECUR_METRICS_PORT", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", () => resolve()));
    const port = (taken.address() as AddressInfo).port;
    try {
      const result = await runKeeper(["run"], { ...env(), RECUR_METRICS_PORT: String(port) });
      expectOneLine(result, "RECUR_METRICS_PORT", new RegExp(`a port free to listen on at 127\\.0\\.0\\.1, got "${port}" \\(in use\\)$`));
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  describe("keystore", () => {
    const wallet = Wallet.createRandom();
    const password = "correct horse battery staple";
    let keystore: string;

    before(async () => {
      // A low scrypt cost keeps the test fast; the keeper reads the cost from the file.
      const json = await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, password, { scrypt: { N: 1024 } });
      keystore = path.join(tmp(), "keystore.json");
      writeFileSync(keystore, json);
    });

    it("the right password: the keeper runs as the keystore's account", async () => {
      const result = await runKeeper(["run", "--once"], { ...without(env(), "RECUR_PRIVATE_KEY"), RECUR_KEYSTORE: keystore, RECUR_KEYSTORE_PASSWORD: password });
      expect(result.code, result.stderr + result.stdout).to.equal(0);
      expect(result.stderr).to.equal("");
      const start = result.lines.find((l) => l.event === "start")!;
      expect(start.keeper).to.equal(wallet.address.toLowerCase());
      expect(start.signer).to.equal("keystore");
      expect(result.lines.some((l) => l.event === "pass")).to.equal(true);
      for (const secret of [password, wallet.privateKey, wallet.privateKey.slice(2)]) expect(result.stdout).not.to.include(secret);
    });

    it("a wrong password: exit 1 and one line naming RECUR_KEYSTORE_PASSWORD", async () => {
      const wrong = "Tr0ub4dor&3";
      const result = await runKeeper(["run", "--once"], { ...without(env(), "RECUR_PRIVATE_KEY"), RECUR_KEYSTORE: keystore, RECUR_KEYSTORE_PASSWORD: wrong });
      const line = expectOneLine(result, "RECUR_KEYSTORE_PASSWORD", /does not decrypt/);
      expect(line).not.to.include(wrong);
    });

    it("no password: exit 1 and one line naming RECUR_KEYSTORE_PASSWORD", async () => {
      const result = await runKeeper(["run", "--once"], { ...without(env(), "RECUR_PRIVATE_KEY"), RECUR_KEYSTORE: keystore });
      expectOneLine(result, "RECUR_KEYSTORE_PASSWORD", /the keystore's password, got nothing$/);
    });
  });
});

import { createRequire } from "node:module";

import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { defineConfig } from "hardhat/config";
import type { HardhatPlugin } from "hardhat/types/plugins";

const require = createRequire(import.meta.url);

// The compiler is the npm `solc` package's WebAssembly build, so nothing is
// downloaded at build time. `SOLC_VERSION` must equal the installed package's.
const SOLC_VERSION = "0.8.30";
const solcSettings = {
  version: SOLC_VERSION,
  path: require.resolve("solc/soljson.js"),
  settings: {
    evmVersion: "cancun",
    viaIR: true,
    optimizer: { enabled: true, runs: 10_000 },
  },
};

// Test tokens are compiled the way an ordinary token is deployed (legacy pipeline, 200 runs), so that
// gas figures compare our charge with a typical token's transferFrom, not with a tuned one.
const tokenSettings = {
  version: SOLC_VERSION,
  path: require.resolve("solc/soljson.js"),
  settings: { evmVersion: "cancun", optimizer: { enabled: true, runs: 200 } },
};
const tokenOverrides = Object.fromEntries(
  [
    "TestUSDC",
    "NoReturnToken",
    "FalseReturnToken",
    "BlocklistToken",
    "TestToken18",
    "PausableToken",
    "ReentrantToken",
    "FeeOnTransferToken",
    "ZeroDecimalsToken",
    "BrokenViewsToken",
    "HostileToken",
    "HostileFeed",
    "SenderHookToken",
    "HookedSubscriber",
    "SubscriberSwarm",
  ].map((name) => [`test/mocks/${name}.sol`, tokenSettings]),
);

// Drops solc's warning about OpenZeppelin's transient reentrancy guard (harmless: see the file).
const knownWarnings: HardhatPlugin = {
  id: "recur-known-warnings",
  hookHandlers: { solidity: () => import("./scripts/hardhat/known-warnings.ts") },
};

// Heavier fuzzing for a release check: RECUR_FUZZ_RUNS=5000 npm test
const fuzzRuns = Number(process.env.RECUR_FUZZ_RUNS ?? 256);
const invariantRuns = Number(process.env.RECUR_INVARIANT_RUNS ?? 32);
const invariantDepth = Number(process.env.RECUR_INVARIANT_DEPTH ?? 40);

export default defineConfig({
  // `npm run coverage` (and CI) measure contracts/ only: test tokens and wallets are not in the audit scope.
  coverage: { skipFiles: ["test/mocks/**"] },
  plugins: [hardhatToolboxMochaEthers, knownWarnings],
  solidity: {
    profiles: {
      default: { compilers: [solcSettings], overrides: tokenOverrides },
      production: { compilers: [solcSettings], overrides: tokenOverrides },
    },
  },
  paths: {
    // Test tokens are compiled as sources (so TypeChain types them) but live under test/, outside the
    // audit scope of contracts/.
    sources: { solidity: ["contracts", "test/mocks"] },
    tests: { solidity: "test/solidity" },
    ignition: "deploy",
  },
  typechain: {
    outDir: "typechain-types",
  },
  test: {
    solidity: {
      fuzz: { runs: fuzzRuns },
      invariant: { runs: invariantRuns, depth: invariantDepth, failOnRevert: false },
    },
  },
});

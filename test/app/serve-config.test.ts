// `recur serve`'s configuration, without a node: the read RPC URL handed to every visitor (never one with
// credentials unless set on purpose), the explorer URL, and the config.json the pages read.
import { expect } from "chai";

import { parseCommandConfig } from "../../src/cli/config.ts";
import type { Context } from "../../src/cli/command.ts";
import { appConfigOf, serveCommand } from "../../src/cli/commands/serve.ts";
import { errorMessage } from "../../src/errors.ts";

const FACTORY = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const base = { RECUR_CHAIN_ID: "31337", RECUR_FACTORY: FACTORY, RECUR_FACTORY_BLOCK: "1" };

function configFor(env: Record<string, string>): ReturnType<typeof parseCommandConfig>["config"] {
  return parseCommandConfig(serveCommand.spec, ["serve"], env, "/nonexistent").config;
}

describe("recur serve: configuration", () => {
  it("hands the pages RECUR_RPC_URL when it is a loopback URL without credentials", () => {
    expect(configFor({ ...base, RECUR_RPC_URL: "http://127.0.0.1:8545" }).appRpcUrl).to.equal("http://127.0.0.1:8545");
    expect(configFor({ ...base, RECUR_RPC_URL: "http://localhost:8545" }).appRpcUrl).to.equal("http://localhost:8545");
  });

  it("never hands out a remote RECUR_RPC_URL (it may hold a key): serve stops with one line asking for RECUR_APP_RPC_URL", () => {
    for (const url of ["https://eth-mainnet.example/v2/SECRETKEY", "http://user:pass@127.0.0.1:8545"]) {
      const config = configFor({ ...base, RECUR_RPC_URL: url });
      expect(config.appRpcUrl, url).to.equal(null);
      let message = "";
      try {
        appConfigOf({ config } as unknown as Context);
      } catch (error) {
        message = errorMessage(error);
      }
      expect(message).to.equal("RECUR_APP_RPC_URL: expected the JSON-RPC URL the customers' browsers read the chain from (public: no key in it); RECUR_RPC_URL is used only when it is a loopback URL, got nothing");
      expect(message).to.not.include("SECRETKEY");
    }
  });

  it("writes config.json from RECUR_APP_RPC_URL, RECUR_TOKENS and RECUR_EXPLORER_TX_URL", () => {
    const config = configFor({ ...base, RECUR_RPC_URL: "https://eth-mainnet.example/v2/SECRETKEY", RECUR_APP_RPC_URL: "https://public-rpc.example", RECUR_TOKENS: "USDC=0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", RECUR_EXPLORER_TX_URL: "https://etherscan.io/tx/" });
    expect(appConfigOf({ config } as unknown as Context)).to.deep.equal({
      chainId: "31337",
      rpcUrl: "https://public-rpc.example",
      factory: FACTORY,
      factoryBlock: "1",
      tokens: { "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48": "USDC" },
      explorerTxUrl: "https://etherscan.io/tx/",
    });
  });

  it("refuses a RECUR_APP_RPC_URL that is not an http(s) URL, without echoing it whole", () => {
    expect(() => configFor({ ...base, RECUR_RPC_URL: "http://127.0.0.1:8545", RECUR_APP_RPC_URL: "ws://x" })).to.throw("RECUR_APP_RPC_URL: expected an http(s) URL the customer's browser can read the chain from");
  });
});

// `recur serve [--host H] [--port N]`: serves the customer pages (app/: the checkout link and the
// self-service page) with their /config.json, until stopped (SIGINT/SIGTERM). The work is in
// src/app/server.ts; this parses the options and prints where the pages are.
import { existsSync } from "node:fs";

import { getAddress } from "ethers";

import { ethersBuildPath, startAppServer } from "../../app/server.ts";
import type { AppConfig } from "../../app/server.ts";
import { configError, KeeperError } from "../../errors.ts";
import type { Command, Context } from "../command.ts";

const DEFAULT_PORT = 8080;

/** --host: an IPv4/IPv6 address or a host name, 127.0.0.1 by default (the pages are then seen by this
 * machine only). */
function hostOf(ctx: Context): string {
  const raw = ctx.values.host;
  if (raw === undefined) return "127.0.0.1";
  if (typeof raw !== "string" || !/^[A-Za-z0-9.:-]{1,253}$/.test(raw)) throw configError("--host", 'an address to listen on, e.g. "127.0.0.1" or "0.0.0.0"', String(raw));
  return raw;
}

/** --port: 0 to 65535; 0 picks a free port (printed). */
function portOf(ctx: Context): number {
  const raw = ctx.values.port;
  if (raw === undefined) return DEFAULT_PORT;
  if (typeof raw !== "string" || !/^\d{1,5}$/.test(raw) || Number(raw) > 65_535) throw configError("--port", "a port from 0 to 65535 (0: any free port)", String(raw));
  return Number(raw);
}

/** What the pages read from /config.json, from the command's configuration. */
export function appConfigOf(ctx: Context): AppConfig {
  const config = ctx.config;
  if (config.appRpcUrl === null) {
    throw configError("RECUR_APP_RPC_URL", "the JSON-RPC URL the customers' browsers read the chain from (public: no key in it); RECUR_RPC_URL is used only when it is a loopback URL", undefined);
  }
  return {
    chainId: config.chainId.toString(),
    rpcUrl: config.appRpcUrl,
    factory: getAddress(config.factory!),
    factoryBlock: config.factoryBlock.toString(),
    tokens: Object.fromEntries([...config.tokens].map(([symbol, address]) => [address, symbol])),
    explorerTxUrl: config.explorerTxUrl,
  };
}

export const serveCommand: Command = {
  spec: { name: "serve", options: { host: { type: "string" }, port: { type: "string" } }, factory: "required", signer: null, csv: false },
  summary: "serve the customer pages (checkout link, self-service page) and their config, until stopped",
  synopsis: "recur serve [--host 127.0.0.1] [--port 8080] [--json]",
  help: [
    { flag: "--host H", text: "address to listen on, default 127.0.0.1 (this machine only); 0.0.0.0 for every interface" },
    { flag: "--port N", text: "port, default 8080 (RECUR_CHECKOUT_URL's default); 0 picks a free one, printed" },
    { flag: "RECUR_APP_RPC_URL", text: "the JSON-RPC URL the pages read the chain from (public: no key), default RECUR_RPC_URL when it is a loopback URL" },
    { flag: "RECUR_EXPLORER_TX_URL", text: 'the explorer\'s transaction URL, the hash appended ("https://etherscan.io/tx/"); none: hashes without links' },
    { flag: "RECUR_TOKENS", text: 'token symbols the pages show ("USDC=0x…,DAI=0x…"); other tokens are shown with their own symbol, marked as unknown' },
    { flag: "exit codes", text: "0 stopped by a signal; 1 bad configuration or the port is taken; 3 the node is on another chain" },
  ],
  examples: ["recur serve", "recur serve --port 0 --json", "RECUR_APP_RPC_URL=https://rpc.example RECUR_EXPLORER_TX_URL=https://etherscan.io/tx/ recur serve --host 0.0.0.0"],
  async run(ctx) {
    const host = hostOf(ctx);
    const port = portOf(ctx);
    const appConfig = appConfigOf(ctx);
    if (!existsSync(ethersBuildPath())) throw new KeeperError("CONFIG", `ethers: expected its browser build at ${ethersBuildPath()}, got no file there (run npm install)`);
    let started: Awaited<ReturnType<typeof startAppServer>>;
    try {
      started = await startAppServer(appConfig, { host, port });
    } catch (error) {
      ctx.err(`--port: expected a port free on ${host}, got ${port} (${(error as Error).message})`);
      return 1;
    }
    const { server, url } = started;
    const checkout = `${url}/checkout.html?plan=0x…`;
    if (ctx.config.json) ctx.io.stdout.write(JSON.stringify({ event: "serving", url, checkout: `${url}/checkout.html`, manage: `${url}/manage.html`, config: appConfig }) + "\n");
    else ctx.io.stdout.write([`serving the customer pages on ${url} (Ctrl-C stops)`, `  checkout link:     ${checkout}&ref=ORDER-1&periods=12&return=https://…`, `  self-service page: ${url}/manage.html`, `  config:            ${url}/config.json`].join("\n") + "\n");
    await new Promise<void>((resolve) => {
      if (ctx.io.signal.aborted) return resolve();
      ctx.io.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return 0;
  },
};

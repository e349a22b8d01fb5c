// Serves the customer pages (app/: checkout.html, manage.html and their modules) over HTTP, with ethers'
// browser ESM build at /vendor/ethers.js (from node_modules, or app/vendor/ after `npm run app:vendor`)
// and a generated /config.json (chain, read RPC, factory, token symbols, explorer). Only files under
// app/ are served, by their extension's content type; anything else is a 404. `recur serve` is the
// command around it (src/cli/commands/serve.ts).
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** What the pages read from /config.json. Every field is public: it goes to every visitor. */
export interface AppConfig {
  chainId: string;
  rpcUrl: string;
  factory: string;
  factoryBlock: string;
  /** Lowercase token address → the symbol the operator gave it (RECUR_TOKENS). */
  tokens: Record<string, string>;
  /** The explorer's transaction URL the hash is appended to; null: no links. */
  explorerTxUrl: string | null;
}

export const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../app");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** ethers v6's browser ESM build: app/vendor/ethers.js if `npm run app:vendor` put it there, else the
 * installed package's. */
export function ethersBuildPath(appDir = APP_DIR): string {
  const vendored = path.join(appDir, "vendor/ethers.js");
  if (existsSync(vendored)) return vendored;
  // ethers exports no ./package.json: walk up from its entry point to the package folder.
  let dir = path.dirname(createRequire(import.meta.url).resolve("ethers"));
  while (path.basename(dir) !== "ethers" && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, "dist/ethers.min.js");
}

/** The file under `root` that `urlPath` names, or null when it names none (or tries to leave `root`). */
export function resolveUnder(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return null;
  const wanted = path.resolve(root, "." + path.posix.normalize("/" + decoded));
  const realRoot = realpathSync(root);
  if (!existsSync(wanted)) return null;
  const real = realpathSync(wanted);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
  return statSync(real).isFile() ? real : null;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  res.end(body);
}

/** The request handler: GET/HEAD of /config.json, /vendor/ethers.js, or a file under `appDir` ("/" is
 * checkout.html's folder index: manage.html). */
export function handler(config: AppConfig, appDir = APP_DIR): (req: IncomingMessage, res: ServerResponse) => void {
  const configBody = JSON.stringify(config, null, 2) + "\n";
  const ethersPath = ethersBuildPath(appDir);
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
    let pathname: string;
    try {
      pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    } catch {
      return send(res, 400, "text/plain; charset=utf-8", "bad request\n");
    }
    if (pathname === "/config.json") return send(res, 200, CONTENT_TYPES[".json"]!, configBody);
    if (pathname === "/vendor/ethers.js") return send(res, 200, CONTENT_TYPES[".js"]!, readFileSync(ethersPath));
    if (pathname === "/") pathname = "/manage.html";
    const file = resolveUnder(appDir, pathname);
    const type = file === null ? undefined : CONTENT_TYPES[path.extname(file)];
    if (file === null || type === undefined) return send(res, 404, "text/plain; charset=utf-8", "not found\n");
    send(res, 200, type, readFileSync(file));
  };
}

/** Starts the server on `host:port` (0: a free port) and resolves with it and its base URL. */
export async function startAppServer(config: AppConfig, options: { host: string; port: number; appDir?: string }): Promise<{ server: Server; url: string }> {
  const server = createServer(handler(config, options.appDir));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return { server, url: `http://${host}:${port}` };
}

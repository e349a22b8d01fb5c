// The daemon's HTTP listener (node:http, 127.0.0.1 unless the operator asks otherwise): `/metrics` in the
// Prometheus text format, `/healthz` (the process is alive: no RPC call, no store read), `/readyz` (200
// with every check, or 503 naming each failing one: src/ops/ready.ts). GET and HEAD only; anything else
// is 404 (unknown path) or 405 (another method). Closed with the daemon.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { errorMessage, KeeperError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { KeeperMetrics } from "./metrics.ts";
import type { Readiness } from "./ready.ts";

export interface OpsServerDeps {
  host: string;
  /** 0 picks a free port. */
  port: number;
  metrics: KeeperMetrics;
  ready: () => Promise<Readiness>;
  log: Logger;
}

export interface OpsServer {
  /** Where it listens (the real port when 0 was asked for). */
  readonly host: string;
  readonly port: number;
  /** http://host:port, for the log. */
  readonly url: string;
  close(): Promise<void>;
}

const ROUTES = new Set(["/metrics", "/healthz", "/readyz"]);

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "content-length": Buffer.byteLength(body), ...headers }).end(body);
}

const json = (res: ServerResponse, status: number, value: unknown) => send(res, status, "application/json; charset=utf-8", JSON.stringify(value) + "\n");

async function route(deps: OpsServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (!ROUTES.has(path)) return json(res, 404, { error: `no route ${path}: try /metrics, /healthz or /readyz` });
  if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain; charset=utf-8", "only GET and HEAD\n", { allow: "GET, HEAD" });
  if (path === "/healthz") return json(res, 200, { status: "ok" });
  if (path === "/metrics") return send(res, 200, deps.metrics.registry.contentType, await deps.metrics.registry.metrics());
  const readiness = await deps.ready();
  if (readiness.ready) return json(res, 200, { status: "ready", checks: readiness.checks });
  const reason = readiness.failing.map((name) => `${name}: ${readiness.checks[name]!.detail}`).join("; ");
  return json(res, 503, { status: "not_ready", failing: readiness.failing, reason, checks: readiness.checks });
}

/** Starts listening; a port in use or not allowed, or a host that is not this machine's, is a CONFIG
 * error (the keeper stops with one line). */
export async function startOpsServer(deps: OpsServerDeps): Promise<OpsServer> {
  const server = createServer((req, res) => {
    route(deps, req, res).catch((error: unknown) => {
      deps.log.error("http_failed", { path: req.url, error: errorMessage(error) });
      if (!res.headersSent) json(res, 500, { error: errorMessage(error) });
      else res.destroy();
    });
  });
  // A scraper that stalls must not hold a socket for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND" || error.code === "EAI_AGAIN") {
        reject(new KeeperError("CONFIG", `RECUR_METRICS_HOST: expected an address of this machine to listen on, got ${JSON.stringify(deps.host)} (${error.code})`));
        return;
      }
      const why = error.code === "EADDRINUSE" ? "in use" : error.code === "EACCES" ? "not allowed" : errorMessage(error);
      reject(new KeeperError("CONFIG", `RECUR_METRICS_PORT: expected a port free to listen on at ${deps.host}, got ${JSON.stringify(String(deps.port))} (${why})`));
    });
    server.listen(deps.port, deps.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    host: deps.host,
    port: address.port,
    url: `http://${address.family === "IPv6" ? `[${deps.host}]` : deps.host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

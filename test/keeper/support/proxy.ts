// A flaky JSON-RPC endpoint: a small HTTP proxy on 127.0.0.1 in front of a node that fails some
// requests on purpose, deterministically, and counts requests by method. Faults:
// - the first request of each method hangs (never forwarded, never answered) until the client gives
//   up (or `hangMs` passes, then the socket is destroyed);
// - every `failEvery`-th request is forwarded to the node but answered HTTP 502 (the response is lost:
//   a read happened, a transaction was broadcast, and the client does not know);
// - the second eth_sendRawTransaction is forwarded and answered 502 as well, so a "broadcast whose answer
//   was lost" always happens at least once.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";

import { freePort } from "./chain.ts";

export interface FlakyProxy {
  url: string;
  /** requests received, by JSON-RPC method */
  readonly requests: Map<string, number>;
  readonly faults: { hung: number; failed: number; forwarded: number };
  close(): Promise<void>;
}

export async function startFlakyProxy(target: string, options: { failEvery?: number; hangMs?: number } = {}): Promise<FlakyProxy> {
  const failEvery = options.failEvery ?? 3;
  const hangMs = options.hangMs ?? 10_000;
  const requests = new Map<string, number>();
  const faults = { hung: 0, failed: 0, forwarded: 0 };
  const timers = new Set<NodeJS.Timeout>();
  let count = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    let method = "?";
    try {
      const parsed = JSON.parse(body) as { method?: string } | { method?: string }[];
      method = Array.isArray(parsed) ? parsed.map((p) => p.method).join(",") : String(parsed.method);
    } catch {
      // not JSON: forwarded as it is
    }
    const n = ++count;
    const seen = requests.get(method) ?? 0;
    requests.set(method, seen + 1);

    if (seen === 0) {
      // Hang: the client's timeout fires first; the socket is destroyed after `hangMs` at the latest.
      faults.hung++;
      const timer = setTimeout(() => {
        timers.delete(timer);
        res.destroy();
      }, hangMs);
      timers.add(timer);
      res.once("close", () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
      return;
    }
    const loseAnswer = n % failEvery === 0 || (method === "eth_sendRawTransaction" && seen === 1);
    const upstream = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
    const answer = await upstream.text();
    faults.forwarded++;
    if (loseAnswer) {
      faults.failed++;
      res.writeHead(502, { "content-type": "text/plain" }).end("bad gateway");
      return;
    }
    res.writeHead(upstream.status, { "content-type": "application/json" }).end(answer);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end("proxy error");
      else res.destroy();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    faults,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

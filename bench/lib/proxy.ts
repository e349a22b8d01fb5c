// A counting JSON-RPC proxy for benchmarks: listens on 127.0.0.1 (a free port), forwards every request
// body unchanged to the node, and counts the calls by method (a JSON-RPC batch counts each call in it).
// Bounded: request bodies over MAX_BODY are refused, and each forward has a timeout.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const MAX_BODY = 16 * 1024 * 1024;
const FORWARD_TIMEOUT_MS = 120_000;

export interface CountingProxy {
  url: string;
  /** Calls by method since the last `reset()`. */
  readonly calls: Map<string, number>;
  /** HTTP requests since the last `reset()`. */
  requests(): number;
  total(): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<CountingProxy> {
  const calls = new Map<string, number>();
  let requests = 0;

  const count = (body: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      calls.set("(not JSON)", (calls.get("(not JSON)") ?? 0) + 1);
      return;
    }
    for (const item of Array.isArray(parsed) ? parsed : [parsed]) {
      const method = typeof (item as { method?: unknown })?.method === "string" ? (item as { method: string }).method : "(no method)";
      calls.set(method, (calls.get(method) ?? 0) + 1);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks).toString("utf8");
    requests++;
    count(body);
    try {
      const upstream = await fetch(target, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
      });
      const text = await upstream.text();
      res.writeHead(upstream.status, { "content-type": "application/json" }).end(text);
    } catch (error) {
      res.writeHead(502, { "content-type": "text/plain" }).end(`proxy: ${(error as Error).message}`);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    requests: () => requests,
    total: () => [...calls.values()].reduce((a, b) => a + b, 0),
    reset() {
      calls.clear();
      requests = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

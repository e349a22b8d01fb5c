// A JSON-RPC endpoint with a provider's limits on eth_getLogs: a small HTTP proxy on 127.0.0.1 in front
// of a real node that refuses, with the providers' own error objects,
// - a request whose block range is wider than `maxRange` blocks: Infura's answer
//   (code -32602, "range 1000000 exceeds limit of 10000");
// - an answer with more than `maxResults` logs: Alchemy's answer (code -32602, "Log response size
//   exceeded. …", with the range it suggests).
// Every other request is forwarded unchanged. Each eth_getLogs request is recorded with its outcome.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";

import { freePort } from "./chain.ts";

export interface GetLogsRecord {
  fromBlock: bigint;
  toBlock: bigint;
  outcome: "answered" | "range_refused" | "results_refused";
  logs: number;
}

export interface LogCapProxy {
  url: string;
  readonly getLogs: GetLogsRecord[];
  close(): Promise<void>;
}

interface JsonRpcRequest {
  jsonrpc: string;
  id: unknown;
  method: string;
  params?: unknown[];
}

const hex = (n: bigint) => "0x" + n.toString(16);

export async function startLogCapProxy(target: string, limits: { maxRange: bigint; maxResults: number }): Promise<LogCapProxy> {
  const getLogs: GetLogsRecord[] = [];

  const forward = async (body: string): Promise<{ status: number; text: string }> => {
    const upstream = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
    return { status: upstream.status, text: await upstream.text() };
  };

  /** One eth_getLogs request: the answer object (result or the provider's error). */
  const capped = async (request: JsonRpcRequest): Promise<unknown> => {
    const filter = (request.params?.[0] ?? {}) as { fromBlock?: string; toBlock?: string };
    const head = BigInt(((JSON.parse((await forward(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }))).text) as { result: string }).result));
    const blockOf = (tag: string | undefined, fallback: bigint) => (tag === undefined || tag === "latest" ? fallback : tag === "earliest" ? 0n : BigInt(tag));
    const fromBlock = blockOf(filter.fromBlock, head);
    const toBlock = blockOf(filter.toBlock, head);
    const span = toBlock - fromBlock + 1n;
    if (span > limits.maxRange) {
      getLogs.push({ fromBlock, toBlock, outcome: "range_refused", logs: 0 });
      return { jsonrpc: "2.0", id: request.id, error: { code: -32602, message: `range ${span} exceeds limit of ${limits.maxRange}` } };
    }
    const answer = JSON.parse((await forward(JSON.stringify(request))).text) as { result?: unknown[] };
    const logs = answer.result?.length ?? 0;
    if (logs > limits.maxResults) {
      getLogs.push({ fromBlock, toBlock, outcome: "results_refused", logs });
      // Alchemy suggests a range; a quarter of the asked one (at least one block) is as good a guess.
      const suggested = fromBlock + (span / 4n > 0n ? span / 4n : 1n) - 1n;
      return {
        jsonrpc: "2.0",
        id: request.id,
        error: {
          code: -32602,
          message:
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, " +
            `or you can request any block range with a cap of 10K logs in the response. Based on your parameters, this block range should work: [${hex(fromBlock)}, ${hex(suggested)}]`,
        },
      };
    }
    getLogs.push({ fromBlock, toBlock, outcome: "answered", logs });
    return answer;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    let parsed: JsonRpcRequest | undefined;
    try {
      const value = JSON.parse(body) as unknown;
      if (!Array.isArray(value)) parsed = value as JsonRpcRequest;
    } catch {
      // not JSON: forwarded as it is
    }
    if (parsed?.method === "eth_getLogs") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(await capped(parsed)));
      return;
    }
    // Batches are forwarded unchanged: the keeper sends no eth_getLogs in a batch.
    const upstream = await forward(body);
    res.writeHead(upstream.status, { "content-type": "application/json" }).end(upstream.text);
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
    getLogs,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// Serves an in-process Hardhat network over HTTP JSON-RPC on 127.0.0.1, so that a JSON-RPC client (the
// keeper) talks to the same chain as the script that owns it. Used by the demo only.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

interface RequestProvider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

export async function serveRpc(provider: RequestProvider): Promise<{ url: string; close(): Promise<void> }> {
  const answer = async (body: { id?: unknown; method: string; params?: unknown[] }) => {
    try {
      const result = await provider.request({ method: body.method, params: body.params ?? [] });
      return { jsonrpc: "2.0", id: body.id ?? null, result };
    } catch (error) {
      const e = error as { code?: number; message?: string; data?: unknown };
      return { jsonrpc: "2.0", id: body.id ?? null, error: { code: e.code ?? -32603, message: e.message ?? String(error), data: e.data } };
    }
  };
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk: Buffer) => (text += chunk.toString()));
    req.on("end", () => {
      void (async () => {
        const parsed = JSON.parse(text) as Parameters<typeof answer>[0] | Parameters<typeof answer>[0][];
        const reply = Array.isArray(parsed) ? await Promise.all(parsed.map(answer)) : await answer(parsed);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(reply, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

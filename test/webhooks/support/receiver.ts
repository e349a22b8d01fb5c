// A real webhook receiver for the end-to-end tests: node:http on 127.0.0.1, recording every request
// (headers and raw body) and answering as the test says: 2xx, an error status (with Retry-After), a 410,
// or never (a hung receiver); it can also be stopped and started again on the same port (down for a while).
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";

import { Webhook } from "standardwebhooks";

export type Mode = { kind: "ok" } | { kind: "status"; status: number; retryAfter?: string } | { kind: "hang" };

export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  /** The mode it was answered with. */
  answered: Mode["kind"] | number;
}

export interface Receiver {
  url: string;
  port: number;
  /** Every request so far, in arrival order (retries included). */
  readonly requests: Received[];
  mode: Mode | ((r: Received) => Mode);
  /** The requests answered 2xx, one per id (the first), as a receiver that deduplicates by id keeps them. */
  delivered(): Map<string, { body: string; json: { type: string; timestamp: string; data: Record<string, unknown> } }>;
  /** Whether each request's signature verifies with one of `secrets` (the spec's own library). */
  verifies(r: Received, secrets: readonly string[]): boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<Receiver> {
  const requests: Received[] = [];
  const hung = new Set<ServerResponse>();
  let server: Server | undefined;
  const receiver: Receiver = {
    url: "",
    port,
    requests,
    mode: { kind: "ok" },
    delivered() {
      const out = new Map<string, { body: string; json: { type: string; timestamp: string; data: Record<string, unknown> } }>();
      for (const r of requests) if (r.answered === "ok" && !out.has(r.id)) out.set(r.id, { body: r.body, json: JSON.parse(r.body) });
      return out;
    },
    verifies(r, secrets) {
      return secrets.some((s) => {
        try {
          new Webhook(s).verify(r.body, { "webhook-id": r.id, "webhook-timestamp": r.timestamp, "webhook-signature": r.signature });
          return true;
        } catch {
          return false;
        }
      });
    },
    async stop() {
      for (const res of hung) res.destroy();
      hung.clear();
      if (server === undefined) return;
      const s = server;
      server = undefined;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async start() {
      server = createServer((req: IncomingMessage, res: ServerResponse) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const r: Received = {
            id: String(req.headers["webhook-id"]), timestamp: String(req.headers["webhook-timestamp"]), signature: String(req.headers["webhook-signature"]),
            body: Buffer.concat(chunks).toString("utf8"), answered: "ok",
          };
          const mode = typeof receiver.mode === "function" ? receiver.mode(r) : receiver.mode;
          r.answered = mode.kind === "status" ? mode.status : mode.kind;
          requests.push(r);
          if (mode.kind === "hang") {
            hung.add(res);
            return;
          }
          if (mode.kind === "ok") return void res.writeHead(204).end();
          res.writeHead(mode.status, mode.retryAfter === undefined ? {} : { "retry-after": mode.retryAfter }).end("receiver says no");
        });
      });
      await new Promise<void>((resolve) => server!.listen(receiver.port, "127.0.0.1", () => resolve()));
      const address = server.address();
      receiver.port = typeof address === "object" && address !== null ? address.port : receiver.port;
      receiver.url = `http://127.0.0.1:${receiver.port}/hooks`;
    },
  };
  await receiver.start();
  return receiver;
}

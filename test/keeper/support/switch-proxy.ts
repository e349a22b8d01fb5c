// An RPC endpoint that can be taken away and brought back: a plain TCP proxy on 127.0.0.1 in front of a
// real node. `close()` stops listening and cuts every open connection (the client sees the endpoint
// refuse connections); `open()` listens again on the same port.
import { connect, createServer } from "node:net";
import type { Server, Socket } from "node:net";

import { freePort } from "./chain.ts";

export interface SwitchProxy {
  url: string;
  open(): Promise<void>;
  close(): Promise<void>;
}

export async function startSwitchProxy(targetPort: number): Promise<SwitchProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  const open = async () => {
    if (server !== null) return;
    const listening = createServer((client) => {
      const upstream = connect(targetPort, "127.0.0.1");
      track(client);
      track(upstream);
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      listening.once("error", reject);
      listening.listen(port, "127.0.0.1", () => resolve());
    });
    server = listening;
  };
  const close = async () => {
    const closing = server;
    if (closing === null) return;
    server = null;
    const closed = new Promise<void>((resolve) => closing.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await open();
  return { url: `http://127.0.0.1:${port}`, open, close };
}

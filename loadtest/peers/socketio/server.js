// The Socket.IO peer for townhall's load benchmark (loadtest/bench.sh, docs/BENCHMARKS.md):
// what a team would otherwise build the chat with. Citizens join a room; every question,
// vote and comment is given the room's next offset (Redis INCR, so several nodes share one
// sequence) and broadcast to the room through the Redis adapter, then acknowledged to the
// sender with its offset. Clients count misses from the offsets.
//
// Usage: REDIS_URL=redis://127.0.0.1:6379 PORT=0 node server.js
// Prints "socketio listening on http://127.0.0.1:PORT" once ready; stops on SIGTERM/SIGINT.

"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const HOST = process.env.HOST || "127.0.0.1";
const PORT = Number(process.env.PORT || 0);
const MAX_TEXT = 500;
const KINDS = { question: "question", vote: "vote", comment: "comment" };

async function main() {
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  const counter = pub.duplicate();
  for (const c of [pub, sub, counter]) {
    c.on("error", (e) => console.error("redis:", e.message));
  }
  await Promise.all([pub.connect(), sub.connect(), counter.connect()]);
  // A fresh sequence per process start keeps offsets comparable within one run.
  const prefix = `townhall-peer:${process.pid}:${Date.now()}`;

  const server = http.createServer();
  const io = new Server(server, {
    transports: ["websocket"],
    serveClient: false,
    perMessageDeflate: false,
    maxHttpBufferSize: 8 * 1024,
  });
  io.adapter(createAdapter(pub, sub));

  io.on("connection", (socket) => {
    let room = null;
    socket.on("join", async (name, ack) => {
      if (typeof name !== "string" || name.length === 0 || name.length > 64 || room !== null) {
        if (typeof ack === "function") ack({ error: "malformed" });
        return;
      }
      room = name;
      socket.join(room);
      const current = Number((await counter.get(`${prefix}:${room}`)) || 0);
      if (typeof ack === "function") ack({ offset: current });
    });
    for (const event of Object.keys(KINDS)) {
      socket.on(event, async (msg, ack) => {
        const text = msg && typeof msg.text === "string" ? msg.text.trim() : "";
        if (room === null || text.length === 0 || text.length > MAX_TEXT) {
          if (typeof ack === "function") ack({ error: room === null ? "not_joined" : "text_invalid" });
          return;
        }
        const offset = await counter.incr(`${prefix}:${room}`);
        io.to(room).emit("ev", { o: offset, k: KINDS[event], text, at: Date.now() });
        if (typeof ack === "function") ack({ offset });
      });
    }
  });

  server.listen(PORT, HOST, () => {
    const { port } = server.address();
    console.log(`socketio listening on http://${HOST}:${port}`);
  });

  const stop = async () => {
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit(), counter.quit()]);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

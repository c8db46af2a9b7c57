// A compute node written with the relaygate SDK (built code) for fault tests. `work` appends its
// request id to COUNT_FILE synchronously before doing anything else, so every execution is on disk
// even if the process is SIGKILLed right after; then it waits DELAY_MS (honouring abort).
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createNode } from '../../dist/node/index.js';

const countFile = process.env.COUNT_FILE;
const delayMs = Number(process.env.DELAY_MS || 0);
const node = createNode({
  ...(process.env.NODE_ID ? { id: process.env.NODE_ID } : {}),
  functions: {
    async work(req) {
      appendFileSync(countFile, `${req.requestId}\n`);
      const ms = req.payload.length > 0 ? Number(req.text()) || delayMs : delayMs;
      if (ms > 0) await sleep(ms, undefined, { signal: req.signal });
      return { ok: true, node: node.id, requestId: req.requestId };
    },
    echo: (req) => req.payload,
  },
  log: {
    info: (fields, msg) => process.stdout.write(`${JSON.stringify({ ...fields, msg })}\n`),
    error: (fields, msg) => process.stdout.write(`${JSON.stringify({ ...fields, msg })}\n`),
  },
});
const { port } = await node.listen({ port: Number(process.env.PORT || 0), host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ msg: 'listening', port, id: node.id })}\n`);
process.on('SIGTERM', () => { node.drain(5_000).then(() => process.exit(0)); });

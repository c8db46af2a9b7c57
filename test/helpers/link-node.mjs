// A compute node process built with the node SDK, serving HTTP and the binary link, for fault
// tests that kill, stop and drain a real process. Prints JSON lines: "listening" with port and
// linkPort, and "started"/"aborted" with the request id, so tests can see what the node did.
// Run: node test/helpers/link-node.mjs   (needs `npm run build`)
import { setTimeout as sleep } from 'node:timers/promises';
import { createNode, reply } from '../../dist/node/index.js';
import { listenNodeLink } from '../../dist/node/link-server.js';

const say = (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`);

const watched = (fn) => (req) => {
  say({ msg: 'started', requestId: req.requestId });
  req.signal.addEventListener('abort', () => say({ msg: 'aborted', requestId: req.requestId }), { once: true });
  return fn(req);
};

const node = createNode({
  id: process.env.LINK_NODE_ID ?? `link-node-${process.pid}`,
  functions: {
    echo: watched((req) => reply(req.payload, req.contentType)),
    sleep: watched(async (req) => {
      const ms = Number(req.text() || '0');
      await sleep(ms, undefined, { signal: req.signal });
      return reply(`slept ${ms}`, 'text/plain');
    }),
  },
});
const { port } = await node.listen({ host: '127.0.0.1', port: 0 });
const link = await listenNodeLink(node, { host: '127.0.0.1', port: 0 });

process.on('SIGTERM', async () => {
  say({ msg: 'draining' });
  await node.drain(10_000);
  say({ msg: 'drained' });
  process.exit(0);
});

say({ msg: 'listening', port, linkPort: link.port });

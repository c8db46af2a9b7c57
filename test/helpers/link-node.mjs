// A compute node process built with the node SDK, serving HTTP and the binary link, for fault
// tests that kill, stop and drain a real process. Prints JSON lines: "listening" with port and
// linkPort, and "started"/"aborted" with the request id, so tests can see what the node did.
// Run: node test/helpers/link-node.mjs   (needs `npm run build`)
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeError, createNode, reply } from '../../dist/node/index.js';
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
    whoami: watched((req) => ({ subject: req.subject, tenant: req.tenant, metadata: req.metadata, deadlineLeft: req.deadline - Date.now() })),
    sleep: watched(async (req) => {
      const ms = Number(req.text() || '0');
      await sleep(ms, undefined, { signal: req.signal });
      return reply(`slept ${ms}`, 'text/plain');
    }),
    steps: watched(async (req) => {
      const n = Number(req.text() || '3');
      for (let i = 1; i <= n; i++) {
        await sleep(5, undefined, { signal: req.signal });
        req.progress(i / n, `step ${i}`);
      }
      return reply('done', 'text/plain');
    }),
    // "code:retryAfterMs" in the payload: throws that coded error.
    fail: watched((req) => {
      const [code, retryAfter] = req.text().split(':');
      throw new NodeError(Number(code), `failed with ${code}`, { retryAfterMs: Number(retryAfter ?? 0) });
    }),
    crash: watched(() => {
      throw new Error('boom with a secret stack');
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

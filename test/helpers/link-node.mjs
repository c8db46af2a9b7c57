// A compute node process serving only the binary link (the built LinkServer), for fault tests
// that kill, stop and drain a real process. Prints JSON lines: "listening" with linkPort, and
// "started"/"aborted" with the request id, so tests can see what happened at the node.
// Run: node test/helpers/link-node.mjs   (needs `npm run build`)
import { setTimeout as sleep } from 'node:timers/promises';
import { Code, GatewayError } from '../../dist/errors.js';
import { silentLogger } from '../../dist/log.js';
import { LinkServer } from '../../dist/node/link-server.js';

const say = (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`);

const server = await LinkServer.listen({
  host: '127.0.0.1',
  port: 0,
  nodeId: process.env.LINK_NODE_ID ?? `link-node-${process.pid}`,
  weight: 1,
  functions: ['echo', 'sleep'],
  log: silentLogger(),
  run: async (inv) => {
    say({ msg: 'started', requestId: inv.requestId });
    inv.signal.addEventListener('abort', () => say({ msg: 'aborted', requestId: inv.requestId }), { once: true });
    if (inv.function === 'echo') return { payload: inv.payload, contentType: inv.contentType };
    if (inv.function === 'sleep') {
      const ms = Number(Buffer.from(inv.payload).toString() || '0');
      await sleep(ms, undefined, { signal: inv.signal });
      return { payload: Buffer.from(`slept ${ms}`), contentType: 'text/plain' };
    }
    throw new GatewayError(Code.NOT_FOUND, `no function ${inv.function}`);
  },
});

process.on('SIGTERM', async () => {
  say({ msg: 'draining' });
  server.drain('SIGTERM');
  await server.idle();
  await server.close();
  say({ msg: 'drained' });
  process.exit(0);
});

say({ msg: 'listening', linkPort: server.port });

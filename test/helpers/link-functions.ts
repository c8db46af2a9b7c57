// A small function table for node-link tests, in the shape the link server runs.
import { setTimeout as sleep } from 'node:timers/promises';
import { Code, GatewayError } from '../../src/errors.js';
import type { LinkInvocation, LinkReply } from '../../src/node/link-server.js';

/** What the test functions observed at the node. */
export interface NodeObservations {
  started: string[];
  aborted: string[];
}

/** echo, sleep (honours abort), steps (progress), fail (code from payload), crash (plain Error). */
export function testFunctions(seen: NodeObservations = { started: [], aborted: [] }): (inv: LinkInvocation) => Promise<LinkReply> {
  return async (inv) => {
    seen.started.push(inv.requestId);
    inv.signal.addEventListener('abort', () => seen.aborted.push(inv.requestId), { once: true });
    switch (inv.function) {
      case 'echo':
        return { payload: inv.payload, contentType: inv.contentType || 'application/octet-stream' };
      case 'whoami':
        return { payload: Buffer.from(JSON.stringify({ subject: inv.subject, tenant: inv.tenant, metadata: inv.metadata, deadlineLeft: inv.deadlineAtMs - Date.now() })), contentType: 'application/json' };
      case 'sleep': {
        const ms = Number(Buffer.from(inv.payload).toString() || '0');
        await sleep(ms, undefined, { signal: inv.signal });
        return { payload: Buffer.from(`slept ${ms}`), contentType: 'text/plain' };
      }
      case 'steps': {
        const n = Number(Buffer.from(inv.payload).toString() || '3');
        for (let i = 1; i <= n; i++) {
          await sleep(5, undefined, { signal: inv.signal });
          inv.progress(i / n, Buffer.from(`step ${i}`));
        }
        return { payload: Buffer.from('done'), contentType: 'text/plain' };
      }
      case 'fail': {
        const [code, retryAfter] = Buffer.from(inv.payload).toString().split(':');
        throw new GatewayError(Number(code) as Code, `failed with ${code}`, { retryAfterMs: Number(retryAfter ?? 0) });
      }
      case 'crash':
        throw new Error('boom with a secret stack');
      default:
        throw new GatewayError(Code.NOT_FOUND, `no function ${inv.function}`);
    }
  };
}

/** Names announced by the link server for testFunctions. */
export const testFunctionNames = ['echo', 'whoami', 'sleep', 'steps', 'fail', 'crash'];

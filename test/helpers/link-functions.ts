// A small function table for node-link tests, in the SDK's shape (the same table serves HTTP and the link).
import { setTimeout as sleep } from 'node:timers/promises';
import { Code, GatewayError } from '../../src/errors.js';
import { reply, type NodeFunction } from '../../src/node/function-host.js';

/** What the test functions observed at the node. */
export interface NodeObservations {
  started: string[];
  aborted: string[];
}

/** echo, whoami, sleep (honours abort), steps (progress), fail (code:retryAfter from payload), big (N zero bytes), crash (plain Error). */
export function testFunctions(seen: NodeObservations = { started: [], aborted: [] }): Record<string, NodeFunction> {
  const watch = (fn: NodeFunction): NodeFunction => (req) => {
    seen.started.push(req.requestId);
    req.signal.addEventListener('abort', () => seen.aborted.push(req.requestId), { once: true });
    return fn(req);
  };
  return {
    echo: watch((req) => reply(req.payload, req.contentType || 'application/octet-stream')),
    whoami: watch((req) => ({ subject: req.subject, tenant: req.tenant, metadata: req.metadata, deadlineLeft: req.deadline - Date.now() })),
    sleep: watch(async (req) => {
      const ms = Number(req.text() || '0');
      await sleep(ms, undefined, { signal: req.signal });
      return reply(`slept ${ms}`, 'text/plain');
    }),
    steps: watch(async (req) => {
      const n = Number(req.text() || '3');
      for (let i = 1; i <= n; i++) {
        await sleep(5, undefined, { signal: req.signal });
        req.progress(i / n, `step ${i}`);
      }
      return reply('done', 'text/plain');
    }),
    fail: watch((req) => {
      const [code, retryAfter] = req.text().split(':');
      throw new GatewayError(Number(code) as Code, `failed with ${code}`, { retryAfterMs: Number(retryAfter ?? 0) });
    }),
    big: watch((req) => reply(Buffer.alloc(Number(req.text())), 'application/octet-stream')),
    crash: watch(() => {
      throw new Error('boom with a secret stack');
    }),
  };
}

/** Names of testFunctions, as a node announces them. */
export const testFunctionNames = ['echo', 'whoami', 'sleep', 'steps', 'fail', 'big', 'crash'];

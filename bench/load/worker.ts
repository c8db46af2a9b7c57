// Entry of a load-generator worker process (forked by the orchestrator with an IPC channel).
// Commands arrive as {seq, cmd}; each gets one reply {seq, ok, result | error}.
import { Meter } from '../lib/meter.js';
import type { Role, RoleFactory } from './role.js';

const factories: Record<string, () => Promise<RoleFactory>> = {
  'ws-invoke': async () => (await import('./ws-invoke.js')).createWsInvoke,
  'ws-subscribe': async () => (await import('./ws-fanout.js')).createWsSubscribe,
  'ws-publish': async () => (await import('./ws-fanout.js')).createWsPublish,
  'redis-publish': async () => (await import('./redis-publish.js')).createRedisPublish,
  'ws-idle': async () => (await import('./ws-idle.js')).createWsIdle,
  'sio-invoke': async () => (await import('./sio.js')).createSioInvoke,
  'sio-subscribe': async () => (await import('./sio.js')).createSioSubscribe,
  'sio-publish': async () => (await import('./sio.js')).createSioPublish,
  'sio-idle': async () => (await import('./sio.js')).createSioIdle,
  'http-invoke': async () => (await import('./http-invoke.js')).createHttpInvoke,
  autocannon: async () => (await import('./autocannon-run.js')).createAutocannon,
};

interface Command { seq: number; cmd: string; role?: string; config?: Record<string, unknown>; notify?: Record<string, number> }

let role: Role | undefined;
const send = (m: unknown): void => { process.send?.(m); };

async function handle(msg: Command): Promise<unknown> {
  switch (msg.cmd) {
    case 'setup': {
      const factory = factories[msg.role ?? ''];
      if (!factory) throw new Error(`unknown role ${msg.role}`);
      role = (await factory())(msg.config ?? {}, (event) => send({ event }));
      return role.setup();
    }
    case 'start': role?.start(); return {};
    case 'mark': role?.meter.begin(); return {};
    case 'collect': return (role?.meter ?? new Meter()).end();
    case 'run': return role?.run ? role.run() : {};
    case 'stop': await role?.stop(); return {};
    default: throw new Error(`unknown command ${msg.cmd}`);
  }
}

process.on('message', (msg: Command) => {
  if (msg.notify) { role?.notify?.(msg.notify); return; }
  handle(msg).then(
    (result) => send({ seq: msg.seq, ok: true, result }),
    (err: Error) => send({ seq: msg.seq, ok: false, error: err.stack ?? String(err) }),
  );
});
// The orchestrator going away (even killed) ends the worker: no load outlives its run.
process.on('disconnect', () => process.exit(0));

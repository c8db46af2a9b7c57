// Idle authenticated connections: open `connections` (spread over loopback source addresses),
// wait for each one's Welcome, then hold them open answering pings. Measures accept time.
import { RawWs } from '../lib/raw-ws.js';
import { Meter } from '../lib/meter.js';
import { ServerKind, scanServerFrame, type ServerFrameScan } from '../lib/wire.js';
import { openAll, type RoleFactory } from './role.js';

interface Config {
  target: 'gateway' | 'uws';
  host: string;
  port: number;
  token: string;
  connections: number;
  /**
   * The loopback source address of this worker's connections, used with explicit source ports
   * from `portBase` (below the ephemeral range, so the kernel never searches for one); when
   * absent the kernel picks both at connect.
   */
  source?: string;
  portBase?: number;
  concurrency: number;
}

/** Role "ws-idle": ops = connections established; the histogram holds each one's connect-to-Welcome time. */
export const createWsIdle: RoleFactory = (raw) => {
  const cfg = raw as unknown as Config;
  const meter = new Meter();
  const scan: ServerFrameScan = { id: 0, kind: 0, bodyStart: 0, bodyEnd: 0 };
  const conns: RawWs[] = [];
  let dropped = 0;

  const connect = (i: number): Promise<void> => new Promise((resolve) => {
    const t0 = performance.now();
    let settled = false;
    const done = (ok: boolean, c?: RawWs): void => {
      if (settled) return;
      settled = true;
      if (ok && c) { conns.push(c); meter.ops++; meter.histogram.record((performance.now() - t0) * 1000); }
      resolve();
    };
    const gateway = cfg.target === 'gateway';
    new RawWs(
      {
        host: cfg.host, port: cfg.port, path: gateway ? '/v1/ws' : '/sub', localAddress: cfg.source, localPort: cfg.source ? (cfg.portBase ?? 10_000) + i : undefined,
        ...(gateway ? { protocol: 'relaygate.v1.proto', headers: { authorization: `Bearer ${cfg.token}` } } : {}),
      },
      {
        open: (c) => { if (!gateway) done(true, c); },
        message: (c, _op, buf, start, end) => {
          if (scanServerFrame(buf, start, end, scan) && scan.kind === ServerKind.welcome) done(true, c);
        },
        closed: (_c, why) => {
          if (!settled) { meter.error(why.status ? `http-${why.status}` : `connect-${why.error ?? why.code}`); done(false); return; }
          meter.extra.dropped = ++dropped;
        },
      },
      i,
    );
  });

  return {
    meter,
    async setup() {
      meter.begin();
      const t0 = performance.now();
      await openAll(cfg.connections, cfg.concurrency, connect);
      return { connected: conns.length, failed: cfg.connections - conns.length, connectMs: performance.now() - t0 };
    },
    start() {},
    async stop() {
      for (const c of conns) c.reset();
    },
  };
};

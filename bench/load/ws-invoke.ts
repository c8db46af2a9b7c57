// Closed-loop invoke load over raw WebSocket connections: each connection keeps `window`
// Invokes in flight; every answer is re-sent at once, batched into one write per read.
import { RawWs } from '../lib/raw-ws.js';
import { Meter } from '../lib/meter.js';
import { FrameTemplate, MAX_ID, MIN_ID, ServerKind, findVarintField, invokeFrame, scanServerFrame, type ServerFrameScan } from '../lib/wire.js';
import { openAll, type RoleFactory } from './role.js';

interface Config {
  host: string;
  port: number;
  token: string;
  connections: number;
  window: number;
  fn: string;
  payloadBytes: number;
  /** A payload given as text (e.g. the CPU-bound function's argument); overrides payloadBytes. */
  payloadText?: string;
}

interface Conn {
  ws: RawWs;
  template: FrameTemplate;
  sentAt: Float64Array;
  pending: Int32Array;
  npending: number;
  inFlight: number;
}

/** Role "ws-invoke": the gateway's binary subprotocol, `connections` × `window` Invokes in flight. */
export const createWsInvoke: RoleFactory = (raw) => {
  const cfg = raw as unknown as Config;
  if (cfg.window < 1 || cfg.window > MAX_ID - MIN_ID) throw new Error(`window must be 1..${MAX_ID - MIN_ID}`);
  const meter = new Meter();
  const payload = cfg.payloadText !== undefined ? Buffer.from(cfg.payloadText) : Buffer.alloc(cfg.payloadBytes, 0x61);
  const body = invokeFrame(cfg.fn, payload);
  const conns: Conn[] = [];
  const scan: ServerFrameScan = { id: 0, kind: 0, bodyStart: 0, bodyEnd: 0 };
  let running = false;
  let closedEarly = 0;

  const flush = (c: Conn): void => {
    if (c.npending === 0 || !c.ws.open) return;
    const len = c.template.length;
    const out = Buffer.allocUnsafe(len * c.npending);
    const now = performance.now();
    let pos = 0;
    for (let i = 0; i < c.npending; i++) {
      const slot = c.pending[i]!;
      pos = c.template.writeTo(out, pos, MIN_ID + slot);
      c.sentAt[slot] = now;
    }
    c.inFlight += c.npending;
    c.npending = 0;
    c.ws.write(out);
  };

  const connect = (i: number): Promise<void> => new Promise((resolve) => {
    let settled = false;
    const done = (): void => { if (!settled) { settled = true; resolve(); } };
    const ws = new RawWs(
      { host: cfg.host, port: cfg.port, path: '/v1/ws', protocol: 'relaygate.v1.proto', headers: { authorization: `Bearer ${cfg.token}` } },
      {
        open: () => {},
        message: (_ws, _op, buf, start, end) => {
          if (!scanServerFrame(buf, start, end, scan)) { meter.error('malformed'); return; }
          if (scan.kind === ServerKind.welcome) { conns.push(c); done(); return; }
          if (scan.kind !== ServerKind.result && scan.kind !== ServerKind.error) return;
          const slot = scan.id - MIN_ID;
          if (slot < 0 || slot >= cfg.window) { meter.error('unknown-id'); return; }
          c.inFlight--;
          meter.histogram.record((performance.now() - c.sentAt[slot]!) * 1000);
          if (scan.kind === ServerKind.result) meter.ops++;
          else meter.error(`code-${findVarintField(buf, scan.bodyStart, scan.bodyEnd, 1)}`);
          if (running) c.pending[c.npending++] = slot;
        },
        drained: () => flush(c),
        closed: (_ws, why) => {
          if (!settled) { meter.error(why.status ? `http-${why.status}` : 'connect'); done(); return; }
          if (running) { meter.extra.closedEarly = ++closedEarly; meter.error(`close-${why.code ?? why.error}`); }
        },
      },
      i,
    );
    const c: Conn = {
      ws,
      template: new FrameTemplate(body, ws.mask),
      sentAt: new Float64Array(cfg.window),
      pending: new Int32Array(cfg.window),
      npending: 0,
      inFlight: 0,
    };
  });

  return {
    meter,
    async setup() {
      const t0 = performance.now();
      await openAll(cfg.connections, 64, connect);
      return { connected: conns.length, failed: cfg.connections - conns.length, connectMs: performance.now() - t0 };
    },
    start() {
      running = true;
      for (const c of conns) {
        for (let s = 0; s < cfg.window; s++) c.pending[s] = s;
        c.npending = cfg.window;
        flush(c);
      }
    },
    async stop() {
      running = false;
      const deadline = performance.now() + 3000;
      while (conns.some((c) => c.inFlight > 0 && c.ws.open) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const c of conns) c.ws.close();
    },
  };
};

// Fan-out load over raw WebSocket connections: subscribers (the gateway's binary subprotocol, or
// a bare uWS peer with no protocol) and one paced publisher.
import { RawWs } from '../lib/raw-ws.js';
import { Meter, monoUs } from '../lib/meter.js';
import {
  MIN_ID, Opcode, ServerKind, findBytesField, findVarintField, maskedFrame, publishFrame, scanServerFrame, subscribeFrame,
  type ServerFrameScan,
} from '../lib/wire.js';
import { DeliveryTracker, PublishPacer, stampedPayload, type PublishPacing } from './fanout-payload.js';
import { loopbackSources, openAll, type RoleFactory } from './role.js';

/** `gateway`: relaygate.v1.proto with Subscribe/Publish; `uws`: a bare peer (/sub receives, /pub sends, one ack per publish). */
type Target = 'gateway' | 'uws';

interface SubscribeConfig {
  target: Target;
  host: string;
  ports: number[];
  token: string;
  topic: string;
  connections: number;
  /** Loopback source addresses to spread over (0: none bound, see loopbackSources). */
  sources: number;
}

const scanOf = (): ServerFrameScan => ({ id: 0, kind: 0, bodyStart: 0, bodyEnd: 0 });

/** Role "ws-subscribe": `connections` subscribers spread round-robin over `ports`. */
export const createWsSubscribe: RoleFactory = (raw, emit) => {
  const cfg = raw as unknown as SubscribeConfig;
  const meter = new Meter();
  const tracker = new DeliveryTracker(cfg.connections, meter);
  const sources = loopbackSources(cfg.sources);
  const scan = scanOf();
  const conns: RawWs[] = [];
  let subscribed = 0;
  let nowUs = 0;
  let fresh = false; // nowUs is read once per socket read, not per delivery
  const timer = setInterval(() => {
    const min = tracker.progress();
    if (min !== undefined) emit({ type: 'progress', minSeq: min });
  }, 10);

  const connect = (i: number): Promise<void> => new Promise((resolve) => {
    let settled = false;
    const done = (): void => { if (!settled) { settled = true; resolve(); } };
    const port = cfg.ports[i % cfg.ports.length]!;
    const gateway = cfg.target === 'gateway';
    new RawWs(
      {
        host: cfg.host, port, path: gateway ? '/v1/ws' : '/sub', localAddress: sources[i % sources.length],
        ...(gateway ? { protocol: 'relaygate.v1.proto', headers: { authorization: `Bearer ${cfg.token}` } } : {}),
      },
      {
        open: (c) => {
          if (gateway) c.write(maskedFrame(Opcode.binary, subscribeFrame(cfg.topic), c.mask));
          else { conns.push(c); subscribed++; done(); }
        },
        message: (c, _op, buf, start, end) => {
          if (!fresh) { nowUs = monoUs(); fresh = true; }
          if (!gateway) { tracker.delivered(c.index, buf, start, end, nowUs); return; }
          if (!scanServerFrame(buf, start, end, scan)) { meter.error('malformed'); return; }
          if (scan.kind === ServerKind.event) {
            const p = findBytesField(buf, scan.bodyStart, scan.bodyEnd, 2);
            if (p) tracker.delivered(c.index, buf, p[0], p[1], nowUs);
          } else if (scan.kind === ServerKind.ack && scan.id === MIN_ID) { conns.push(c); subscribed++; done(); }
          else if (scan.kind === ServerKind.error) { meter.error(`code-${findVarintField(buf, scan.bodyStart, scan.bodyEnd, 1)}`); done(); }
        },
        drained: () => { fresh = false; },
        closed: (_c, why) => {
          if (!settled) { meter.error(why.status ? `http-${why.status}` : `connect-${why.error ?? why.code}`); done(); return; }
          meter.error(`close-${why.code ?? why.error}`);
        },
      },
      i,
    );
  });

  return {
    meter,
    async setup() {
      const t0 = performance.now();
      await openAll(cfg.connections, 128, connect);
      return { connected: subscribed, failed: cfg.connections - subscribed, connectMs: performance.now() - t0 };
    },
    start() {},
    async stop() {
      clearInterval(timer);
      for (const c of conns) c.close();
    },
  };
};

interface PublishConfig extends PublishPacing {
  target: Target;
  host: string;
  port: number;
  token: string;
  topic: string;
}

/** Role "ws-publish": one connection publishing stamped payloads, paced by acks and by the slowest subscriber. */
export const createWsPublish: RoleFactory = (raw) => {
  const cfg = raw as unknown as PublishConfig;
  const meter = new Meter();
  const pacer = new PublishPacer(cfg.window, cfg.maxLag, cfg.ratePerSec);
  const scan = scanOf();
  const gateway = cfg.target === 'gateway';
  const sentAt = new Float64Array(cfg.window);
  const freeSlots: number[] = Array.from({ length: cfg.window }, (_, i) => i);
  let ws: RawWs | undefined;
  let running = false;
  const ackOrder: number[] = []; // the bare peer acks in order, without ids

  const pump = (): void => {
    if (!running || !ws?.open) return;
    const frames: Buffer[] = [];
    while (pacer.canSend()) {
      const slot = freeSlots.pop()!;
      pacer.sent();
      const payload = stampedPayload(cfg.payloadBytes, pacer.seq);
      if (gateway) {
        const body = publishFrame(cfg.topic, payload);
        body[1] = ((MIN_ID + slot) & 0x7f) | 0x80;
        body[2] = (MIN_ID + slot) >>> 7;
        frames.push(maskedFrame(Opcode.binary, body, ws.mask));
      } else frames.push(maskedFrame(Opcode.binary, payload, ws.mask));
      sentAt[slot] = performance.now();
      pacer.inFlight++;
      if (!gateway) ackOrder.push(slot);
    }
    if (frames.length) ws.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
    meter.extra.published = pacer.seq;
  };

  const acked = (slot: number, ok: boolean, code = 0): void => {
    pacer.inFlight--;
    freeSlots.push(slot);
    meter.histogram.record((performance.now() - sentAt[slot]!) * 1000);
    if (ok) meter.ops++;
    else meter.error(`code-${code}`);
  };

  return {
    meter,
    setup: () => new Promise((resolve, reject) => {
      ws = new RawWs(
        {
          host: cfg.host, port: cfg.port, path: gateway ? '/v1/ws' : '/pub',
          ...(gateway ? { protocol: 'relaygate.v1.proto', headers: { authorization: `Bearer ${cfg.token}` } } : {}),
        },
        {
          open: () => { if (!gateway) resolve({ connected: 1 }); },
          message: (_c, _op, buf, start, end) => {
            if (!gateway) { const slot = ackOrder.shift(); if (slot !== undefined) acked(slot, true); return; }
            if (!scanServerFrame(buf, start, end, scan)) { meter.error('malformed'); return; }
            if (scan.kind === ServerKind.welcome) { resolve({ connected: 1 }); return; }
            const slot = scan.id - MIN_ID;
            if (slot < 0 || slot >= cfg.window) return;
            if (scan.kind === ServerKind.ack) acked(slot, true);
            else if (scan.kind === ServerKind.error) acked(slot, false, findVarintField(buf, scan.bodyStart, scan.bodyEnd, 1));
          },
          drained: () => pump(),
          closed: (_c, why) => {
            if (running) meter.error(`close-${why.code ?? why.error}`);
            reject(new Error(`publisher connection failed: ${JSON.stringify(why)}`));
          },
        },
      );
    }),
    start() { running = true; pacer.start(pump); },
    notify(message) {
      pacer.heard(message);
      pump();
    },
    async stop() {
      running = false;
      pacer.stop();
      ws?.close();
    },
  };
};

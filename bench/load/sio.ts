// Socket.IO load with the stock socket.io-client (websocket transport only), against the
// Socket.IO peer in bench/peers: invoke with acks, subscribe/publish, idle connections.
import { io, type Socket } from 'socket.io-client';
import { Meter, monoUs } from '../lib/meter.js';
import { DeliveryTracker, PublishPacer, stampedPayload, type PublishPacing } from './fanout-payload.js';
import { openAll, type RoleFactory } from './role.js';

interface Common {
  host: string;
  ports: number[];
  token: string;
  connections: number;
}

function connectOne(url: string, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true, timeout: 30_000 });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => { socket.close(); reject(err); });
  });
}

function opener(cfg: Common, meter: Meter, sockets: Socket[], after?: (s: Socket, i: number) => Promise<void>) {
  return async (i: number): Promise<void> => {
    const t0 = performance.now();
    try {
      const s = await connectOne(`http://${cfg.host}:${cfg.ports[i % cfg.ports.length]}`, cfg.token);
      if (after) await after(s, i);
      sockets.push(s);
      meter.histogram.record((performance.now() - t0) * 1000);
    } catch (err) {
      meter.error(`connect-${(err as Error).message}`);
    }
  };
}

interface InvokeResult { payload?: Buffer; error?: { code: string } }

/** Role "sio-invoke": `connections` × `window` invokes in flight, each answered by an ack. */
export const createSioInvoke: RoleFactory = (raw) => {
  const cfg = raw as unknown as Common & { window: number; fn: string; payloadBytes: number; payloadText?: string };
  const meter = new Meter();
  const sockets: Socket[] = [];
  const payload = cfg.payloadText !== undefined ? Buffer.from(cfg.payloadText) : Buffer.alloc(cfg.payloadBytes, 0x61);
  let running = false;
  let inFlight = 0;

  const fire = (s: Socket): void => {
    const t0 = performance.now();
    inFlight++;
    s.emit('invoke', cfg.fn, payload, (res: InvokeResult) => {
      inFlight--;
      meter.histogram.record((performance.now() - t0) * 1000);
      if (res?.error) meter.error(res.error.code);
      else meter.ops++;
      if (running) fire(s);
    });
  };

  return {
    meter,
    async setup() {
      const t0 = performance.now();
      await openAll(cfg.connections, 32, opener(cfg, meter, sockets));
      return { connected: sockets.length, failed: cfg.connections - sockets.length, connectMs: performance.now() - t0 };
    },
    start() {
      running = true;
      for (const s of sockets) for (let w = 0; w < cfg.window; w++) fire(s);
    },
    async stop() {
      running = false;
      const deadline = performance.now() + 3000;
      while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const s of sockets) s.close();
    },
  };
};

/** Role "sio-subscribe": subscribers joined to one room, spread over the peer's instances. */
export const createSioSubscribe: RoleFactory = (raw, emit) => {
  const cfg = raw as unknown as Common & { topic: string };
  const meter = new Meter();
  const tracker = new DeliveryTracker(cfg.connections, meter);
  const sockets: Socket[] = [];
  const timer = setInterval(() => {
    const min = tracker.progress();
    if (min !== undefined) emit({ type: 'progress', minSeq: min });
  }, 10);

  const join = (s: Socket, i: number): Promise<void> => new Promise((resolve, reject) => {
    s.on('event', (payload: Buffer) => tracker.delivered(i, payload, 0, payload.length, monoUs()));
    s.on('disconnect', (reason) => meter.error(`disconnect-${reason}`));
    s.emit('subscribe', cfg.topic, (res: { error?: { code: string } }) => (res?.error ? reject(new Error(res.error.code)) : resolve()));
  });

  return {
    meter,
    async setup() {
      const t0 = performance.now();
      await openAll(cfg.connections, 64, opener(cfg, meter, sockets, join));
      return { connected: sockets.length, failed: cfg.connections - sockets.length, connectMs: performance.now() - t0 };
    },
    start() {},
    async stop() {
      clearInterval(timer);
      for (const s of sockets) s.close();
    },
  };
};

/** Role "sio-publish": one socket publishing stamped payloads, acked after the adapter took them. */
export const createSioPublish: RoleFactory = (raw) => {
  const cfg = raw as unknown as Common & PublishPacing & { topic: string };
  const meter = new Meter();
  const pacer = new PublishPacer(cfg.window, cfg.maxLag, cfg.ratePerSec);
  let socket: Socket | undefined;
  let running = false;

  const pump = (): void => {
    while (running && socket && pacer.canSend()) {
      const t0 = performance.now();
      pacer.inFlight++;
      pacer.sent();
      socket.emit('publish', cfg.topic, stampedPayload(cfg.payloadBytes, pacer.seq), (res: { error?: { code: string } }) => {
        pacer.inFlight--;
        meter.histogram.record((performance.now() - t0) * 1000);
        if (res?.error) meter.error(res.error.code);
        else meter.ops++;
        pump();
      });
    }
    meter.extra.published = pacer.seq;
  };

  return {
    meter,
    async setup() {
      socket = await connectOne(`http://${cfg.host}:${cfg.ports[0]}`, cfg.token);
      return { connected: 1 };
    },
    start() { running = true; pacer.start(pump); },
    notify(message) {
      pacer.heard(message);
      pump();
    },
    async stop() {
      running = false;
      pacer.stop();
      socket?.close();
    },
  };
};

/** Role "sio-idle": idle authenticated Socket.IO connections. */
export const createSioIdle: RoleFactory = (raw) => {
  const cfg = raw as unknown as Common & { concurrency: number };
  const meter = new Meter();
  const sockets: Socket[] = [];
  return {
    meter,
    async setup() {
      meter.begin();
      const t0 = performance.now();
      await openAll(cfg.connections, cfg.concurrency, opener(cfg, meter, sockets));
      meter.ops = sockets.length;
      return { connected: sockets.length, failed: cfg.connections - sockets.length, connectMs: performance.now() - t0 };
    },
    start() {},
    async stop() {
      for (const s of sockets) s.close();
    },
  };
};

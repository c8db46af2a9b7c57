// The node called directly over HTTP/1.1 with undici, as a gateway would: a keep-alive Pool and
// Pool.dispatch with a minimal handler (the cheapest undici API), `inFlight` requests outstanding.
import { Pool } from 'undici';
import { Meter } from '../lib/meter.js';
import type { RoleFactory } from './role.js';

interface Config {
  url: string;
  connections: number;
  inFlight: number;
  fn: string;
  payloadBytes: number;
  /** A payload given as text (e.g. the CPU-bound function's argument); overrides payloadBytes. */
  payloadText?: string;
  /** Extra request headers (a bearer token when the target is the gateway's HTTP bridge). */
  headers?: Record<string, string>;
}

/** Role "http-invoke": POST /v1/invoke/<fn> in a closed loop. */
export const createHttpInvoke: RoleFactory = (raw) => {
  const cfg = raw as unknown as Config;
  const meter = new Meter();
  const pool = new Pool(cfg.url, { connections: cfg.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const body = cfg.payloadText !== undefined ? Buffer.from(cfg.payloadText) : Buffer.alloc(cfg.payloadBytes, 0x61);
  const path = `/v1/invoke/${cfg.fn}`;
  const headers = { 'content-type': 'application/octet-stream', ...cfg.headers };
  let running = false;
  let inFlight = 0;

  const fire = (): void => {
    const t0 = performance.now();
    let status = 0;
    inFlight++;
    const finish = (ok: boolean, kind: string): void => {
      inFlight--;
      meter.histogram.record((performance.now() - t0) * 1000);
      if (ok) meter.ops++;
      else meter.error(kind);
      if (running) fire();
    };
    pool.dispatch({ origin: cfg.url, path, method: 'POST', headers, body }, {
      onConnect() {},
      onHeaders(statusCode: number) { status = statusCode; return true; },
      onData() { return true; },
      onComplete() { finish(status === 200, `http-${status}`); },
      onError(err: Error) { finish(false, err.name); },
    } as never);
  };

  return {
    meter,
    async setup() {
      return { connected: cfg.connections };
    },
    start() {
      running = true;
      for (let i = 0; i < cfg.inFlight; i++) fire();
    },
    async stop() {
      running = false;
      const deadline = performance.now() + 3000;
      while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await pool.destroy();
    },
  };
};

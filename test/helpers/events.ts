// Events end to end: gateway processes sharing a Redis, and what subscribers received.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { spawnGateway, testToken, type GatewayProcess } from './gateway.js';
import { TestClient, type Received } from './ws-client.js';

/** A unique channel/key prefix so tests on a shared Redis never see each other. */
export function uniquePrefix(): string {
  return `rgtest-${randomBytes(4).toString('hex')}`;
}

export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** GET /readyz of a gateway: status and whether its bus is ready. */
export async function readyz(port: number): Promise<{ status: number; bus: boolean }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    const body = (await res.json()) as { bus?: boolean };
    return { status: res.status, bus: body.bus === true };
  } catch {
    return { status: 0, bus: false };
  }
}

/** Spawns `count` gateway processes with the same settings and waits until each one's bus is ready. */
export async function startGateways(count: number, env: Record<string, string>): Promise<GatewayProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => spawnGateway({
    RELAYGATE_BUS_HEARTBEAT: '200ms',
    RELAYGATE_BUS_PROBE: '300ms',
    ...env,
  })));
  const gateways = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  try {
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const g of gateways) await until(`gateway ${g.port} bus ready`, async () => (await readyz(g.port)).bus);
  } catch (err) {
    // Leave no process behind when the set cannot start.
    await stopGateways(gateways);
    throw err;
  }
  return gateways;
}

/** Kills gateways and waits for them to exit. */
export async function stopGateways(gateways: GatewayProcess[]): Promise<void> {
  await Promise.all(gateways.map(async (g) => {
    g.kill('SIGKILL');
    await g.exited;
  }));
}

export function wsUrl(g: GatewayProcess): string {
  return `ws://127.0.0.1:${g.port}/v1/ws`;
}

/** Connects with a token for `tenant` (default grants: everything). */
export async function connect(g: GatewayProcess, o: { tenant?: string; scope?: string; sub?: string; subprotocol?: 'proto' | 'json' } = {}): Promise<TestClient> {
  const token = await testToken({ ...(o.tenant ? { tenant: o.tenant } : {}), ...(o.scope ? { scope: o.scope } : {}), ...(o.sub ? { sub: o.sub } : {}) });
  return TestClient.connect(wsUrl(g), { token, subprotocol: o.subprotocol ?? 'proto' });
}

/** The connections a test file opens, terminated together at its end. */
export class Clients {
  private readonly all: TestClient[] = [];

  async open(...args: Parameters<typeof connect>): Promise<TestClient> {
    const c = await connect(...args);
    this.all.push(c);
    return c;
  }

  closeAll(): void {
    for (const c of this.all.splice(0)) c.terminate();
  }
}

/**
 * Starts `count` gateways (settings from `env`, read when they start) before the tests of the
 * enclosing describe, and stops them and the clients opened through `clients` after.
 */
export function gatewaysFor(count: number, env: () => Record<string, string>): { gateways: GatewayProcess[]; clients: Clients } {
  const context = { gateways: [] as GatewayProcess[], clients: new Clients() };
  beforeAll(async () => {
    context.gateways.push(...(await startGateways(count, env())));
  }, 90_000);
  afterAll(async () => {
    context.clients.closeAll();
    await stopGateways(context.gateways);
  });
  return context;
}

let nextId = 1;
/** A request id unique within this test process. */
export function id(): number {
  return nextId++;
}

export interface Position { offset: number; epoch: string }

/** Reads a StreamPosition from a frame body in either subprotocol. */
export function positionOf(p: unknown): Position | undefined {
  if (!p || typeof p !== 'object') return undefined;
  const o = p as { offset?: unknown; epoch?: unknown };
  return { offset: Number(o.offset ?? 0), epoch: String(o.epoch ?? '') };
}

/** Subscribes and returns the Ack body (throws on an Error answer). */
export async function subscribe(c: TestClient, topic: string, o: { recover?: boolean; since?: Position } = {}): Promise<{ position?: Position; replayed: number; recovered: boolean }> {
  const reply = await c.request({
    id: id(),
    subscribe: { topic, ...(o.recover ? { recover: true } : {}), ...(o.since ? { since: { offset: String(o.since.offset), epoch: o.since.epoch } } : {}) },
  });
  if (reply.kind !== 'ack') throw new Error(`subscribe ${topic} answered ${reply.kind}: ${JSON.stringify(reply.body)}`);
  const position = positionOf(reply.body.position);
  return { ...(position ? { position } : {}), replayed: Number(reply.body.replayed ?? 0), recovered: reply.body.recovered === true };
}

/** Publishes over WebSocket and returns the answer frame. */
export function publish(c: TestClient, topic: string, text: string): Promise<Received> {
  const payload = Buffer.from(text).toString('base64');
  return c.request({ id: id(), publish: { topic, payload, contentType: 'text/plain' } });
}

/** POST /v1/publish/<topic>. */
export async function httpPublish(g: GatewayProcess, token: string | undefined, topic: string, text: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${g.port}/v1/publish/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: text,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function payloadText(body: Record<string, unknown>): string {
  const p = body.payload;
  if (typeof p === 'string') return Buffer.from(p, 'base64').toString();
  if (p instanceof Uint8Array) return Buffer.from(p).toString();
  return '';
}

/** One received event, normalized. */
export interface SeenEvent { topic: string; text: string; position?: Position }

/** Every Event frame received so far on `topic` (left in the queue). */
export function eventsOf(c: TestClient, topic?: string): SeenEvent[] {
  const out: SeenEvent[] = [];
  for (const f of c.received) {
    if (f.kind !== 'event') continue;
    const t = String(f.body.topic ?? '');
    if (topic !== undefined && t !== topic) continue;
    const position = positionOf(f.body.position);
    out.push({ topic: t, text: payloadText(f.body), ...(position ? { position } : {}) });
  }
  return out;
}

/** Waits until `c` holds at least `count` events on `topic`. */
export async function waitEvents(c: TestClient, topic: string, count: number, timeoutMs = 20_000): Promise<SeenEvent[]> {
  let closed: { code: number; reason: string } | undefined;
  void c.closed.then((info) => { closed = info; });
  await until(`${count} events on ${topic}`, () => {
    const have = eventsOf(c, topic).length;
    if (have < count && closed) throw new Error(`connection closed (${closed.code} ${closed.reason}) after ${have} of ${count} events on ${topic}`);
    return have >= count;
  }, timeoutMs);
  return eventsOf(c, topic);
}

/** Records the kind of every frame `c` receives from now on, in arrival order (replies included). */
export function recordKinds(c: TestClient): string[] {
  const out: string[] = [];
  // Runs right after the client's own listener queued the frame.
  c.ws.on('message', () => {
    const f = c.received[c.received.length - 1];
    if (f) out.push(f.kind);
  });
  return out;
}

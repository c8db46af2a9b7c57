// Peer: the same gateway built the usual way on Socket.IO, written as carefully as our own — JWT
// (HS256, jose) checked once at connect, grants checked per request, invokes forwarded to compute
// nodes with undici (Pool.dispatch, minimal handler, least in-flight node), answered by acks;
// rooms for topics, fanned out across instances by @socket.io/redis-adapter when Redis is set.
// Settings: BENCH_PORT (default 0), BENCH_JWT_SECRET, BENCH_NODES (comma list of base URLs),
// BENCH_REDIS_URL (optional), BENCH_NODE_CONNECTIONS (default 100).
import { createServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { jwtVerify } from 'jose';

const secret = new TextEncoder().encode(process.env.BENCH_JWT_SECRET ?? '');
const nodeUrls = (process.env.BENCH_NODES ?? '').split(',').filter(Boolean);
const connections = Number(process.env.BENCH_NODE_CONNECTIONS ?? 100);

interface NodeRef { url: string; pool: Pool; inFlight: number }
const nodes: NodeRef[] = nodeUrls.map((url) => ({ url, pool: new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 }), inFlight: 0 }));

/** Grant patterns of the token's scope, as in the spec: `*` one segment, trailing `**` the rest. */
function compile(scope: string, kind: string): RegExp[] {
  return scope.split(' ').filter((g) => g.startsWith(`${kind}:`)).map((g) => {
    const pattern = g.slice(kind.length + 1).split('/').map((seg) => (seg === '**' ? '.+' : seg === '*' ? '[^/]+' : seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))).join('/');
    return new RegExp(`^${pattern}$`);
  });
}

interface Grants { invoke: RegExp[]; subscribe: RegExp[]; publish: RegExp[]; sub: string }
const allowed = (patterns: RegExp[], name: string): boolean => patterns.some((p) => p.test(name));
type Ack = (reply: unknown) => void;
const denied = (ack: Ack, what: string): void => ack({ error: { code: 'PERMISSION_DENIED', message: `${what} not granted` } });

const httpServer = createServer();
const io = new Server(httpServer, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 1 << 20 });

if (process.env.BENCH_REDIS_URL) {
  const pub = new Redis(process.env.BENCH_REDIS_URL);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
}

io.use((socket, next) => {
  const token = (socket.handshake.auth as { token?: string }).token;
  if (!token) { next(new Error('UNAUTHENTICATED')); return; }
  jwtVerify(token, secret, { algorithms: ['HS256'] }).then(({ payload }) => {
    const scope = typeof payload.scope === 'string' ? payload.scope : '';
    const grants: Grants = { invoke: compile(scope, 'invoke'), subscribe: compile(scope, 'subscribe'), publish: compile(scope, 'publish'), sub: String(payload.sub) };
    socket.data.grants = grants;
    next();
  }, () => next(new Error('UNAUTHENTICATED')));
});

function forward(fn: string, payload: Buffer, sub: string, ack: Ack): void {
  let node = nodes[0];
  for (const n of nodes) if (n.inFlight < node!.inFlight) node = n;
  if (!node) { ack({ error: { code: 'UNAVAILABLE', message: 'no compute node' } }); return; }
  const n = node;
  n.inFlight++;
  const chunks: Buffer[] = [];
  let status = 0;
  n.pool.dispatch({
    origin: n.url, path: `/v1/invoke/${encodeURIComponent(fn)}`, method: 'POST', body: payload,
    headers: { 'content-type': 'application/octet-stream', 'x-relaygate-subject': sub, 'x-relaygate-deadline-ms': '30000' },
    headersTimeout: 30_000, bodyTimeout: 30_000,
  }, {
    onConnect() {},
    onHeaders(statusCode: number) { status = statusCode; return true; },
    onData(chunk: Buffer) { chunks.push(chunk); return true; },
    onComplete() {
      n.inFlight--;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (status === 200) ack({ payload: body });
      else ack({ error: { code: status === 404 ? 'NOT_FOUND' : status === 429 ? 'RESOURCE_EXHAUSTED' : 'INTERNAL', message: `node answered ${status}` } });
    },
    onError(err: Error) {
      n.inFlight--;
      ack({ error: { code: 'UNAVAILABLE', message: err.message } });
    },
  } as never);
}

io.on('connection', (socket: Socket) => {
  const grants = socket.data.grants as Grants;
  socket.on('invoke', (fn: string, payload: Buffer, ack: Ack) => {
    if (typeof ack !== 'function') return;
    if (typeof fn !== 'string' || !allowed(grants.invoke, fn)) { denied(ack, `invoke ${fn}`); return; }
    forward(fn, Buffer.isBuffer(payload) ? payload : Buffer.from(String(payload ?? '')), grants.sub, ack);
  });
  socket.on('subscribe', (topic: string, ack: Ack) => {
    if (typeof ack !== 'function') return;
    if (typeof topic !== 'string' || !allowed(grants.subscribe, topic)) { denied(ack, `subscribe ${topic}`); return; }
    void socket.join(topic);
    ack({});
  });
  socket.on('unsubscribe', (topic: string, ack?: Ack) => {
    void socket.leave(String(topic));
    if (typeof ack === 'function') ack({});
  });
  socket.on('publish', (topic: string, payload: Buffer, ack: Ack) => {
    if (typeof ack !== 'function') return;
    if (typeof topic !== 'string' || !allowed(grants.publish, topic)) { denied(ack, `publish ${topic}`); return; }
    io.to(topic).emit('event', payload);
    ack({});
  });
});

httpServer.listen(Number(process.env.BENCH_PORT ?? 0), '127.0.0.1', () => {
  const address = httpServer.address();
  console.log(JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address ? address.port : 0 }));
});
process.once('SIGTERM', () => {
  void io.close();
  for (const n of nodes) void n.pool.close();
  setTimeout(() => process.exit(0), 200).unref();
});

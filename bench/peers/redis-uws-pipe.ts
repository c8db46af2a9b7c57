// Baseline: the bare "Redis → ioredis → uWS publish" pipe — what any Redis-fed uWS gateway pays at
// least, with no protocol, auth or bookkeeping. One SUBSCRIBE; each message (a Buffer) goes to
// uWS publish as is. /sub connections are subscribed on open.
// Settings: BENCH_PORT (default 0), BENCH_REDIS_URL, BENCH_CHANNEL (default "bench").
import uWS from 'uWebSockets.js';
import { Redis } from 'ioredis';

const channel = process.env.BENCH_CHANNEL ?? 'bench';
const redisUrl = process.env.BENCH_REDIS_URL;
if (!redisUrl) { console.error('redis-uws-pipe: BENCH_REDIS_URL is required'); process.exit(2); }

const app = uWS.App();
app.ws('/sub', {
  maxPayloadLength: 1 << 20, maxBackpressure: 64 << 20, closeOnBackpressureLimit: 0, idleTimeout: 0,
  open: (ws) => { ws.subscribe(channel); },
});

const sub = new Redis(redisUrl);
sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
  app.publish(channel, message, true);
});
await sub.subscribe(channel);

let listenSocket: uWS.us_listen_socket | undefined;
app.listen('127.0.0.1', Number(process.env.BENCH_PORT ?? 0), (token) => {
  if (!token) { console.error('redis-uws-pipe: cannot listen'); process.exit(1); }
  listenSocket = token;
  console.log(JSON.stringify({ msg: 'listening', port: uWS.us_socket_local_port(token) }));
});
process.once('SIGTERM', () => {
  if (listenSocket) uWS.us_listen_socket_close(listenSocket);
  sub.disconnect();

  process.exit(0);
});

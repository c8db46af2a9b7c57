// Peer: bare uWebSockets.js topics with no Redis, no protocol and no auth — the fan-out ceiling
// of this machine. /sub connections are subscribed to one topic on open; every binary message a
// /pub connection sends is published to it as is, and acknowledged with one empty message.
// Settings: BENCH_PORT (default 0), BENCH_TOPIC (default "bench").
import uWS from 'uWebSockets.js';

const topic = process.env.BENCH_TOPIC ?? 'bench';
const app = uWS.App();
const ack = new Uint8Array(0);
const roomy = { maxPayloadLength: 1 << 20, maxBackpressure: 64 << 20, closeOnBackpressureLimit: 0, idleTimeout: 0 };

app.ws('/sub', { ...roomy, open: (ws) => { ws.subscribe(topic); } });
app.ws('/pub', {
  ...roomy,
  message: (ws, message) => {
    app.publish(topic, message, true);
    ws.send(ack, true);
  },
});

let listenSocket: uWS.us_listen_socket | undefined;
app.listen('127.0.0.1', Number(process.env.BENCH_PORT ?? 0), (token) => {
  if (!token) { console.error('uws-topics: cannot listen'); process.exit(1); }
  listenSocket = token;
  console.log(JSON.stringify({ msg: 'listening', port: uWS.us_socket_local_port(token) }));
});
process.once('SIGTERM', () => {
  if (listenSocket) uWS.us_listen_socket_close(listenSocket);

  process.exit(0);
});

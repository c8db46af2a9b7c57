// A compute node written with plain node:http and nothing from relaygate: the HTTP contract of
// docs/compute.md, implemented by hand. `add` returns a + b from a JSON body {"a":..,"b":..}.
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';

const failStatus = Number(process.env.FAIL_STATUS || 0);
const countFile = process.env.COUNT_FILE || '';
const delayMs = Number(process.env.DELAY_MS || 0);
let nodeId = process.env.NODE_ID || '';

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  const match = /^\/v1\/invoke\/([A-Za-z0-9._-]+)$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !match) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"code":"NOT_FOUND","message":"no such route"}');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const requestId = req.headers['x-relaygate-request-id'] ?? '';
    if (countFile) appendFileSync(countFile, `${requestId}\n`);
    const answer = () => {
      if (failStatus) {
        res.writeHead(failStatus, { 'content-type': 'application/json', 'x-relaygate-node-id': nodeId, 'retry-after': '2' });
        res.end(JSON.stringify({ code: 'UNAVAILABLE', message: 'plain node refuses work' }));
        return;
      }
      if (match[1] !== 'add') {
        res.writeHead(404, { 'content-type': 'application/json', 'x-relaygate-node-id': nodeId });
        res.end(JSON.stringify({ code: 'NOT_FOUND', message: `no function ${match[1]}` }));
        return;
      }
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json', 'x-relaygate-node-id': nodeId });
        res.end(JSON.stringify({ code: 'INVALID_ARGUMENT', message: 'body must be JSON {"a":number,"b":number}' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-relaygate-node-id': nodeId });
      res.end(JSON.stringify({ sum: body.a + body.b, tenant: req.headers['x-relaygate-tenant'] ?? '', subject: req.headers['x-relaygate-subject'] ?? '', deadlineMs: Number(req.headers['x-relaygate-deadline-ms'] ?? 0), meta: req.headers['x-relaygate-meta-trace'] ?? '' }));
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  if (!nodeId) nodeId = `plain-${port}`;
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

// Gateway-side CPU per forwarded invoke: the compute service (balancer + HTTP node link) in this
// process against one reference node process, echo of 64 bytes at a fixed concurrency. Prints the
// CPU microseconds this process spent per invoke. Needs `npm run build`.
//   INVOKES=40000 CONCURRENCY=64 node bench/compute-link-cpu.mjs
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { NodePoolCompute, computeOptionsFrom } = await import(`${root}dist/balancer/compute-service.js`);
const { loadSettings } = await import(`${root}dist/config.js`);
const { silentLogger } = await import(`${root}dist/log.js`);

const invokes = Number(process.env.INVOKES ?? 40_000);
const concurrency = Number(process.env.CONCURRENCY ?? 64);
const node = spawn(process.execPath, [`${root}dist/cli/main.js`, 'node', '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => {
  let buffered = '';
  node.stdout.on('data', (d) => {
    buffered += d;
    const match = buffered.match(/"port":(\d+)/);
    if (match) resolve(Number(match[1]));
  });
});
const { values } = loadSettings('gateway', { RELAYGATE_NODES: `http://127.0.0.1:${port}` }, []);
const compute = new NodePoolCompute(computeOptionsFrom(values), silentLogger());
const payload = Buffer.alloc(64, 97);
let seq = 0;

function one() {
  return new Promise((resolve, reject) => {
    compute.invoke(
      { requestId: `r${++seq}`, function: 'echo', payload, contentType: 'application/octet-stream', deadlineAtMs: Date.now() + 10_000, subject: 's', tenant: 't', metadata: {}, signal: new AbortController().signal },
      { progress() {}, result: resolve, error: reject },
    );
  });
}

async function run(n) {
  let left = n;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (left-- > 0) await one(); }));
}

await run(5_000); // warm-up: connections open, code optimized
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await run(invokes);
const cpu = process.cpuUsage(cpu0);
const ms = performance.now() - t0;
console.log(JSON.stringify({
  invokes,
  concurrency,
  invokesPerSec: Math.round((invokes / ms) * 1000),
  gatewayCpuUsPerInvoke: Number(((cpu.user + cpu.system) / invokes).toFixed(1)),
}));
await compute.close();
node.kill('SIGKILL');

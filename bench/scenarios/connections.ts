// connections: idle authenticated connections opened in steps up to what one gateway process
// holds (open files are capped per process, so clients spread over worker processes and loopback
// source addresses): server RSS per connection and the time to accept each step, vs Socket.IO
// and a bare uWS server.
import type { BenchContext } from '../lib/context.js';
import { procSample, type LoadWorker, type Server } from '../lib/procs.js';
import { ratio, type ScenarioResult, type Table } from '../lib/report.js';
import { barChart, compact } from '../lib/svg.js';
import { split, startWorkers, total } from './common.js';

const PER_WORKER = 19_000; // under the 20,000 open files of a process

/** One step's figures. */
export interface StepResult {
  system: string;
  connections: number;
  attempted: number;
  failed: number;
  acceptMs: number;
  acceptsPerSec: number;
  rssBytes: number;
  rssPerConnBytes: number;
  serverCpuMsPerConn: number;
  /** JS heap in use per connection (from the gateway's /metrics), where the server exposes it. */
  heapPerConnBytes?: number;
}

/** nodejs_heap_size_used_bytes from a Prometheus endpoint, or undefined. */
async function heapUsed(port: number): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch { return undefined; }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function settle(pid: number): Promise<number> {
  // RSS after the accept burst settles: wait until two samples 500 ms apart agree within 1 %.
  let last = procSample(pid).rssBytes;
  for (let i = 0; i < 10; i++) {
    await sleep(500);
    const now = procSample(pid).rssBytes;
    if (Math.abs(now - last) <= last * 0.01) return now;
    last = now;
  }
  return last;
}

export async function connections(ctx: BenchContext): Promise<ScenarioResult> {
  const p = ctx.params;
  const token = await ctx.token('invoke:* subscribe:bench/**');
  const steps: StepResult[] = [];
  const notes: string[] = [];
  let sourceIndex = 0;
  const runBase = 1 + Math.floor(Math.random() * 250); // a fresh 127.0.x.0/24 per run: no leftovers of an earlier run

  const climb = async (system: string, server: Server, role: string, config: Record<string, unknown>, maxConns: number, metrics = false): Promise<void> => {
    ctx.log(` ${system}`);
    const workers: LoadWorker[] = [];
    try {
      await sleep(1000);
      const rss0 = procSample(server.pid).rssBytes;
      const heap0 = metrics ? await heapUsed(server.port) : undefined;
      let current = 0;
      for (const step of p.connectionSteps.filter((s) => s <= maxConns)) {
        const need = step - current;
        if (need <= 0) continue;
        const cpu0 = procSample(server.pid).cpuMs;
        const shares = split(need, Math.ceil(need / PER_WORKER));
        // Each raw worker connects from its own loopback address with explicit source ports: with
        // tens of thousands of sockets (and TIME_WAITs) the kernel's own port search gets slow and fails.
        const started = await startWorkers('idle', role, shares, (_i, share) => ({
          ...config, connections: share, concurrency: 256, source: `127.0.${runBase}.${(sourceIndex++ % 250) + 2}`, portBase: 10_000,
        }));
        workers.push(...started.workers);
        const connected = total(started.info, 'connected');
        const acceptMs = Math.max(...started.info.map((i) => i.connectMs ?? 0));
        current += connected;
        const rss = await settle(server.pid);
        const cpuMs = procSample(server.pid).cpuMs - cpu0;
        const heap = heap0 !== undefined ? await heapUsed(server.port) : undefined;
        const r: StepResult = {
          system, connections: current, attempted: step, failed: need - connected, acceptMs, acceptsPerSec: acceptMs > 0 ? (connected * 1000) / acceptMs : 0,
          rssBytes: rss, rssPerConnBytes: current > 0 ? (rss - rss0) / current : 0, serverCpuMsPerConn: connected > 0 ? cpuMs / connected : 0,
          ...(heap !== undefined && heap0 !== undefined && current > 0 ? { heapPerConnBytes: (heap - heap0) / current } : {}),
        };
        steps.push(r);
        ctx.log(`  ${current} connections: ${(r.rssPerConnBytes / 1024).toFixed(2)} KiB each, ${Math.round(r.acceptsPerSec)} accepts/s, ${r.failed} failed`);
        if (connected < need) {
          notes.push(`${system}: ${need - connected} of ${need} connections failed at the ${step} step; ${current} is what it held.`);
          break;
        }
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await server.stop();
    }
  };

  if (ctx.wants('relaygate')) {
    const gateway = await ctx.gateway('gateway', { RELAYGATE_IDLE_TIMEOUT: '120s' });
    await climb('relaygate', gateway, 'ws-idle', { target: 'gateway', host: '127.0.0.1', port: gateway.port, token }, Infinity, true);
  }
  if (ctx.wants('socket.io')) {
    const sio = await ctx.peer('socket.io', 'sio-gateway.js', { BENCH_JWT_SECRET: ctx.secret });
    await climb('socket.io', sio, 'sio-idle', { host: '127.0.0.1', ports: [sio.port], token }, p.socketIoConnectionMax);
  }
  if (ctx.wants('uws')) {
    const uws = await ctx.peer('bare uWS', 'uws-topics.js', {});
    await climb('bare uWS', uws, 'ws-idle', { target: 'uws', host: '127.0.0.1', port: uws.port, token: '' }, Infinity);
  }

  const top = (system: string): StepResult | undefined => steps.filter((s) => s.system === system).at(-1);
  const ours = top('relaygate');
  const table: Table = {
    title: '',
    columns: ['system', 'connections held', 'accepted in', 'accepts/s', 'server RSS', 'RSS per connection', 'of which JS heap', 'server CPU per accept', 'failed'],
    rows: steps.map((s) => [
      s.system, s.connections.toLocaleString('en'), `${(s.acceptMs / 1000).toFixed(2)} s`, compact(s.acceptsPerSec), `${(s.rssBytes / 2 ** 20).toFixed(1)} MiB`,
      `${(s.rssPerConnBytes / 1024).toFixed(2)} KiB`, s.heapPerConnBytes !== undefined ? `${(s.heapPerConnBytes / 1024).toFixed(2)} KiB` : '—',
      `${(s.serverCpuMsPerConn * 1000).toFixed(0)} µs`, s.failed,
    ]),
  };
  const tops = ['relaygate', 'socket.io', 'bare uWS'].map(top).filter((s): s is StepResult => s !== undefined);
  const sioTop = top('socket.io');
  if (ours && sioTop) notes.push(`Socket.IO uses ${(sioTop.rssPerConnBytes / Math.max(1, ours.rssPerConnBytes)).toFixed(1)}× relaygate's memory per idle connection (at ${sioTop.connections.toLocaleString('en')} vs ${ours.connections.toLocaleString('en')} connections).`);
  notes.push('JS heap per connection: the growth of nodejs_heap_size_used_bytes on the gateway\'s /metrics (live objects and not yet collected garbage); the rest of the RSS is native (uWS sockets and buffers, V8 heap reserve).');
  notes.push('RSS per connection = (server RSS once settled − RSS before the first connection) ÷ connections held; every connection presented a JWT at the upgrade and got its Welcome (Socket.IO: auth middleware, then connect).');
  return {
    name: 'connections',
    title: 'connections: idle authenticated connections per gateway process',
    params: { steps: p.connectionSteps, socketIoMax: p.socketIoConnectionMax, perWorker: PER_WORKER },
    cases: [],
    tables: [table],
    charts: [
      { name: 'connections-memory', svg: barChart('connections: server RSS per idle connection (largest step held)', 'KiB per connection', tops.map((s) => ({ label: `${s.system} @ ${s.connections.toLocaleString('en')}`, system: s.system, value: s.rssPerConnBytes / 1024 }))) },
      { name: 'connections-accept', svg: barChart('connections: accept rate (largest step)', 'connections accepted per second', tops.map((s) => ({ label: `${s.system} @ ${s.connections.toLocaleString('en')}`, system: s.system, value: s.acceptsPerSec }))) },
    ],
    ratios: [ratio('connections: gateway RSS per idle authenticated connection (KiB)', ours ? ours.rssPerConnBytes / 1024 : undefined, '<=', 2.5, `at ${ours?.connections.toLocaleString('en') ?? '?'} connections held by one gateway process`)],
    notes,
    data: { steps },
  };
}

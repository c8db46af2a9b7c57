// ws-invoke: C connections × W invokes in flight through the gateway, for echo (small and large
// payloads) and a CPU-bound function, side by side with the node called directly over HTTP at the
// same concurrency, the Socket.IO peer forwarding to the same node, and the binary node link.
import type { BenchContext } from '../lib/context.js';
import type { CaseResult } from '../lib/measure.js';
import type { Server } from '../lib/procs.js';
import { caseCharts, caseTable, per, ratio, type ScenarioResult } from '../lib/report.js';
import { compareRounds, profilePass, split, startWorkers, type CaseFactory } from './common.js';

interface Workload { label: string; fn: string; payloadBytes: number; payloadText?: string }

export async function wsInvoke(ctx: BenchContext): Promise<ScenarioResult> {
  const p = ctx.params;
  const concurrency = p.connections * p.window;
  const node = await ctx.node('node', true);
  const nodeUrl = `http://127.0.0.1:${node.port}`;
  const linkPort = typeof node.info.linkPort === 'number' ? node.info.linkPort : undefined;
  const gateway = ctx.wants('relaygate') ? await ctx.gateway('gateway', { RELAYGATE_NODES: nodeUrl }) : undefined;
  const linkGateway = linkPort && ctx.wants('link') ? await ctx.gateway('gateway-link', { RELAYGATE_NODES: `relaygate+tcp://127.0.0.1:${linkPort}` }) : undefined;
  const sio = ctx.wants('socket.io') ? await ctx.peer('socket.io', 'sio-gateway.js', { BENCH_JWT_SECRET: ctx.secret, BENCH_NODES: nodeUrl }) : undefined;
  const token = await ctx.token('invoke:*');
  const cpuText = p.cpuPayload;
  const workloads: Workload[] = [
    { label: `echo ${p.payloadSmall} B`, fn: 'echo', payloadBytes: p.payloadSmall },
    { label: `echo ${p.payloadLarge / 1024} KiB`, fn: 'echo', payloadBytes: p.payloadLarge },
    { label: `${p.cpuFunction}(${cpuText.length > 12 ? `${cpuText.length} B` : cpuText})`, fn: p.cpuFunction, payloadBytes: Number(cpuText) || 0, payloadText: p.cpuFunction === 'sha256' ? undefined : cpuText },
  ];
  // sha256 is fed that many bytes; other CPU-bound functions get the text as their argument.
  for (const w of workloads) if (w.fn === 'sha256') w.label = `sha256 of ${Math.round(w.payloadBytes / 1024)} KiB`;

  const cases: CaseResult[] = [];
  const notes: string[] = [];
  const conns = split(p.connections, p.clientWorkers);
  const viaWs = (w: Workload, system: string, server: Server): CaseFactory => ({
    label: w.label, system, unit: 'invokes/s', servers: [server, node],
    start: () => startWorkers('client', 'ws-invoke', conns, (_i, share) => ({
      host: '127.0.0.1', port: server.port, token, connections: share, window: p.window, fn: w.fn, payloadBytes: w.payloadBytes, payloadText: w.payloadText,
    })),
  });

  for (const w of workloads) {
    ctx.log(` workload ${w.label}`);
    const factories: CaseFactory[] = [];
    if (gateway) factories.push(viaWs(w, 'relaygate', gateway));
    if (linkGateway) factories.push(viaWs(w, 'relaygate (binary link)', linkGateway));
    if (ctx.wants('direct')) {
      factories.push({
        label: w.label, system: 'node direct (HTTP)', unit: 'invokes/s', servers: [node],
        start: () => startWorkers('client', 'http-invoke', split(concurrency, p.clientWorkers), (_i, share) => ({
          url: nodeUrl, connections: share, inFlight: share, fn: w.fn, payloadBytes: w.payloadBytes, payloadText: w.payloadText,
        })),
      });
    }
    if (sio) {
      factories.push({
        label: w.label, system: 'socket.io', unit: 'invokes/s', servers: [sio, node],
        start: () => startWorkers('client', 'sio-invoke', conns, (_i, share) => ({
          host: '127.0.0.1', ports: [sio.port], token, connections: share, window: p.window, fn: w.fn, payloadBytes: w.payloadBytes, payloadText: w.payloadText,
        })),
      });
    }
    cases.push(...await compareRounds(ctx, factories));
  }
  const tables = [caseTable('', cases)];
  if (p.profile) {
    const w = workloads[0]!;
    if (ctx.wants('relaygate')) tables.push(...await profilePass(ctx, ['gateway-profiled'], (name) => ctx.gateway(name, { RELAYGATE_NODES: nodeUrl }, { profiled: true }), ([g]) => viaWs(w, 'relaygate', g!)));
    if (linkPort && ctx.wants('link')) tables.push(...await profilePass(ctx, ['gateway-link-profiled'], (name) => ctx.gateway(name, { RELAYGATE_NODES: `relaygate+tcp://127.0.0.1:${linkPort}` }, { profiled: true }), ([g]) => viaWs(w, 'relaygate (binary link)', g!)));
  }
  if (!linkPort) notes.push('The binary node link was not measured: the node did not report a linkPort (RELAYGATE_NODE_LINK_PORT unsupported by this build).');

  const find = (label: string, system: string): CaseResult | undefined => cases.find((c) => c.label === label && c.system === system);
  const small = workloads[0]!.label;
  const gw = find(small, 'relaygate');
  const direct = find(small, 'node direct (HTTP)');
  const sioCase = find(small, 'socket.io');
  const link = find(small, 'relaygate (binary link)');
  const vsDirect = per(gw, direct);
  const vsSio = per(gw, sioCase);
  const linkVsDirect = per(link, direct);
  const ratios = [
    ratio(`ws-invoke ${small}: relaygate ÷ node direct (HTTP)`, vsDirect.value, '>=', 0.6, `invokes/s at ${p.connections}×${p.window} in flight vs an undici Pool with ${concurrency} connections${vsDirect.cpu}`),
    ratio(`ws-invoke ${small}: relaygate ÷ Socket.IO peer`, vsSio.value, '>=', 3, `same connections and in-flight window, same node${vsSio.cpu}`),
    ratio(`ws-invoke ${small}: binary link ÷ node direct (HTTP)`, linkVsDirect.value, '>=', 1.5, `relaygate+tcp:// node link vs HTTP to the node at the same concurrency${linkVsDirect.cpu}`),
  ];
  for (const c of cases) {
    const gwCpu = c.cpu.find((x) => x.name.startsWith('gateway') || x.name === 'socket.io');
    const nodeCpu = c.cpu.find((x) => x.name === 'node');
    const clientUs = c.cpu.filter((x) => x.role === 'client').reduce((a, x) => a + x.usPerOp, 0);
    if (c.label === small) notes.push(`${c.system}: CPU per invoke — load generator ${clientUs.toFixed(1)} µs${gwCpu ? `, ${gwCpu.name} ${gwCpu.usPerOp.toFixed(1)} µs` : ''}${nodeCpu ? `, node ${nodeCpu.usPerOp.toFixed(1)} µs` : ''}.`);
  }
  return {
    name: 'ws-invoke',
    title: 'ws-invoke: remote invokes over WebSocket',
    params: { connections: p.connections, window: p.window, rounds: p.rounds, inFlight: concurrency, clientWorkers: p.clientWorkers, workloads: workloads.map((w) => w.label), durationSec: p.durationSec, warmupSec: p.warmupSec },
    cases,
    tables,
    charts: caseCharts('ws-invoke', 'invokes per second', cases),
    ratios,
    notes,
  };
}

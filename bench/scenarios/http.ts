// http: autocannon (as a library, in its own process) against the gateway's HTTP surface —
// GET /healthz, and POST /v1/invoke/echo through the gateway vs the same node called directly:
// the gateway's overhead as a ratio.
import type { BenchContext } from '../lib/context.js';
import type { CaseResult } from '../lib/measure.js';
import type { Server } from '../lib/procs.js';
import { caseCharts, caseTable, figure, per, type ScenarioResult } from '../lib/report.js';
import { compareRounds, startWorkers, type CaseFactory } from './common.js';

export async function http(ctx: BenchContext): Promise<ScenarioResult> {
  const p = ctx.params;
  const node = await ctx.node('node');
  const nodeUrl = `http://127.0.0.1:${node.port}`;
  const gateway = await ctx.gateway('gateway', { RELAYGATE_NODES: nodeUrl });
  const token = await ctx.token('invoke:*');
  const body = 'a'.repeat(p.payloadSmall);
  const cases: CaseResult[] = [];

  const cannon = (label: string, system: string, servers: Server[], url: string, method: string, headers?: Record<string, string>, payload?: string): CaseFactory => ({
    label, system, unit: 'requests/s', servers, oneShot: true,
    start: () => startWorkers('autocannon', 'autocannon', [1], () => ({
      url, method, headers, body: payload, connections: p.httpConnections, pipelining: 1, durationSec: p.durationSec, warmupSec: p.warmupSec,
    })),
  });

  const echo = `POST /v1/invoke/echo (${p.payloadSmall} B)`;
  cases.push(...await compareRounds(ctx, [
    cannon('GET /healthz', 'relaygate', [gateway], `http://127.0.0.1:${gateway.port}/healthz`, 'GET'),
    cannon('GET /healthz', 'node direct (HTTP)', [node], `${nodeUrl}/healthz`, 'GET'),
  ]));
  cases.push(...await compareRounds(ctx, [
    cannon(echo, 'relaygate', [gateway, node], `http://127.0.0.1:${gateway.port}/v1/invoke/echo`, 'POST', { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body),
    cannon(echo, 'node direct (HTTP)', [node], `${nodeUrl}/v1/invoke/echo`, 'POST', { 'content-type': 'application/octet-stream' }, body),
  ]));

  const via = cases.find((c) => c.label === echo && c.system === 'relaygate');
  const direct = cases.find((c) => c.label === echo && c.system === 'node direct (HTTP)');
  const overhead = per(via, direct);
  const notes = [
    'Latency here is autocannon\'s, recorded in whole milliseconds.',
    'Overhead of the gateway hop on the HTTP bridge: requests/s through the gateway ÷ requests/s to the node directly, same autocannon settings. The gateway forwards to the same node over keep-alive HTTP, so this is bounded by the node sharing the two cores with the gateway and autocannon.',
  ];
  if (via && direct) notes.push(`p50 added by the hop: ${((via.latencyUs.p50 - direct.latencyUs.p50) / 1000).toFixed(2)} ms.`);
  return {
    name: 'http',
    title: 'http: the HTTP surface under autocannon',
    params: { rounds: p.rounds, connections: p.httpConnections, pipelining: 1, payloadBytes: p.payloadSmall, durationSec: p.durationSec, warmupSec: p.warmupSec },
    cases,
    tables: [caseTable('', cases)],
    charts: caseCharts('http', 'requests per second', cases),
    ratios: [figure('http POST /v1/invoke/echo: through the gateway ÷ node direct', overhead.value, `the HTTP bridge's share of direct requests/s (autocannon, same settings)${overhead.cpu}`)],
    notes,
  };
}

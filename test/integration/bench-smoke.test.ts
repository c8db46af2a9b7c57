// Keeps the benchmark scripts working: each scenario runs at tiny scale (a few connections, under
// a second per case) with its real gateways, nodes, peers and redis-server, and must write a
// report whose figures are sane. No timing is asserted: speed is the bench's business, not a test's.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
let out: string;

interface CaseJson { label: string; system: string; opsPerSec: number; ops: number; errors: number; lost: number; latencyUs: { p50: number; p99: number }; latencyResolutionUs: number; cpu: Array<{ name: string; role: string; pct: number }> }
interface ReportJson {
  machine: Record<string, unknown>;
  params: Record<string, unknown>;
  scenarios: Array<{ name: string; cases: CaseJson[]; ratios: Array<{ name: string; value?: number }>; data?: { steps?: Array<{ system: string; connections: number; attempted: number; rssPerConnBytes: number; acceptsPerSec: number }> } }>;
  failures: unknown[];
}

function runBench(scenario: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'dist-bench', 'bench', 'run.js'), scenario, '--tiny', '--out', join(out, scenario)], {
      cwd: root,
      env: { ...process.env, BENCH_DURATION: '0.5', BENCH_WARMUP: '0.2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('exit', (code) => resolve({ code: code ?? -1, output }));
  });
}

function readReport(scenario: string): { md: string; json: ReportJson; svgs: string[] } {
  const dir = join(out, scenario);
  const files = readdirSync(dir);
  const md = files.find((f) => f.endsWith('.md'));
  const json = files.find((f) => f.endsWith('.json'));
  expect(md, `report .md in ${dir}`).toBeDefined();
  expect(json, `report .json in ${dir}`).toBeDefined();
  return {
    md: readFileSync(join(dir, md!), 'utf8'),
    json: JSON.parse(readFileSync(join(dir, json!), 'utf8')) as ReportJson,
    svgs: files.filter((f) => f.endsWith('.svg')).map((f) => readFileSync(join(dir, f), 'utf8')),
  };
}

function expectSaneCases(cases: CaseJson[], systems: string[]): void {
  expect(new Set(cases.map((c) => c.system))).toEqual(new Set(systems));
  for (const c of cases) {
    const what = `${c.label} · ${c.system}`;
    expect(c.ops, what).toBeGreaterThan(0);
    expect(c.opsPerSec, what).toBeGreaterThan(0);
    expect(c.errors, what).toBe(0);
    expect(c.lost, what).toBe(0);
    // autocannon records whole milliseconds, so its p50 on loopback may well be 0.
    if (c.latencyResolutionUs === 1) expect(c.latencyUs.p50, what).toBeGreaterThan(0);
    expect(c.latencyUs.p99, what).toBeGreaterThanOrEqual(c.latencyUs.p50);
    expect(c.cpu.some((p) => p.role === 'server' && p.pct > 0), `${what}: server CPU read`).toBe(true);
    expect(c.cpu.some((p) => p.role === 'client' && p.pct > 0), `${what}: load generator CPU read`).toBe(true);
  }
}

beforeAll(() => {
  // The bench compiles apart from the product (tsconfig.bench.json → dist-bench); dist is built by `npm test`.
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.bench.json')], { cwd: root, stdio: 'inherit' });
  out = mkdtempSync(join(tmpdir(), 'relaygate-bench-'));
}, 120_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('bench scenarios at tiny scale', () => {
  it('http: autocannon against the gateway and the node writes its report', async () => {
    const { code, output } = await runBench('http');
    expect(code, output).toBe(0);
    const { md, json, svgs } = readReport('http');
    expect(json.failures).toEqual([]);
    expect(json.machine.cores).toBeGreaterThan(0);
    const s = json.scenarios.find((x) => x.name === 'http')!;
    expectSaneCases(s.cases, ['relaygate', 'node direct (HTTP)']);
    expect(s.cases.map((c) => c.label)).toContain('GET /healthz');
    expect(s.ratios[0]!.value).toBeGreaterThan(0);
    expect(md).toContain('## http');
    expect(svgs.length).toBe(2);
    for (const svg of svgs) expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>$/);
  }, 180_000);

  it('ws-invoke: gateway, node direct, Socket.IO peer and binary link write their report', async () => {
    const { code, output } = await runBench('ws-invoke');
    expect(code, output).toBe(0);
    const { json, md } = readReport('ws-invoke');
    const s = json.scenarios.find((x) => x.name === 'ws-invoke')!;
    expectSaneCases(s.cases, ['relaygate', 'relaygate (binary link)', 'node direct (HTTP)', 'socket.io']);
    expect(s.cases.length).toBe(12);
    for (const r of s.ratios) expect(r.value, r.name).toBeGreaterThan(0);
    expect(md).toContain('| ws-invoke echo 64 B: relaygate ÷ node direct (HTTP) |');
  }, 300_000);

  it('fanout: gateways over Redis, Socket.IO + redis-adapter and both bare baselines deliver everything', async () => {
    const { code, output } = await runBench('fanout');
    expect(code, output).toBe(0);
    const { json } = readReport('fanout');
    const s = json.scenarios.find((x) => x.name === 'fanout')!;
    expectSaneCases(s.cases, ['relaygate', 'socket.io + redis-adapter', 'bare redis→ioredis→uWS', 'bare uWS topics']);
    for (const r of s.ratios) expect(r.value, r.name).toBeGreaterThan(0);
  }, 300_000);

  it('connections: every step is held, with a positive RSS per connection', async () => {
    const { code, output } = await runBench('connections');
    expect(code, output).toBe(0);
    const { json } = readReport('connections');
    const steps = json.scenarios.find((x) => x.name === 'connections')!.data!.steps!;
    expect(new Set(steps.map((s) => s.system))).toEqual(new Set(['relaygate', 'socket.io', 'bare uWS']));
    for (const step of steps) {
      expect(step.connections, step.system).toBe(step.attempted);
      expect(step.rssPerConnBytes, step.system).toBeGreaterThan(0);
      expect(step.acceptsPerSec, step.system).toBeGreaterThan(0);
    }
  }, 300_000);
});

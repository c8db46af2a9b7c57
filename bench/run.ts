// `npm run bench [-- <scenario>...] [--tiny] [--out DIR] [--profile]`: starts everything a
// scenario needs as separate processes on loopback, runs bounded loads, stops everything (even
// on failure) and writes bench/results/<date>-<commit>.md, .json and SVG charts. With --profile,
// each scenario ends with a separate pass through freshly started gateways under --cpu-prof (the
// measured figures always come from unprofiled processes).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BenchContext, describeMachine, readParams } from './lib/context.js';
import { projectRoot, stopAll, stopAllOnExit } from './lib/procs.js';
import { writeReport, type RunReport, type ScenarioResult } from './lib/report.js';
import { connections } from './scenarios/connections.js';
import { fanout } from './scenarios/fanout.js';
import { http } from './scenarios/http.js';
import { wsInvoke } from './scenarios/ws-invoke.js';

const scenarios: Record<string, (ctx: BenchContext) => Promise<ScenarioResult>> = {
  http,
  'ws-invoke': wsInvoke,
  fanout,
  connections,
};

function usage(): string {
  return `usage: npm run bench -- [${Object.keys(scenarios).join('|')}]... [--tiny] [--out DIR] [--profile]\n`
    + 'Settings by environment: BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_WINDOW, BENCH_CLIENT_WORKERS, BENCH_SUBSCRIBERS, '
    + 'BENCH_PUBLISH_WINDOW, BENCH_MAX_LAG, BENCH_CONNECTION_STEPS, ... (see bench/README.md).';
}

async function main(argv: string[]): Promise<number> {
  const names: string[] = [];
  let tiny = false;
  let out = join(projectRoot, 'bench', 'results');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--tiny') tiny = true;
    else if (a === '--profile') process.env.BENCH_PROFILE = '1';
    else if (a === '--out') out = argv[++i] ?? out;
    else if (a === '--help' || a === '-h') { console.log(usage()); return 0; }
    else if (a in scenarios) names.push(a);
    else { console.error(`unknown scenario or flag: ${a}\n${usage()}`); return 2; }
  }
  const selected = names.length ? names : Object.keys(scenarios);
  const params = readParams(tiny ? 'tiny' : 'full');
  mkdirSync(out, { recursive: true });
  const ctx = new BenchContext(params, out, (line) => console.log(line));
  const machine = describeMachine();
  const startedAt = new Date().toISOString();
  const report: RunReport = {
    startedAt,
    command: `npm run bench -- ${[...selected, ...(tiny ? ['--tiny'] : []), ...(params.profile ? ['--profile'] : [])].join(' ')}`,
    machine,
    params: { ...params },
    scenarios: [],
    failures: [],
  };
  console.log(`relaygate bench: ${selected.join(', ')} (${params.scale} scale) on ${machine.cores} × ${machine.cpuModel}, commit ${machine.commit}`);
  for (const name of selected) {
    ctx.scenario = name;
    console.log(`\n== ${name}`);
    try {
      const result = await scenarios[name]!(ctx);
      report.scenarios.push(result);
    } catch (err) {
      console.error(`${name} failed: ${(err as Error).stack ?? err}`);
      report.failures.push({ scenario: name, error: (err as Error).message });
    } finally {
      await stopAll();
    }
  }
  const base = `${startedAt.slice(0, 10)}-${machine.commit}`;
  const written = writeReport(out, base, report);
  console.log(`\nreport: ${written.md}\n        ${written.json}${written.svgs.length ? `\n        ${written.svgs.length} charts` : ''}`);
  return report.failures.length ? 1 : 0;
}

stopAllOnExit();
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  async (err: Error) => { console.error(err.stack ?? err); await stopAll(); process.exitCode = 1; },
);

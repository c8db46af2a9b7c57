// Where a profiled process spent its time: self time per function and per package, read from the
// .cpuprofile files that `node --cpu-prof` writes at exit.
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface CpuProfile { nodes: ProfileNode[]; samples?: number[]; timeDeltas?: number[] }

/** The package or area a frame belongs to. */
function areaOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (/^[0-9a-f]{8}$/.test(url) || name.startsWith('wasm')) return 'wasm (undici llhttp)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node core';
  if (url.includes('/dist/')) return 'relaygate';
  return basename(url);
}

export interface ProfileSummary { file: string; totalMs: number; areas: Array<[string, number]>; functions: Array<[string, number]> }

/** Sums self time by area and by function over one profile; shares are percentages of busy time (idle excluded). */
export function summarizeProfile(path: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0));
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') continue;
    busy += us;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${url ? `${basename(url)}:${lineNumber + 1}` : ''}`.trim();
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  const pct = (m: Map<string, number>, top: number): Array<[string, number]> =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, busy > 0 ? (v / busy) * 100 : 0]);
  return { file: basename(path), totalMs: busy / 1000, areas: pct(areas, 10), functions: pct(functions, 12) };
}

/** The summary as a report table: self time by area and by function, side by side. */
export function profileTable(title: string, p: ProfileSummary): { title: string; columns: string[]; rows: string[][] } {
  return {
    title: `${title} (self time of ${(p.totalMs / 1000).toFixed(1)} s busy, idle excluded)`,
    columns: ['area', 'share', 'function', 'share'],
    rows: Array.from({ length: Math.max(p.areas.length, p.functions.length) }, (_, i) => [
      p.areas[i]?.[0] ?? '', p.areas[i] ? `${p.areas[i]![1].toFixed(1)}%` : '', p.functions[i]?.[0] ?? '', p.functions[i] ? `${p.functions[i]![1].toFixed(1)}%` : '',
    ]),
  };
}

/** Waits (a little) for a profile that an exiting process is still writing. */
export async function readProfileWhenWritten(path: string, timeoutMs = 15_000): Promise<ProfileSummary | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(path)) {
      try { return summarizeProfile(path); } catch { /* still being written */ }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

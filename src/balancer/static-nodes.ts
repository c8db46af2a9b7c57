// RELAYGATE_NODES: node base URLs, each optionally with ?weight=N. Pure.
import { ConfigError } from '../config.js';
import type { NodeDescriptor } from './node-state.js';

const SETTING = 'RELAYGATE_NODES';
const nodeSchemes = new Set(['http', 'https', 'relaygate+tcp', 'relaygate+tls']);

/** Parses the node list; throws ConfigError naming the setting and the bad entry. */
export function parseNodeList(entries: readonly string[]): NodeDescriptor[] {
  const seen = new Set<string>();
  return entries.map((entry) => {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new ConfigError(SETTING, `${JSON.stringify(entry)} is not a URL`);
    }
    const scheme = url.protocol.slice(0, -1).toLowerCase();
    if (!nodeSchemes.has(scheme)) {
      throw new ConfigError(SETTING, `${JSON.stringify(entry)}: scheme must be http, https, relaygate+tcp or relaygate+tls`);
    }
    let weight = 1;
    const raw = url.searchParams.get('weight');
    if (raw !== null) {
      weight = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(weight) || weight <= 0 || weight > 1000) {
        throw new ConfigError(SETTING, `${JSON.stringify(entry)}: weight must be a number above 0 and at most 1000`);
      }
    }
    url.searchParams.delete('weight');
    if ([...url.searchParams.keys()].length > 0) throw new ConfigError(SETTING, `${JSON.stringify(entry)}: only ?weight=N is understood`);
    url.search = '';
    url.hash = '';
    const base = url.toString().replace(/\/+$/, '');
    if (seen.has(base)) throw new ConfigError(SETTING, `${base} is listed twice`);
    seen.add(base);
    return { key: base, url: base, weight, functions: undefined };
  });
}

// Picks the link implementation for a node URL by its scheme.
import type { Logger } from '../log.js';
import { BinaryNodeLink } from './binary-link.js';
import { HttpNodeLink } from './http-link.js';
import type { NodeLink } from './node-link.js';

export interface NodeLinkOptions {
  /** Connections per node (HTTP keep-alive connections; the binary link uses a few). */
  readonly connections: number;
  /** Largest reply or frame accepted from the node. */
  readonly maxReplyBytes?: number;
  /** Where a link reports connection trouble (the binary link logs lost connections and protocol violations). */
  readonly log?: Logger;
}

/** A node URL whose scheme no link speaks. */
export class UnsupportedNodeUrlError extends Error {
  constructor(readonly url: string) {
    super(`unsupported node URL scheme in ${JSON.stringify(url)} (expected http://, https://, relaygate+tcp:// or relaygate+tls://)`);
    this.name = 'UnsupportedNodeUrlError';
  }
}

/** The link for `url`: http(s):// → HTTP/1.1, relaygate+tcp|tls:// → the binary link. Throws UnsupportedNodeUrlError for other schemes. */
export function createNodeLink(url: string, options: NodeLinkOptions): NodeLink {
  const scheme = url.slice(0, Math.max(0, url.indexOf('://'))).toLowerCase();
  switch (scheme) {
    case 'http':
    case 'https':
      return new HttpNodeLink(url, options);
    case 'relaygate+tcp':
    case 'relaygate+tls':
      // A few multiplexed connections carry what HTTP needs a hundred for.
      return new BinaryNodeLink(url, {
        connections: Math.min(options.connections, 4),
        ...(options.maxReplyBytes !== undefined ? { maxFrameBytes: options.maxReplyBytes } : {}),
        ...(options.log ? { log: options.log } : {}),
      });
    default:
      throw new UnsupportedNodeUrlError(url);
  }
}

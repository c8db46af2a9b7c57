// What an upgrade request asks for: subprotocol, credential and origin (spec section 1). Pure.
import { subprotocolNames, type Subprotocol } from '../protocol/codec.js';

const byName = new Map<string, Subprotocol>(
  (Object.keys(subprotocolNames) as Subprotocol[]).map((s) => [subprotocolNames[s], s]),
);

/** The first of our subprotocols in a Sec-WebSocket-Protocol list (exact names), or undefined. */
export function chooseSubprotocol(header: string): Subprotocol | undefined {
  for (const item of header.split(',')) {
    const chosen = byName.get(item.trim());
    if (chosen) return chosen;
  }
  return undefined;
}

/** A credential found in the request, or why none could be read. */
export type Credential = { token: string } | { problem: 'missing' | 'malformed' };

/** Reads the bearer token from the Authorization header, else from the access_token query parameter. */
export function readCredential(authorization: string, queryToken: string): Credential {
  if (authorization !== '') {
    const match = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(authorization);
    return match ? { token: match[1]! } : { problem: 'malformed' };
  }
  if (queryToken !== '') return /^[^\s]+$/.test(queryToken) ? { token: queryToken } : { problem: 'malformed' };
  return { problem: 'missing' };
}

/** Whether an upgrade from `origin` is allowed: exact match against the list; no Origin header always passes. */
export function originAllowed(origin: string, allowed: ReadonlySet<string> | undefined): boolean {
  if (!allowed || origin === '') return true;
  return allowed.has(origin);
}

// The package's main entry: the TypeScript client. The node SDK is `relaygate/node`.
export * from './client/index.js';

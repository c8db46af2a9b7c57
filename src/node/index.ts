// The node SDK: serve functions to relaygate gateways from your own process.
export { createNode, type ListenOptions, type NodeOptions, type RegisterOptions, type RelaygateNode } from './sdk.js';
export { FunctionHost, NodeCall, NodeReply, json, reply, type CallInit, type NodeFunction, type NodeRequest, type NodeResult } from './function-host.js';
export { referenceFunctions } from './functions.js';
export { listenNodeLink, LinkServer, type NodeLinkListenOptions } from './link-server.js';
export { Code, GatewayError as NodeError } from '../errors.js';

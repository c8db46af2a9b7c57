// The relaygate TypeScript client: one class, its options, its errors and the frame values it yields.
export { RelaygateClient, RelaygateError, closeAdvice } from './client.js';
export type { CloseInfo, ConnectOptions, InvokeOptions, RelaygateClientEvents, SubscribeOptions, Subprotocol } from './client.js';
export type { Ack, ErrorReply, Event, GoAway, Pong, Progress, Result, StreamPosition, Welcome } from './wire.js';
export { Code, Close } from '../errors.js';

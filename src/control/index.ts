/**
 * The control socket of a running `connect` or `serve` (issue 15): a Unix
 * socket speaking JSON lines (docs/control.md), the server side that hands
 * requests to handlers, the client side the CLI uses, and where sockets live.
 * It knows nothing of tunnels: `connect` and `serve` supply the handlers.
 */
export { ControlServer, defaultControlLimits, type ControlHandlers, type ControlLimits, type ControlServerOptions } from './control-server.js';
export { DEFAULT_CONTROL_TIMEOUT_MS, requestControl, type ControlRequestOptions } from './control-client.js';
export { ControlError, ControlErrorCode, ControlNotFoundError, ControlRequestError } from './errors.js';
export { defaultControlDir, defaultControlPath, findControlSocket, listControlSockets, type ControlEndpoint } from './paths.js';
export { probeSocket, type SocketProbe } from './probe.js';
export {
  CONTROL_METHODS,
  CONTROL_PROTOCOL_VERSION,
  MAX_REASON_LENGTH,
  MAX_REQUEST_LINE_BYTES,
  parseRequest,
  type ControlMethod,
  type ControlParams,
  type ControlRequest,
  type ControlResponse,
  type ControlResults,
  type ForwardAddParams,
  type ForwardRemoveParams,
  type RequestId,
  type SessionCloseParams,
} from './protocol.js';
export type * from './results.js';
export { CONTROL_SOCKET_MODE } from './socket-file.js';

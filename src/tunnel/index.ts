export { TunnelServer } from './server.js';
export { DEFAULT_RESUME_GRACE_MS, resolveServerOptions, type TunnelServerOptions, type ResolvedServerOptions } from './server-options.js';
export { defaultResumeConfig, type ResumeOptions } from './resume/config.js';
export { TunnelClient, type ClientReconfigureReport, type ForwardAddResult, type TunnelClientEvents } from './client.js';
export type { ForwardInfo, ForwardKind, RemoteForwardState } from './client-forwards.js';
export { defaultClientTimings, resolveClientOptions, type ClientTimings, type TunnelClientOptions, type ResolvedClientOptions } from './client-options.js';
export { defaultServerLimits, resolveServerLimits, serverLimitRules, type ServerLimits } from './server-limits.js';
export { defaultPolicy, parsePortRange, parseTargetPattern, parseTargetPatternOf, type ServerPolicy, type PortRange, type TargetPattern } from './policy.js';
export { MIN_TOKEN_LENGTH } from './auth.js';
export { DEFAULT_USER, hashToken, resolveUsers, shortTokenHash, type TunnelUser } from './users.js';
export type { SessionInfo } from './server-session.js';
export type { ReconfigureResult } from './server-reconfigure.js';
export { TunnelError, TunnelErrorCode } from './errors.js';
export { silentLogger, type TunnelLogger } from './logger.js';
export type { ForwardSpec } from './forward.js';
export type { DynamicSpec } from './client-dynamic.js';
export { encodeProxyHeader, PROXY_PROTOCOL_VERSIONS, type AddressPort, type ProxyProtocolVersion } from './proxy-protocol.js';
export {
  DIAL_BUCKETS_SECONDS,
  DIRECTIONS,
  LIMIT_NAMES,
  STREAM_RESULTS,
  type ClientStatsSnapshot,
  type DialTimesSnapshot,
  type Direction,
  type DirectionSnapshot,
  type LimitName,
  type ServerStatsSnapshot,
  type StreamResult,
  type TrafficSnapshot,
} from './tunnel-stats.js';

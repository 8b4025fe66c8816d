export { TunnelServer, type TunnelServerOptions } from './server.js';
export { TunnelClient, type TunnelClientOptions, type TunnelClientEvents } from './client.js';
export { defaultServerLimits, resolveServerLimits, type ServerLimits } from './server-limits.js';
export { defaultPolicy, parsePortRange, parseTargetPattern, type ServerPolicy, type PortRange, type TargetPattern } from './policy.js';
export { TunnelError, TunnelErrorCode } from './errors.js';
export { silentLogger, type TunnelLogger } from './logger.js';
export type { ForwardSpec } from './forward.js';

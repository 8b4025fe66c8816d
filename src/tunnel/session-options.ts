import { sessionOptionRanges, type SessionOptions } from '../muxado/index.js';
import { checkInteger, OptionError } from '../util/validate.js';

/**
 * The engine options a tunnel passes on (heartbeat timing, mostly),
 * checked here against the engine's own ranges so a bad value is the
 * tunnel's `ERR_MUXTUN_INVALID_ARGUMENT` naming `session.<field>`, and the
 * engine's validator never sees it fail.
 */
export function resolveTunnelSessionOptions(session: SessionOptions | undefined): SessionOptions {
  if (session === undefined) return {};
  if (session === null || typeof session !== 'object') throw new OptionError('session', 'an object', session);
  const resolved: SessionOptions = {};
  for (const [key, value] of Object.entries(session) as Array<[keyof SessionOptions, unknown]>) {
    if (value === undefined) continue;
    if (key === 'heartbeat') {
      if (typeof value !== 'boolean') throw new OptionError('session.heartbeat', 'true or false', value);
      resolved.heartbeat = value;
      continue;
    }
    const range = Object.hasOwn(sessionOptionRanges, key) ? sessionOptionRanges[key] : undefined;
    if (range === undefined) throw new OptionError(`session.${String(key)}`, `one of heartbeat, ${Object.keys(sessionOptionRanges).join(', ')} (unknown option)`, value);
    const unit = key === 'maxStreams' || key === 'acceptBacklog' ? undefined : /Window|Bytes/.test(key) ? 'bytes' : 'ms';
    resolved[key] = checkInteger(`session.${key}`, value, { min: range[0], max: range[1], ...(unit ? { unit } : {}) });
  }
  return resolved;
}

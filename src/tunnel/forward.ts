import type { ProxyProtocolVersion } from './proxy-protocol.js';

/** One -L or -R forward: listen on bindHost:bindPort, connect to targetHost:targetPort. */
export interface ForwardSpec {
  bindHost: string;
  bindPort: number;
  targetHost: string;
  targetPort: number;
  /**
   * -R only: reverse dynamic (`ssh -R [bind:]port`): the server's listener
   * speaks SOCKS and this side dials what each client asks for (within
   * `allowTarget`); targetHost and targetPort are not used.
   */
  dynamic?: boolean;
  /**
   * -R only, not dynamic: write a PROXY protocol header naming who connected
   * before the forwarded bytes (`'off'`: none, whatever the client's
   * `proxyProtocol` says). Default: the client's `proxyProtocol`.
   */
  proxyProtocol?: ProxyProtocolVersion | 'off';
}

/** The PROXY protocol version a -R forward's target gets: its own setting, else the client's `fallback`; undefined for none. */
export function proxyProtocolOf(spec: ForwardSpec, fallback: ProxyProtocolVersion | undefined): ProxyProtocolVersion | undefined {
  const version = spec.proxyProtocol ?? fallback;
  return version === 'off' ? undefined : version;
}

/** `8080:localhost:80` style, with the bind host only when given. */
export function describeForward(kind: '-L' | '-R', spec: ForwardSpec): string {
  return `${kind} ${spec.bindHost}:${spec.bindPort} -> ${spec.dynamic === true ? 'SOCKS' : `${spec.targetHost}:${spec.targetPort}`}`;
}

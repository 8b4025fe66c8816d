/** One -L or -R forward: listen on bindHost:bindPort, connect to targetHost:targetPort. */
export interface ForwardSpec {
  bindHost: string;
  bindPort: number;
  targetHost: string;
  targetPort: number;
}

/** `8080:localhost:80` style, with the bind host only when given. */
export function describeForward(kind: '-L' | '-R', spec: ForwardSpec): string {
  return `${kind} ${spec.bindHost}:${spec.bindPort} -> ${spec.targetHost}:${spec.targetPort}`;
}

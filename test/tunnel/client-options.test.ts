/**
 * Which changed connect settings a running client names as needing a
 * restart on reload (`settingsNeedingRestart`): what `muxtun connect`
 * logs as "changed but not applied" after a SIGHUP.
 */
import { describe, expect, it } from 'vitest';
import { resolveClientOptions, settingsNeedingRestart, type TunnelClientOptions } from '../../src/tunnel/client-options.js';

const trust = { kind: 'fingerprint', fingerprint: `sha256:${'ab'.repeat(32)}` } as const;
const viaHost: TunnelClientOptions = { host: 'tunnel.example', port: 4443, token: 't0ken-t0ken-t0ken-t0ken', trust };
const viaUrl: TunnelClientOptions = { url: 'wss://tunnel.example/muxtun', token: 't0ken-t0ken-t0ken-t0ken', trust };

const changed = (current: TunnelClientOptions, next: TunnelClientOptions): string[] =>
  settingsNeedingRestart(resolveClientOptions(current), resolveClientOptions(next));

describe('settingsNeedingRestart', () => {
  it('names nothing when only forwards change: they apply live', () => {
    expect(changed(viaHost, { ...viaHost, local: [{ bindHost: '127.0.0.1', bindPort: 8080, targetHost: 'localhost', targetPort: 80 }] })).toEqual([]);
    expect(changed(viaUrl, viaUrl)).toEqual([]);
  });

  it('names the server address, the token and the timings', () => {
    expect(changed(viaHost, { ...viaHost, host: 'other.example', port: 443 })).toEqual(['host', 'port']);
    expect(changed(viaHost, { ...viaHost, token: 'an0ther-t0ken-an0ther' })).toEqual(['token']);
    expect(changed(viaHost, { ...viaHost, timings: { dialTimeoutMs: 1234 } })).toEqual(['timings.dialTimeoutMs']);
  });

  it('names the WebSocket URL, the proxy and the WebSocket mode', () => {
    expect(changed(viaUrl, { ...viaUrl, url: 'wss://tunnel.example/other' })).toEqual(['url']);
    expect(changed(viaHost, viaUrl)).toEqual(['url']);
    expect(changed(viaUrl, { ...viaUrl, proxy: { protocol: 'http', host: 'proxy.example', port: 3128 } })).toEqual(['proxy']);
    expect(changed(viaUrl, { ...viaUrl, wsMode: 'messages' })).toEqual(['wsMode']);
    // The default is stream mode: saying so is no change.
    expect(changed(viaUrl, { ...viaUrl, wsMode: 'stream' })).toEqual([]);
  });
});

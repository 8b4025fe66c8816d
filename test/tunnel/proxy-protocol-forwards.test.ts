/**
 * PROXY protocol on forwarded connections, in process with real sockets:
 * the target of a -R (connect's proxyProtocol) or -L (serve's) receives
 * exactly one header naming the application's socket and the listener it
 * reached, then the application's bytes; over IPv4 and IPv6, v1 and v2,
 * with and without resumption; and a resume across a cut link does not
 * write the header again.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { TunnelServer, type ForwardSpec, type ProxyProtocolVersion } from '../../src/tunnel/index.js';
import { dial, freePort, listen, relay } from '../support/net.js';
import { currentScope } from '../support/scope.js';
import { ErrorCode, type Stream } from '../../src/muxado/index.js';
import { encodeStreamHeader } from '../../src/tunnel/stream-header.js';
import { authenticatedSession, RecordingLogger, startTunnelClient, streamEnd, testCertificate, type InProcessServer } from '../support/tunnel.js';
import { waitUntil, within } from '../support/wait.js';

interface Parsed {
  source: string;
  destination: string;
  /** Bytes after the header. */
  rest: Buffer;
}

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A reader of the two header forms, independent of the builder: ends as `address:port` (IPv6 fully expanded for v2). */
function parseProxyHeader(bytes: Buffer): Parsed | null {
  if (bytes.subarray(0, 12).equals(V2_SIGNATURE)) {
    if (bytes.length < 16) return null;
    const length = bytes.readUInt16BE(14);
    if (bytes.length < 16 + length) return null;
    expect(bytes[12]).toBe(0x21);
    const body = bytes.subarray(16, 16 + length);
    const family = bytes[13];
    const size = family === 0x11 ? 4 : 16;
    expect(length).toBe(family === 0x11 ? 12 : 36);
    const address = (at: number): string =>
      size === 4 ? [...body.subarray(at, at + 4)].join('.') : (body.subarray(at, at + 16).toString('hex').match(/.{4}/g) ?? []).join(':');
    return { source: `${address(0)}:${body.readUInt16BE(2 * size)}`, destination: `${address(size)}:${body.readUInt16BE(2 * size + 2)}`, rest: bytes.subarray(16 + length) };
  }
  const end = bytes.indexOf('\r\n');
  if (end < 0) return null;
  const match = /^PROXY TCP([46]) (\S+) (\S+) (\d+) (\d+)$/.exec(bytes.subarray(0, end).toString('latin1'));
  if (match === null) throw new Error(`not a PROXY v1 line: ${JSON.stringify(bytes.subarray(0, end).toString('latin1'))}`);
  return { source: `${match[2]}:${match[4]}`, destination: `${match[3]}:${match[5]}`, rest: bytes.subarray(end + 2) };
}

const V6_LOOPBACK = '0000:0000:0000:0000:0000:0000:0000:0001';

/** The loopback address as each version writes it. */
const loopback = (family: 4 | 6, version: ProxyProtocolVersion): string => (family === 4 ? '127.0.0.1' : version === 'v1' ? '::1' : V6_LOOPBACK);

/** A target that keeps every byte of each connection it accepts. */
async function recordingTarget(): Promise<{ port: number; received: Array<{ bytes: Buffer }> }> {
  const received: Array<{ bytes: Buffer }> = [];
  const server = await listen((socket) => {
    const entry = { bytes: Buffer.alloc(0) };
    received.push(entry);
    socket.on('data', (chunk: Buffer) => (entry.bytes = Buffer.concat([entry.bytes, chunk])));
  });
  return { port: server.port, received };
}

/** A TunnelServer on 127.0.0.1 with serve's proxyProtocol. */
async function startServer(proxyProtocol?: ProxyProtocolVersion): Promise<InProcessServer> {
  const material = await testCertificate();
  const logger = new RecordingLogger();
  const token = `tok-${randomUUID()}`;
  const server = new TunnelServer({ host: '127.0.0.1', port: 0, tls: material, token, logger, ...(proxyProtocol ? { proxyProtocol } : {}) });
  const address = await server.listen();
  currentScope().add(() => server.stop(0).catch(() => undefined));
  return { server, port: address.port, token, fingerprint: material.fingerprint, logger };
}

/** A connection to host:port from a socket of the given family; destroyed with the scope. */
async function dialFrom(family: 4 | 6, port: number): Promise<net.Socket> {
  if (family === 4) return dial(port);
  const socket = net.connect({ host: '::1', port, allowHalfOpen: true });
  socket.on('error', () => {});
  currentScope().add(async () => socket.destroy());
  await within(once(socket, 'connect'), 5_000, `a connection to [::1]:${port}`);
  return socket;
}

/** Waits until the target's connection holds a whole header and `after` bytes behind it; checks both. */
async function expectHeaderThen(entry: { bytes: Buffer } | undefined, version: ProxyProtocolVersion, app: net.Socket, listenerPort: number, family: 4 | 6, after: string): Promise<void> {
  const parsed = await waitUntil(`the target to receive the header and ${after.length} bytes`, () => {
    const header = entry ? parseProxyHeader(entry.bytes) : null;
    return header !== null && header.rest.length >= after.length ? header : undefined;
  });
  const address = loopback(family, version);
  expect(parsed.source).toBe(`${address}:${app.localPort}`);
  expect(parsed.destination).toBe(`${address}:${listenerPort}`);
  expect(parsed.rest.toString()).toBe(after);
  if (version === 'v1') expect(entry!.bytes.subarray(0, 6).toString()).toBe('PROXY ');
  else expect(entry!.bytes.subarray(0, 12)).toEqual(V2_SIGNATURE);
}

const hasIpv6 = await new Promise<boolean>((resolve) => {
  const probe = net.createServer().once('error', () => resolve(false));
  probe.listen(0, '::1', () => probe.close(() => resolve(true)));
});

const cases: Array<{ version: ProxyProtocolVersion; family: 4 | 6; resume: boolean }> = [];
for (const version of ['v1', 'v2'] as const) for (const family of [4, 6] as const) for (const resume of [true, false]) if (family === 4 || hasIpv6) cases.push({ version, family, resume });
const bindOf = (family: 4 | 6): string => (family === 4 ? '127.0.0.1' : '::1');
const name = ({ version, family, resume }: (typeof cases)[number]): string => `${version} over IPv${family}${resume ? '' : ', without resumption'}`;

describe('connect --proxy-protocol: -R targets get the real client first', () => {
  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_, { version, family, resume }) => {
    const target = await recordingTarget();
    const server = await startServer();
    const remotePort = await freePort();
    const spec: ForwardSpec = { bindHost: bindOf(family), bindPort: remotePort, targetHost: '127.0.0.1', targetPort: target.port };
    await startTunnelClient(server, { remote: [spec], proxyProtocol: version, resume });
    const app = await dialFrom(family, remotePort);
    app.write('hello');
    await expectHeaderThen(await waitUntil('the target to be dialled', () => target.received[0]), version, app, remotePort, family, 'hello');
  });

  it('per forward: a forward\'s own version wins, and "off" writes none', async () => {
    const target = await recordingTarget();
    const server = await startServer();
    const [v1Port, offPort, defaultPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const at = (bindPort: number, proxyProtocol?: 'v1' | 'off'): ForwardSpec => ({ bindHost: '127.0.0.1', bindPort, targetHost: '127.0.0.1', targetPort: target.port, ...(proxyProtocol ? { proxyProtocol } : {}) });
    await startTunnelClient(server, { remote: [at(v1Port, 'v1'), at(offPort, 'off'), at(defaultPort)], proxyProtocol: 'v2' });
    const v1App = await dial(v1Port);
    v1App.write('a');
    await expectHeaderThen(await waitUntil('the first target', () => target.received[0]), 'v1', v1App, v1Port, 4, 'a');
    const offApp = await dial(offPort);
    offApp.write('plain');
    await waitUntil('the second target to receive its bytes', () => target.received[1]?.bytes.length === 5);
    expect(target.received[1]!.bytes.toString()).toBe('plain');
    const v2App = await dial(defaultPort);
    v2App.write('b');
    await expectHeaderThen(await waitUntil('the third target', () => target.received[2]), 'v2', v2App, defaultPort, 4, 'b');
  });
});

describe('serve --proxy-protocol: -L targets get the client-side peer first', () => {
  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_, { version, family, resume }) => {
    const target = await recordingTarget();
    const server = await startServer(version);
    const localPort = await freePort();
    await startTunnelClient(server, { local: [{ bindHost: bindOf(family), bindPort: localPort, targetHost: '127.0.0.1', targetPort: target.port }], resume });
    const app = await dialFrom(family, localPort);
    app.write('hello');
    await expectHeaderThen(await waitUntil('the target to be dialled', () => target.received[0]), version, app, localPort, family, 'hello');
  });

  it('without the option the target gets the bytes alone', async () => {
    const target = await recordingTarget();
    const server = await startServer();
    const localPort = await freePort();
    await startTunnelClient(server, { local: [{ bindHost: '127.0.0.1', bindPort: localPort, targetHost: '127.0.0.1', targetPort: target.port }] });
    const app = await dial(localPort);
    app.write('plain');
    await waitUntil('the target to receive the bytes', () => target.received[0]?.bytes.length === 5);
    expect(target.received[0]!.bytes.toString()).toBe('plain');
  });
});

describe('a resume across a cut link', () => {
  it('does not write the header again, for -R and -L', { timeout: 30_000 }, async () => {
    const target = await recordingTarget();
    const server = await startServer('v2');
    const path = await relay(server.port);
    const [localPort, remotePort] = await Promise.all([freePort(), freePort()]);
    const { logger } = await startTunnelClient(server, {
      port: path.port,
      proxyProtocol: 'v1',
      local: [{ bindHost: '127.0.0.1', bindPort: localPort, targetHost: '127.0.0.1', targetPort: target.port }],
      remote: [{ bindHost: '127.0.0.1', bindPort: remotePort, targetHost: '127.0.0.1', targetPort: target.port }],
      timings: { backoffBaseMs: 50, backoffCapMs: 250 },
    });
    const localApp = await dial(localPort);
    localApp.write('L1');
    const atLocal = await waitUntil('the -L target', () => target.received[0]);
    await expectHeaderThen(atLocal, 'v2', localApp, localPort, 4, 'L1');
    const remoteApp = await dial(remotePort);
    remoteApp.write('R1');
    const atRemote = await waitUntil('the -R target', () => target.received[1]);
    await expectHeaderThen(atRemote, 'v1', remoteApp, remotePort, 4, 'R1');

    expect(path.cut()).toBe(1);
    await waitUntil('the client to see the link lost', () => logger.has('link lost'));
    // Written while the link is down: carried after the resume.
    localApp.write('L2');
    remoteApp.write('R2');
    path.restore();
    await waitUntil('the client to resume', () => logger.has('resumed after'), 10_000);
    localApp.write('L3');
    remoteApp.write('R3');
    await expectHeaderThen(atLocal, 'v2', localApp, localPort, 4, 'L1L2L3');
    await expectHeaderThen(atRemote, 'v1', remoteApp, remotePort, 4, 'R1R2R3');
    // The same two target connections: nothing was dialled again.
    expect(target.received).toHaveLength(2);
  });
});

describe('the -L header\'s peer and dest, as the server takes them', () => {
  it('uses them for the header; an older client\'s header without them gives UNKNOWN; a malformed one resets that stream only', async () => {
    const target = await recordingTarget();
    const server = await startServer('v1');
    const { session } = await authenticatedSession(server);
    const LOCAL_FORWARD = 2;
    // Streams still open when the test's scope closes the session error then: expected.
    const open = (): Stream => session.open({ type: LOCAL_FORWARD }).on('error', () => {});

    const bad = open();
    bad.write(encodeStreamHeader({ host: '127.0.0.1', port: target.port, peer: 'example.com:80' }));
    expect(await streamEnd(bad)).toEqual({ reset: ErrorCode.PROTOCOL_ERROR });

    const good = open();
    good.write(Buffer.concat([encodeStreamHeader({ host: '127.0.0.1', port: target.port, peer: '203.0.113.7:51234', dest: '198.51.100.1:8080' }), Buffer.from('one')]));
    await waitUntil('the first target connection', () => target.received[0]?.bytes.includes('one'));
    expect(target.received[0]!.bytes.toString('latin1')).toBe('PROXY TCP4 203.0.113.7 198.51.100.1 51234 8080\r\none');

    const older = open();
    older.write(Buffer.concat([encodeStreamHeader({ host: '127.0.0.1', port: target.port }), Buffer.from('two')]));
    await waitUntil('the second target connection', () => target.received[1]?.bytes.includes('two'));
    expect(target.received[1]!.bytes.toString('latin1')).toBe('PROXY UNKNOWN\r\ntwo');
    expect(target.received).toHaveLength(2);
  });
});

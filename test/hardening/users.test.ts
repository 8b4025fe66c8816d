/**
 * Users on one server, in process: each user's rights hold against the
 * other's, several tokens per user, sessions that are the user's and the
 * client id's, and `reconfigure` ending only what it no longer allows:
 * a removed user or token (the client hears ERR_MUXTUN_ACCESS_REVOKED and
 * gives up) and a -R listener outside a narrowed allow-remote (the client
 * hears forward-closed), while everything else carries on untouched.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { hashToken, TunnelServer, type ServerPolicy, type TunnelServerOptions, type TunnelUser } from '../../src/tunnel/index.js';
import { connectionEnd, dial, EchoClient, echoServer, freePort, hashExchange, hashServer } from '../support/net.js';
import { currentScope } from '../support/scope.js';
import { forward, rawSession, RecordingLogger, sendHello, startTunnelClient, testCertificate } from '../support/tunnel.js';
import { rejection, waitUntil, within } from '../support/wait.js';

const MiB = 1024 * 1024;

interface UsersServer {
  server: TunnelServer;
  port: number;
  fingerprint: string;
  logger: RecordingLogger;
  options: TunnelServerOptions;
}

async function startUsersServer(users: TunnelUser[], policy?: ServerPolicy): Promise<UsersServer> {
  const material = await testCertificate();
  const logger = new RecordingLogger();
  const options: TunnelServerOptions = { host: '127.0.0.1', port: 0, tls: material, users, logger, ...(policy ? { policy } : {}) };
  const server = new TunnelServer(options);
  const address = await server.listen();
  currentScope().add(() => server.stop(0).catch(() => undefined));
  return { server, port: address.port, fingerprint: material.fingerprint, logger, options };
}

/** A client of `server` authenticating with `token`. */
const clientOf = (server: UsersServer, token: string, options: Parameters<typeof startTunnelClient>[1] = {}): ReturnType<typeof startTunnelClient> =>
  startTunnelClient({ ...server, token }, options);

const token = (): string => `token-${randomUUID()}`;
const only = (port: number) => ({ host: '127.0.0.1', ports: { from: port, to: port } });

describe('two users with different rights', () => {
  it('each is refused what only the other may do, and the refusal names whose rule it is', async () => {
    const [echoA, echoB] = [await echoServer(), await echoServer()];
    const [portA, portB] = [await freePort(), await freePort()];
    const [alice, bob] = [token(), token()];
    const served = await startUsersServer([
      { name: 'alice', tokens: [hashToken(alice)], allowLocal: [only(echoA.port)], allowRemote: [{ from: portA, to: portA }] },
      { name: 'bob', tokens: [hashToken(bob)], allowLocal: [only(echoB.port)], allowRemote: [{ from: portB, to: portB }] },
    ]);
    const [aliceLocal, aliceWrong, bobLocal, bobWrong] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const a = await clientOf(served, alice, { local: [forward(aliceLocal, echoA.port), forward(aliceWrong, echoB.port)] });
    const b = await clientOf(served, bob, { local: [forward(bobLocal, echoB.port), forward(bobWrong, echoA.port)] });

    await (await EchoClient.connect(aliceLocal)).roundTrip('alice');
    await (await EchoClient.connect(bobLocal)).roundTrip('bob');
    expect(await connectionEnd(await dial(aliceWrong), 5_000)).not.toBe('timeout');
    expect(await connectionEnd(await dial(bobWrong), 5_000)).not.toBe('timeout');
    await waitUntil('alice to hear why', () => a.logger.has(`user alice's allow-local does not include 127.0.0.1:${echoB.port}`));
    await waitUntil('bob to hear why', () => b.logger.has(`user bob's allow-local does not include 127.0.0.1:${echoA.port}`));

    // -R: alice may not bind bob's port, nor bob alice's.
    const refusedA = await rejection(clientOf(served, alice, { remote: [forward(portB, echoA.port)] }));
    expect(refusedA.message).toContain(`user alice's allow-remote does not include port ${portB}`);
    const refusedB = await rejection(clientOf(served, bob, { remote: [forward(portA, echoB.port)] }));
    expect(refusedB.message).toContain(`user bob's allow-remote does not include port ${portA}`);

    // Every session line says whose it is.
    const sessionLines = served.logger.entries.filter((e) => e.msg === 'client authenticated' || e.msg.startsWith('refused'));
    expect(sessionLines.length).toBeGreaterThan(0);
    for (const line of sessionLines) expect(['alice', 'bob']).toContain(line.fields.user);
  });

  it('holds a user to its own max-streams and max-sessions', async () => {
    const echo = await echoServer();
    const alice = token();
    const served = await startUsersServer([{ name: 'alice', tokens: [hashToken(alice)], maxStreams: 1, maxSessions: 1 }]);
    const local = await freePort();
    await clientOf(served, alice, { local: [forward(local, echo.port)] });
    const first = await EchoClient.connect(local);
    await first.roundTrip('one');
    expect(await connectionEnd(await dial(local), 5_000)).not.toBe('timeout');
    await waitUntil('the refusal in the log', () => served.logger.has('refused a stream: the client is at its max-streams'));
    await first.roundTrip('still');
    // A client would retry a limit; by hand, the refusal itself.
    const { session } = await rawSession(served.port);
    const refused = await sendHello(session, { type: 'hello', version: 1, token: alice, clientId: randomUUID() }).reader.next('error');
    expect(refused).toMatchObject({ code: 'ERR_MUXTUN_LIMIT', message: 'user alice holds its limit of 1 sessions' });
  });
});

describe('several tokens per user', () => {
  it('lets both tokens in as the same user', async () => {
    const [one, two] = [token(), token()];
    const served = await startUsersServer([{ name: 'alice', tokens: [hashToken(one), hashToken(two)] }]);
    await clientOf(served, one);
    await clientOf(served, two);
    expect(served.server.sessions().map((s) => s.user)).toEqual(['alice', 'alice']);
  });
});

describe('sessions are the user\'s and the client id\'s', () => {
  it('a second user with the same client id gets a session of its own, and cannot resume the first one\'s', async () => {
    const [alice, bob] = [token(), token()];
    const served = await startUsersServer([
      { name: 'alice', tokens: [hashToken(alice)] },
      { name: 'bob', tokens: [hashToken(bob)] },
    ]);
    const clientId = randomUUID();
    const first = await rawSession(served.port);
    const a = sendHello(first.session, { type: 'hello', version: 1, token: alice, clientId, resume: true });
    const welcome = await a.reader.next('welcome');
    const second = await rawSession(served.port);
    const b = sendHello(second.session, { type: 'hello', version: 1, token: bob, clientId });
    await b.reader.next('welcome');
    expect(served.server.sessions().map((s) => [s.user, s.clientId]).sort()).toEqual([['alice', clientId], ['bob', clientId]]);
    expect(first.session.isClosed).toBe(false);

    // Bob, with alice's session id and secret: no such session for bob.
    const third = await rawSession(served.port);
    const resume = (welcome.resume as { secret: string }).secret;
    const c = sendHello(third.session, { type: 'hello', version: 1, token: bob, clientId, resume: true, resumeSession: { sessionId: welcome.sessionId, secret: resume } });
    expect((await c.reader.next('error')).code).toBe('ERR_MUXTUN_RESUME_REFUSED');
    expect(first.session.isClosed).toBe(false);
    expect(served.server.sessions().find((s) => s.user === 'alice')?.sessionId).toBe(welcome.sessionId);
  });
});

describe('reconfigure', () => {
  it('removing a user ends its session with ERR_MUXTUN_ACCESS_REVOKED, while another user\'s transfer goes on untouched', async () => {
    const target = await hashServer(24 * MiB);
    const [alice, bob] = [token(), token()];
    const users: TunnelUser[] = [
      { name: 'alice', tokens: [hashToken(alice)] },
      { name: 'bob', tokens: [hashToken(bob)] },
    ];
    const served = await startUsersServer(users);
    const a = await clientOf(served, alice);
    const bobLocal = await freePort();
    const b = await clientOf(served, bob, { local: [forward(bobLocal, target.port)] });
    const transfer = hashExchange(bobLocal, 24 * MiB, 60_000);
    await waitUntil('bob\'s transfer to be under way', () => (served.server.sessions().find((s) => s.user === 'bob')?.streams ?? 0) > 0);

    const result = served.server.reconfigure({ ...served.options, users: [users[1]!] });
    expect(result).toEqual({ applied: ['users'], restartNeeded: [] });
    const revoked = await within(rejection(a.running), 10_000, 'alice\'s run() to end');
    expect((revoked as Error & { code?: string }).code).toBe('ERR_MUXTUN_ACCESS_REVOKED');
    expect(revoked.message).toBe('access revoked: user alice was removed');
    await transfer;
    expect(served.server.sessions().map((s) => [s.user, s.sessionId])).toEqual([['bob', b.ready.sessionId]]);
    expect(b.client.stats().connected).toBe(true);
    expect(served.logger.entries.some((e) => e.fields.user === 'alice' && e.msg === 'access revoked: user alice was removed')).toBe(true);
    // Alice's token is no good any more.
    expect(((await rejection(clientOf(served, alice))) as Error & { code?: string }).code).toBe('ERR_MUXTUN_AUTH');
  });

  it('removing one of a user\'s tokens ends only the sessions that used it', async () => {
    const [one, two] = [token(), token()];
    const served = await startUsersServer([{ name: 'alice', tokens: [hashToken(one), hashToken(two)] }]);
    const first = await clientOf(served, one);
    const second = await clientOf(served, two);
    served.server.reconfigure({ ...served.options, users: [{ name: 'alice', tokens: [hashToken(two)] }] });
    const revoked = await within(rejection(first.running), 10_000, 'the first client to end');
    expect(revoked.message).toBe('access revoked: the token this session authenticated with was removed from user alice');
    expect(served.server.sessions().map((s) => s.sessionId)).toEqual([second.ready.sessionId]);
    expect(second.client.stats().connected).toBe(true);
  });

  it('narrowing allow-remote closes that -R listener (its open connection goes on) and tells the client; the other forward is untouched', async () => {
    const echo = await echoServer();
    const [kept, closed] = [await freePort(), await freePort()];
    const alice = token();
    const user = (ports: number[]): TunnelUser => ({ name: 'alice', tokens: [hashToken(alice)], allowRemote: ports.map((p) => ({ from: p, to: p })) });
    const served = await startUsersServer([user([kept, closed])]);
    const a = await clientOf(served, alice, { remote: [forward(kept, echo.port), forward(closed, echo.port)] });
    const open = await EchoClient.connect(closed);
    await open.roundTrip('before');

    const result = served.server.reconfigure({ ...served.options, users: [user([kept])] });
    expect(result.applied).toEqual(['users']);
    await waitUntil('the client to hear forward-closed', () => a.logger.has(`the server closed -R 127.0.0.1:${closed} -> 127.0.0.1:${echo.port}`));
    expect(a.logger.has(`user alice's allow-remote does not include port ${closed}`)).toBe(true);
    const refused = net.connect(closed, '127.0.0.1');
    const outcome = await new Promise<string>((resolve) => {
      refused.once('connect', () => resolve('connected'));
      refused.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    refused.destroy();
    expect(outcome).toBe('ECONNREFUSED');
    await open.roundTrip('after');
    await (await EchoClient.connect(kept)).roundTrip('kept');
    expect(served.server.sessions()[0]?.sessionId).toBe(a.ready.sessionId);
    expect(served.server.sessions()[0]?.remoteListeners).toBe(1);
  });

  it('with invalid options throws ERR_MUXTUN_INVALID_ARGUMENT and changes nothing', async () => {
    const alice = token();
    const users: TunnelUser[] = [{ name: 'alice', tokens: [hashToken(alice)] }];
    const served = await startUsersServer(users);
    const a = await clientOf(served, alice);
    const bad = { ...served.options, users: [{ name: 'bob', tokens: [hashToken(alice)] }, { name: 'eve', tokens: [hashToken(alice)] }] };
    expect(() => served.server.reconfigure(bad)).toThrow(expect.objectContaining({ code: 'ERR_MUXTUN_INVALID_ARGUMENT', field: 'users[1].tokens[0]' }));
    expect(served.server.sessions().map((s) => [s.user, s.sessionId])).toEqual([['alice', a.ready.sessionId]]);
    await clientOf(served, alice);
    expect(served.server.sessions().every((s) => s.user === 'alice')).toBe(true);
  });

  it('lists a port change as needing a restart and keeps listening where it was', async () => {
    const alice = token();
    const served = await startUsersServer([{ name: 'alice', tokens: [hashToken(alice)] }]);
    const result = served.server.reconfigure({ ...served.options, port: await freePort(), limits: { maxStreams: 7 } });
    expect(result).toEqual({ applied: ['limits.maxStreams'], restartNeeded: ['port'] });
    await clientOf(served, alice);
  });
});

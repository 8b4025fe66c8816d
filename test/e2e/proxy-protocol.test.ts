/**
 * PROXY protocol against a real consumer: nginx with `listen …
 * proxy_protocol` answers each request with the addresses the header
 * gave it. Behind `connect --proxy-protocol` (-R) and `serve
 * --proxy-protocol` (-L), v1 and v2, it must see the test's own socket as
 * the client and the listener the test connected to as the destination.
 */
import type net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { startConnect, startServe } from '../support/muxtun.js';
import { dial, freePort } from '../support/net.js';
import { nginxProgram, requirePrograms, skipSuiteWithout, startNginxProxyProtocol } from '../support/real-programs.js';
import { Scope } from '../support/scope.js';
import { within } from '../support/wait.js';

/** One HTTP/1.0 request on a connection of our own to 127.0.0.1:port: the socket's local port and nginx's answer. */
async function ask(port: number, scope: Scope): Promise<{ from: number; body: string }> {
  const socket: net.Socket = await dial(port, { scope });
  const from = socket.localPort!;
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.end('GET / HTTP/1.0\r\nHost: muxtun.test\r\n\r\n');
  await within(ended, 10_000, `nginx's answer through port ${port}`);
  const response = Buffer.concat(chunks).toString('latin1');
  expect(response, response).toMatch(/^HTTP\/1\.1 200 /);
  return { from, body: response.slice(response.indexOf('\r\n\r\n') + 4).trim() };
}

describe.skipIf(skipSuiteWithout('PROXY protocol into nginx', nginxProgram))('nginx (listen … proxy_protocol) behind a forward', () => {
  beforeAll(() => requirePrograms([nginxProgram.path]));

  it.concurrent.for([
    { how: 'v1 (connect --proxy-protocol v1)', args: ['--proxy-protocol', 'v1'], suffix: '' },
    { how: 'v2 (-R …,proxy-protocol=v2)', args: [], suffix: ',proxy-protocol=v2' },
  ])('-R $how: nginx sees the real client', async ({ args, suffix }, context) => {
    const scope = new Scope(context);
    const nginx = await startNginxProxyProtocol({ scope });
    const server = await startServe({ scope });
    const connect = await startConnect(server, { scope, remote: [`127.0.0.1:0:127.0.0.1:${nginx.port}${suffix}`], args });
    const [port] = connect.remotePorts;
    expect(port).toBeGreaterThan(0);
    const { from, body } = await ask(port!, scope);
    expect(body).toBe(`127.0.0.1:${from} 127.0.0.1:${port}`);
  });

  it.concurrent.for(['v1', 'v2'])('-L with serve --proxy-protocol %s: nginx sees the client of the -L listener', async (version, context) => {
    const scope = new Scope(context);
    const nginx = await startNginxProxyProtocol({ scope });
    const server = await startServe({ scope, args: ['--proxy-protocol', version] });
    const localPort = await freePort();
    await startConnect(server, { scope, local: [`${localPort}:127.0.0.1:${nginx.port}`] });
    const { from, body } = await ask(localPort, scope);
    expect(body).toBe(`127.0.0.1:${from} 127.0.0.1:${localPort}`);
  });
});

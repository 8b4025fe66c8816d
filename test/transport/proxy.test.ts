/**
 * Proxy URLs, the environment's proxy variables, and the HTTP CONNECT
 * client against scripted proxies: every answer a proxy may give maps to
 * its own error code, and credentials never reach a message.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { httpConnect } from '../../src/transport/http-connect.js';
import { parseProxyUrl, proxyFromEnv, redactUrl, TransportError } from '../../src/transport/index.js';
import { listen } from '../support/net.js';

describe('parseProxyUrl', () => {
  it('reads http, socks5 and socks5h URLs with their credentials and default ports', () => {
    expect(parseProxyUrl('http://u%40x:p%3Aw@proxy.corp:3128')).toEqual({ protocol: 'http', host: 'proxy.corp', port: 3128, username: 'u@x', password: 'p:w' });
    expect(parseProxyUrl('socks5://127.0.0.1')).toEqual({ protocol: 'socks5', host: '127.0.0.1', port: 1080 });
    expect(parseProxyUrl('socks5h://[::1]:9050')).toEqual({ protocol: 'socks5h', host: '::1', port: 9050 });
    expect(parseProxyUrl('proxy:8080')).toEqual({ protocol: 'http', host: 'proxy', port: 8080 });
  });

  it('refuses other schemes and paths, naming the URL without its password', () => {
    for (const text of ['https://me:topsecret@proxy:443', 'ftp://me:topsecret@x', 'http://me:topsecret@x:1/path', 'http://me:topsecret@:1']) {
      let error: unknown;
      try {
        parseProxyUrl(text);
      } catch (caught) {
        error = caught;
      }
      expect(error, text).toMatchObject({ code: 'ERR_MUXTUN_INVALID_ARGUMENT' });
      expect((error as Error).message).not.toContain('topsecret');
    }
  });

  it('redacts credentials from any URL', () => {
    expect(redactUrl('http://a:b@h:1')).toBe('http://***@h:1');
    expect(redactUrl('socks5://h:1')).toBe('socks5://h:1');
  });
});

describe('proxyFromEnv', () => {
  const wss = new URL('wss://tunnel.example.com/muxtun');
  it('takes HTTPS_PROXY for wss:// and HTTP_PROXY for ws://, lower case first', () => {
    expect(proxyFromEnv(wss, { HTTPS_PROXY: 'http://a:1', https_proxy: 'http://b:1' })).toEqual({ text: 'http://b:1', source: 'https_proxy' });
    expect(proxyFromEnv(new URL('ws://h:80/x'), { HTTP_PROXY: 'http://a:1', HTTPS_PROXY: 'http://b:1' })).toEqual({ text: 'http://a:1', source: 'HTTP_PROXY' });
    expect(proxyFromEnv(wss, { HTTP_PROXY: 'http://a:1' })).toBeUndefined();
  });

  it('skips hosts NO_PROXY names: *, exact, suffix, .suffix, with a port', () => {
    const env = { HTTPS_PROXY: 'http://p:1' };
    expect(proxyFromEnv(wss, { ...env, NO_PROXY: '*' })).toBeUndefined();
    expect(proxyFromEnv(wss, { ...env, NO_PROXY: 'other.com, tunnel.example.com' })).toBeUndefined();
    expect(proxyFromEnv(wss, { ...env, NO_PROXY: 'example.com' })).toBeUndefined();
    expect(proxyFromEnv(wss, { ...env, no_proxy: '.example.com' })).toBeUndefined();
    expect(proxyFromEnv(wss, { ...env, NO_PROXY: 'example.com:8443' })).toBeDefined();
    expect(proxyFromEnv(wss, { ...env, NO_PROXY: 'ample.com' })).toBeDefined();
  });
});

/** A scripted HTTP proxy: answers the CONNECT request with `answer`, records the request. */
async function scriptedProxy(answer: string | Buffer): Promise<{ port: number; requests: string[] }> {
  const requests: string[] = [];
  const server = await listen((socket) => {
    socket.once('data', (chunk: Buffer) => {
      requests.push(chunk.toString('latin1'));
      socket.write(answer);
      if (!String(answer).startsWith('HTTP/1.1 200 Connection established')) socket.end();
    });
  });
  return { port: server.port, requests };
}

async function connectError(port: number, password?: string): Promise<TransportError> {
  const proxy = { protocol: 'http' as const, host: '127.0.0.1', port, ...(password ? { username: 'me', password } : {}) };
  try {
    const socket = await httpConnect(proxy, 'tunnel.example.com', 443, AbortSignal.timeout(5_000));
    socket.destroy();
  } catch (error) {
    expect(error).toBeInstanceOf(TransportError);
    if (password) expect((error as Error).message).not.toContain(password);
    return error as TransportError;
  }
  throw new Error('httpConnect succeeded');
}

describe('httpConnect', () => {
  it('sends CONNECT with Basic credentials and keeps bytes that came with the 200', async () => {
    const proxy = await scriptedProxy('HTTP/1.1 200 Connection established\r\n\r\nEARLY');
    const socket = await httpConnect({ protocol: 'http', host: '127.0.0.1', port: proxy.port, username: 'me', password: 'pw' }, 'tunnel.example.com', 443, AbortSignal.timeout(5_000));
    const first = await new Promise<Buffer>((resolve) => {
      socket.once('data', resolve);
      socket.resume();
    });
    socket.destroy();
    expect(first.toString()).toBe('EARLY');
    expect(proxy.requests[0]).toMatch(/^CONNECT tunnel\.example\.com:443 HTTP\/1\.1\r\n/);
    expect(proxy.requests[0]).toContain(`Proxy-Authorization: Basic ${Buffer.from('me:pw').toString('base64')}\r\n`);
  });

  it('maps each answer to its code', async () => {
    expect((await connectError((await scriptedProxy('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n')).port, 'hunter2')).code).toBe('ERR_MUXTUN_PROXY_AUTH');
    const refused = await connectError((await scriptedProxy('HTTP/1.1 403 Forbidden\r\n\r\n')).port);
    expect(refused.code).toBe('ERR_MUXTUN_PROXY_REFUSED');
    expect(refused.message).toContain('"HTTP/1.1 403 Forbidden"');
    expect((await connectError((await scriptedProxy('SSH-2.0-OpenSSH\r\n\r\n')).port)).code).toBe('ERR_MUXTUN_PROXY_REFUSED');
    expect((await connectError((await scriptedProxy(Buffer.alloc(20_000, 0x41))).port)).code).toBe('ERR_MUXTUN_PROXY_REFUSED');
    expect((await connectError((await scriptedProxy('HTTP/1.1 200 OK')).port)).code).toBe('ERR_MUXTUN_PROXY_UNREACHABLE');
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    expect((await connectError(closed, 'hunter2')).code).toBe('ERR_MUXTUN_PROXY_UNREACHABLE');
  });

  it('gives up at the deadline with a timeout, not a hang', async () => {
    const silent = await listen(() => undefined);
    const error = await httpConnect({ protocol: 'http', host: '127.0.0.1', port: silent.port }, 'h', 1, AbortSignal.timeout(200)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_MUXTUN_CONNECT_TIMEOUT' });
  });
});

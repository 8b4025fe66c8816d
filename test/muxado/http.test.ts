import { once } from 'node:events';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, type Session, type Stream } from '../../src/muxado/index.js';
import { sha256 } from '../support/net.js';
import { patternBytes } from '../support/bytes.js';
import { quiet, sessionPair, streamOutcome } from './helpers.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Every stream handed to HTTP, with a promise of its close, so a test can await them all. */
const served = new WeakMap<http.Server, Array<Promise<Error | null>>>();

/** An HTTP server fed the streams the server session accepts. */
function serveHttp(session: Session, handler: http.RequestListener): http.Server {
  const httpServer = http.createServer(handler);
  servers.push(httpServer);
  const closes: Array<Promise<Error | null>> = [];
  served.set(httpServer, closes);
  session.on('stream', (stream) => {
    closes.push(streamOutcome(stream));
    httpServer.emit('connection', stream);
  });
  return httpServer;
}

/** A createConnection that opens streams on `session` and keeps a promise of each one's close. */
function opener(session: Session): { createConnection: () => Stream; closes: Array<Promise<Error | null>> } {
  const closes: Array<Promise<Error | null>> = [];
  return {
    closes,
    createConnection: () => {
      const stream = session.open();
      closes.push(streamOutcome(stream));
      return stream;
    },
  };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(options: http.RequestOptions, body?: Buffer | string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: 'tunnel', ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const echoHandler: http.RequestListener = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.setHeader('x-method', req.method ?? '');
    res.setHeader('x-url', req.url ?? '');
    res.setHeader('x-body-sha256', sha256(body));
    res.end(body);
  });
};

describe('HTTP over muxado streams', () => {
  it('serves requests on streams the session accepts, each request on a fresh stream (no agent)', async () => {
    const { client, server } = await sessionPair();
    serveHttp(server, echoHandler);
    for (let i = 0; i < 5; i++) {
      const reply = await request({ method: 'POST', path: `/echo/${i}`, createConnection: () => client.open() }, `body ${i}`);
      expect(reply.status).toBe(200);
      expect(reply.headers['x-url']).toBe(`/echo/${i}`);
      expect(reply.body.toString()).toBe(`body ${i}`);
    }
  });

  it('GET and a large POST with Connection: close', async () => {
    const { client, server } = await sessionPair();
    const httpServer = serveHttp(server, echoHandler);
    const { createConnection, closes } = opener(client);
    const get = await request({ path: '/', headers: { connection: 'close' }, createConnection });
    expect([get.status, get.headers['x-method'], get.headers.connection]).toEqual([200, 'GET', 'close']);
    const big = patternBytes(3 * 1024 * 1024, 42);
    const post = await request({ method: 'POST', path: '/big', headers: { connection: 'close' }, createConnection }, big);
    expect(post.headers['x-body-sha256']).toBe(sha256(big));
    expect(sha256(post.body)).toBe(sha256(big));
    // Streams end with their requests, and leave both sessions.
    await Promise.all([...closes, ...served.get(httpServer)!]);
    expect([closes.length, client.openStreams, server.openStreams]).toEqual([2, 0, 0]);
  });

  it('keep-alive: an Agent reuses one stream for several requests in sequence', async () => {
    const { client, server } = await sessionPair();
    let connections = 0;
    serveHttp(server, echoHandler).on('connection', () => connections++);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agent.createConnection = () => client.open();
    try {
      for (let i = 0; i < 6; i++) {
        const reply = await request({ method: 'PUT', path: `/k/${i}`, agent }, patternBytes(100_000, i));
        expect(reply.headers['x-body-sha256']).toBe(sha256(patternBytes(100_000, i)));
      }
      expect(connections).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('keep-alive: concurrent requests over several pooled streams', async () => {
    const { client, server } = await sessionPair();
    let connections = 0;
    serveHttp(server, echoHandler).on('connection', () => connections++);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    agent.createConnection = () => client.open();
    try {
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => request({ method: 'POST', path: `/c/${i}`, agent }, patternBytes(20_000 + i, i))),
      );
      replies.forEach((reply, i) => {
        expect(reply.headers['x-url']).toBe(`/c/${i}`);
        expect(sha256(reply.body)).toBe(sha256(patternBytes(20_000 + i, i)));
      });
      expect(connections).toBeLessThanOrEqual(4);
    } finally {
      agent.destroy();
    }
  });

  it('keep-alive off on the server: each response closes its stream and the agent opens another', async () => {
    const { client, server } = await sessionPair();
    let connections = 0;
    const httpServer = serveHttp(server, (req, res) => {
      res.setHeader('connection', 'close');
      echoHandler(req, res);
    });
    httpServer.on('connection', () => connections++);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agent.createConnection = () => client.open();
    try {
      for (let i = 0; i < 3; i++) {
        const reply = await request({ path: `/n/${i}`, agent });
        expect(reply.headers['x-url']).toBe(`/n/${i}`);
      }
      expect(connections).toBe(3);
    } finally {
      agent.destroy();
    }
  });

  it('serves HTTP the other way: the client session accepts, the server session requests', async () => {
    const { client, server } = await sessionPair();
    serveHttp(client, echoHandler);
    const reply = await request({ method: 'POST', path: '/reverse', createConnection: () => server.open() }, 'upstream');
    expect(reply.body.toString()).toBe('upstream');
  });

  it("a client request timeout fires through the stream's setTimeout", async () => {
    const { client, server } = await sessionPair();
    const httpServer = serveHttp(server, () => {
      // Never answers.
    });
    const opened = opener(client);
    // As net.createConnection does, the connection factory applies options.timeout.
    const createConnection = (options: http.ClientRequestArgs): Stream => opened.createConnection().setTimeout(options.timeout ?? 0);
    const req = http.request({ host: 'tunnel', path: '/slow', timeout: 50, createConnection });
    req.on('error', () => {});
    req.end();
    await once(req, 'timeout');
    const closed = new Promise((resolve) => req.on('close', resolve));
    req.destroy();
    await closed;
    // The aborted request resets its stream; the server's side goes too.
    await Promise.all([...opened.closes, ...served.get(httpServer)!]);
    expect([client.openStreams, server.openStreams]).toEqual([0, 0]);
  });

  it("the server's keepAliveTimeout closes an idle stream", async () => {
    const { client, server } = await sessionPair();
    const httpServer = serveHttp(server, echoHandler);
    httpServer.keepAliveTimeout = 50;
    const stream = quiet(client.open());
    const outcome = streamOutcome(stream);
    const received: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => received.push(chunk));
    stream.write('GET /idle HTTP/1.1\r\nHost: tunnel\r\n\r\n');
    // The response comes, then nothing: once idle past the timeout (Node adds
    // a second to keepAliveTimeout), the server drops the stream.
    const error = await outcome;
    expect(Buffer.concat(received).toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*keep-alive: timeout=0/i);
    // The HTTP server destroys the socket: here, RST(CANCEL).
    expect(error).toMatchObject({ code: 'ERR_MUXADO_STREAM_RESET', errorCode: ErrorCode.CANCEL });
    expect(await Promise.all(served.get(httpServer)!)).toEqual([null]);
    expect(server.openStreams).toBe(0);
  });

  it('streamed response bodies (chunked) arrive whole', async () => {
    const { client, server } = await sessionPair();
    serveHttp(server, async (_req, res) => {
      for (let i = 0; i < 50; i++) {
        if (!res.write(patternBytes(10_000, i))) await once(res, 'drain');
      }
      res.end();
    });
    const reply = await request({ path: '/stream', createConnection: () => client.open() });
    expect(reply.headers['transfer-encoding']).toBe('chunked');
    expect(sha256(reply.body)).toBe(sha256(Buffer.concat(Array.from({ length: 50 }, (_, i) => patternBytes(10_000, i)))));
  });
});

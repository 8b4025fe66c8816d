import { once } from 'node:events';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, type Session, type Stream } from '../../src/muxado/index.js';
import { patternBytes, quiet, sessionPair, sha256, streamOutcome } from './helpers.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** An HTTP server fed the streams the server session accepts. */
function serveHttp(session: Session, handler: http.RequestListener): http.Server {
  const httpServer = http.createServer(handler);
  servers.push(httpServer);
  session.on('stream', (stream) => httpServer.emit('connection', stream));
  return httpServer;
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
    serveHttp(server, echoHandler);
    const get = await request({ path: '/', headers: { connection: 'close' }, createConnection: () => client.open() });
    expect([get.status, get.headers['x-method'], get.headers.connection]).toEqual([200, 'GET', 'close']);
    const big = patternBytes(3 * 1024 * 1024, 42);
    const post = await request({ method: 'POST', path: '/big', headers: { connection: 'close' }, createConnection: () => client.open() }, big);
    expect(post.headers['x-body-sha256']).toBe(sha256(big));
    expect(sha256(post.body)).toBe(sha256(big));
    // Streams end with their requests.
    await waitFor(() => client.openStreams === 0 && server.openStreams === 0);
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
    serveHttp(server, () => {
      // Never answers.
    });
    // As net.createConnection does, the connection factory applies options.timeout.
    const createConnection = (options: http.ClientRequestArgs): Stream => client.open().setTimeout(options.timeout ?? 0);
    const req = http.request({ host: 'tunnel', path: '/slow', timeout: 50, createConnection });
    req.on('error', () => {});
    req.end();
    await once(req, 'timeout');
    const closed = new Promise((resolve) => req.on('close', resolve));
    req.destroy();
    await closed;
    await waitFor(() => client.openStreams === 0 && server.openStreams === 0);
  });

  it("the server's keepAliveTimeout closes an idle stream", async () => {
    const { client, server } = await sessionPair();
    serveHttp(server, echoHandler).keepAliveTimeout = 50;
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
    await waitFor(() => server.openStreams === 0);
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

/** Waits for a condition that settles through stream events (close), checking once per loop turn. */
async function waitFor(condition: () => boolean, turns = 1000): Promise<void> {
  for (let i = 0; i < turns && !condition(); i++) await new Promise((resolve) => setImmediate(resolve));
  expect(condition()).toBe(true);
}

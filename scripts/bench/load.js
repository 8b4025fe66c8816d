// Load generator for `npm run bench`, one workload per process so its event
// loop is not the one that measures something else. Talks to an echo target
// (directly or through a tunnel) on 127.0.0.1 and prints one JSON line.
// Usage: node load.js '<json spec>'; spec.mode is one of
//   bulk      {port, bytes, connections}  each connection sends `bytes` and reads the echo: MB/s each way
//   rate      {port, seconds, concurrency, size}  new connection per request: requests/s, latency
//   pingpong  {port, seconds, size}  one connection, one message in flight: round-trip latency
//   saturate  {port}  one connection echoing flat out until stdin closes; prints STARTED once data flows
//   idle      {port, connections, parallel}  opens connections (one round trip each) and holds them until stdin closes
import { randomBytes } from 'node:crypto';
import net from 'node:net';

const spec = JSON.parse(process.argv[2]);
const CHUNK = randomBytes(64 * 1024);
const now = () => performance.now();

function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Writes `bytes` (or forever, if Infinity) respecting backpressure, then ends. */
function pump(socket, bytes, isStopped = () => false) {
  let sent = 0;
  const write = () => {
    while (sent < bytes && !isStopped()) {
      const n = Math.min(CHUNK.length, bytes - sent);
      sent += n;
      if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        socket.once('drain', write);
        return;
      }
    }
    if (sent >= bytes) socket.end();
  };
  write();
}

async function bulk({ port, bytes, connections }) {
  const start = now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const socket = await connect(port);
      await new Promise((resolve, reject) => {
        let received = 0;
        socket.on('data', (d) => (received += d.length));
        socket.on('end', () => (received === bytes ? resolve() : reject(new Error(`echo ended after ${received} of ${bytes} bytes`))));
        socket.on('error', reject);
        pump(socket, bytes);
      });
      socket.destroy();
    }),
  );
  const seconds = (now() - start) / 1000;
  return { mbps: (bytes * connections) / 1e6 / seconds, seconds };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function latencySummary(samples) {
  const sorted = Float64Array.from(samples).sort();
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
}

/** One request on a fresh connection: connect, send `size` bytes, read `size` back, close. Resolves with ms. */
function oneRequest(port, request) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let got = 0;
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d) => {
      got += d.length;
      if (got < request.length) return;
      const ms = now() - t0;
      socket.destroy();
      resolve(ms);
    });
    socket.on('error', (error) => {
      socket.destroy();
      reject(error);
    });
    socket.on('close', () => reject(new Error('closed before the response')));
  });
}

async function rate({ port, seconds, concurrency, size }) {
  const request = CHUNK.subarray(0, size);
  const samples = [];
  const errors = {};
  const start = now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (now() < deadline) {
        try {
          samples.push(await oneRequest(port, request));
        } catch (error) {
          errors[error.code ?? error.message] = (errors[error.code ?? error.message] ?? 0) + 1;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }),
  );
  const elapsed = (now() - start) / 1000;
  return { perSecond: samples.length / elapsed, ...latencySummary(samples), errors };
}

async function pingpong({ port, seconds, size }) {
  const socket = await connect(port);
  const message = CHUNK.subarray(0, size);
  let waiting = null;
  let got = 0;
  socket.on('data', (d) => {
    got += d.length;
    if (got >= size && waiting) {
      got -= size;
      const done = waiting;
      waiting = null;
      done();
    }
  });
  const roundTrip = () =>
    new Promise((resolve) => {
      waiting = resolve;
      socket.write(message);
    });
  for (let i = 0; i < PINGPONG_WARMUP; i++) await roundTrip(); // warm up the JIT and the path
  const samples = [];
  const deadline = now() + seconds * 1000;
  while (now() < deadline) {
    const t0 = now();
    await roundTrip();
    samples.push(now() - t0);
  }
  socket.destroy();
  return { ...latencySummary(samples), warmup: PINGPONG_WARMUP };
}

const PINGPONG_WARMUP = 200;

async function saturate({ port }) {
  const socket = await connect(port);
  let stopped = false;
  let received = 0;
  let startedAt = 0;
  socket.on('data', (d) => {
    received += d.length;
    if (startedAt === 0) {
      startedAt = now();
      received = 0;
      process.stdout.write('STARTED\n');
    }
  });
  socket.on('error', () => {});
  pump(socket, Infinity, () => stopped);
  await new Promise((resolve) => process.stdin.on('end', resolve).resume());
  stopped = true;
  const seconds = (now() - startedAt) / 1000;
  return { mbps: startedAt === 0 ? 0 : received / 1e6 / seconds, seconds };
}

async function idle({ port, connections, parallel }) {
  const held = [];
  const ping = Buffer.from('x');
  let next = 0;
  let failed = 0;
  const openOne = async () => {
    const socket = await connect(port);
    socket.on('error', () => {});
    // One byte there and back: the connection is forwarded all the way to the target.
    await new Promise((resolve, reject) => {
      socket.once('data', resolve);
      socket.once('close', () => reject(new Error('closed')));
      socket.write(ping);
    });
    socket.removeAllListeners('close');
    held.push(socket);
  };
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < connections) {
        next++;
        try {
          await openOne();
        } catch {
          failed++;
        }
      }
    }),
  );
  process.stdout.write(`OPEN ${held.length} ${failed}\n`);
  await new Promise((resolve) => process.stdin.on('end', resolve).resume());
  for (const socket of held) socket.destroy();
  return { open: held.length, failed };
}

const modes = { bulk, rate, pingpong, saturate, idle };
const result = await modes[spec.mode](spec);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);

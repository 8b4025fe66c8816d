// The engine benchmark's client, the same workloads as the Go peer's `bench`
// subcommand (test/interop/peer/main.go): bulk through an echo on 1 and 32
// streams, stream open+request+response+close per second with 8 in flight,
// and heap bytes per idle open stream. Run with --expose-gc.
// Usage: node --expose-gc engine-client.js PORT BULK_BYTES RR_SECONDS IDLE_STREAMS
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { client } from '../../dist/muxado/index.js';

const [port, bulkBytes, rrSeconds, idleStreams] = process.argv.slice(2).map(Number);

async function dial() {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  return client(socket, { maxStreams: 20_000 });
}

/** Writes `data`, half-closes, and hashes the echo; resolves with the echo's sha256. */
function roundTrip(session, data) {
  return new Promise((resolve, reject) => {
    const stream = session.open();
    const hash = createHash('sha256');
    stream.on('data', (chunk) => hash.update(chunk));
    stream.on('end', () => resolve(hash.digest('hex')));
    stream.on('error', reject);
    stream.end(data);
  });
}

async function bulk(streams) {
  const session = await dial();
  const each = Math.floor(bulkBytes / streams);
  const payloads = Array.from({ length: streams }, () => randomBytes(each));
  const start = performance.now();
  const sums = await Promise.all(payloads.map((p) => roundTrip(session, p)));
  const seconds = (performance.now() - start) / 1000;
  payloads.forEach((p, i) => {
    if (createHash('sha256').update(p).digest('hex') !== sums[i]) throw new Error(`bulk x${streams}: stream ${i} echo mismatch`);
  });
  session.close();
  return (streams * each) / 2 ** 20 / seconds;
}

async function requestResponse() {
  const session = await dial();
  const request = randomBytes(64);
  const deadline = performance.now() + rrSeconds * 1000;
  let count = 0;
  const start = performance.now();
  const worker = async () => {
    while (performance.now() < deadline) {
      await new Promise((resolve, reject) => {
        const stream = session.open();
        let got = 0;
        stream.on('data', (chunk) => (got += chunk.length));
        stream.on('end', () => (got === 64 ? resolve() : reject(new Error(`rr: got ${got} bytes`))));
        stream.on('error', reject);
        stream.end(request);
      });
      count++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const rate = count / ((performance.now() - start) / 1000);
  session.close();
  return rate;
}

function heapUsed() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function idle() {
  const session = await dial();
  await roundTrip(session, randomBytes(64));
  const before = heapUsed();
  const held = [];
  for (let i = 0; i < idleStreams; i++) held.push(session.open());
  await roundTrip(session, randomBytes(64));
  const after = heapUsed();
  if (held.length !== idleStreams) throw new Error('idle streams lost');
  session.close();
  return (after - before) / idleStreams;
}

const result = { impl: 'muxtun-muxado', singleStreamMBps: await bulk(1), parallelStreams: 32, parallelMBps: await bulk(32) };
result.requestsPerSecond = await requestResponse();
result.idleStreams = idleStreams;
result.heapBytesPerStream = await idle();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);

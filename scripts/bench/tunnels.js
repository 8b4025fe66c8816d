// The kinds `npm run bench` compares, each a path from a local port to the
// echo target: `direct` (no tunnel), `muxtun` (the real CLI: serve + connect
// -L over TLS), `ssh -L` (an OpenSSH server of our own on loopback) and
// `go-muxado` (go-tunnel/main.go: the same design on the Go reference muxado).
// start(targets) takes the ports of two echo targets, `bulk` and
// `interactive` (one target process would make the ping-pong wait behind bulk
// data in the target's own event loop), and resolves once a round trip gets
// through both with { port, interactivePort, processes(), stop() };
// processes() names the pids whose memory and CPU count for that kind.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, onPath, waitForListening } from '../../test/support/ports.js';
import { SSHD, writeSshdFiles } from '../../test/support/sshd-files.js';
import { buildGo, goAvailable, goTunnelBinary, processTree, root, spawnChild, stopChild, waitForEcho, waitForOutput } from './procs.js';

export const direct = {
  name: 'direct',
  available: () => ({ ok: true }),
  async start(targets) {
    return { port: targets.bulk, interactivePort: targets.interactive, processes: () => ({}), stop: async () => {} };
  },
};

/**
 * muxtun as a user runs it: two CLI processes, a fresh state dir (new
 * certificate), the token in MUXTUN_TOKEN, the pin from serve's stdout.
 * `profileDir` adds --cpu-prof to both (written when they stop cleanly).
 * `checkout` runs another built copy of the repository instead of this one,
 * as kind `name`: a change measured side by side with what it changes.
 * `connectFlags` are added to connect (e.g. --no-resume, kind muxtun-noresume);
 * `nodeFlags` to both node processes (BENCH_NODE_FLAGS, kind muxtun+flags).
 * `metrics` turns on --metrics on both and scrapes both endpoints every
 * `metrics.everyMs` while the tunnel is up (kind muxtun-metrics): what
 * watching a tunnel costs it.
 */
export function muxtun({ profileDir, checkout = root, name = 'muxtun', connectFlags = [], webSocket = false, metrics = null, nodeFlags = [] } = {}) {
  const cli = path.join(checkout, 'bin/muxtun.js');
  return {
    name,
    available: () => (existsSync(path.join(checkout, 'dist/cli/main.js')) ? { ok: true } : { ok: false, reason: `${path.join(checkout, 'dist')} is not built (npm run build)` }),
    async start(targets) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'muxtun-bench-'));
      const env = { ...process.env, MUXTUN_TOKEN: randomBytes(24).toString('base64url'), HOME: dir, XDG_CONFIG_HOME: dir, XDG_STATE_HOME: dir };
      const tag = name.replace(/[^\w.-]+/g, '_');
      const nodeArgs = (role) => [
        ...nodeFlags,
        ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${tag}-${role}-${Date.now()}.cpuprofile`] : []),
        // BENCH_DIAG=1: event-loop delay, GC pauses and write queues, read around the loaded ping (diag-preload.js).
        ...(diagnosing ? ['--import', diagPreload] : []),
      ];
      if (diagnosing) env.MUXTUN_BENCH_DIAG_DIR = dir;
      const scrapers = [];
      const hooks = {
        graceMs: 10_000,
        beforeStop: () => scrapers.forEach((timer) => clearInterval(timer)),
        afterStop: () => rmSync(dir, { recursive: true, force: true }),
      };
      // connect is stopped first: its session ends cleanly, then serve has nothing to drain.
      return startTunnel('muxtun connect', hooks, async (spawn, ready) => {
        const wsArgs = webSocket ? ['--ws-listen', '127.0.0.1:0', '--no-tls-listen'] : [];
        const metricsPorts = metrics ? [await freePort(), await freePort()] : [];
        const metricsArgs = (i) => (metrics ? ['--metrics', `127.0.0.1:${metricsPorts[i]}`] : []);
        const serve = spawn(process.execPath, [...nodeArgs('serve'), cli, 'serve', '--host', '127.0.0.1', '--port', '0', ...wsArgs, ...metricsArgs(0), '--state-dir', path.join(dir, 'state'), '--log-level', 'warn', '--drain-timeout', '1'], { env });
        const [, servePort, fingerprint] = await waitForOutput(serve, /listening on 127\.0\.0\.1:(\d+)\nfingerprint: (sha256:[0-9a-fA-F:]+)/, 'muxtun serve');
        // With --no-tls-listen the one port serve prints is the WebSocket listener's.
        const server = webSocket ? `ws://127.0.0.1:${servePort}/muxtun` : `127.0.0.1:${servePort}`;
        const [port, interactivePort] = [await freePort(), await freePort()];
        const forwards = ['-L', `${port}:127.0.0.1:${targets.bulk}`, '-L', `${interactivePort}:127.0.0.1:${targets.interactive}`];
        const connect = spawn(process.execPath, [...nodeArgs('connect'), cli, 'connect', server, '--fingerprint', fingerprint, ...forwards, ...connectFlags, ...metricsArgs(1), '--log-level', 'warn', '--drain-timeout', '1'], { env });
        await ready(port, interactivePort);
        for (const metricsPort of metricsPorts) {
          const get = () => fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => (r.ok ? r.text() : Promise.reject(new Error(`GET /metrics: ${r.status}`))));
          await get();
          const timer = setInterval(() => void get().catch((error) => console.error(`bench: ${name}: scrape failed: ${error.message}`)), metrics.everyMs);
          scrapers.push(timer);
        }
        const diag = diagnosing ? () => readDiagnostics(dir, { serve: serve.pid, connect: connect.pid }) : undefined;
        return { port, interactivePort, processes: () => ({ server: [serve.pid], client: [connect.pid] }), diag };
      });
    },
  };
}

/**
 * Starts one tunnel kind's processes: `launch(spawn, ready)` starts each
 * child with `spawn` and calls `ready(port, interactivePort)` to wait until
 * both forwarded ports echo (errors name `what`). The tunnel's stop() runs
 * `beforeStop`, stops the children last-started first (a client before its
 * server) within `graceMs` each, then runs `afterStop`; a launch that fails
 * is stopped the same way, so no process outlives a failed start.
 */
async function startTunnel(what, { graceMs, beforeStop, afterStop } = {}, launch) {
  const children = [];
  const stop = async () => {
    beforeStop?.();
    for (const child of [...children].reverse()) await stopChild(child, graceMs);
    afterStop?.();
  };
  const spawn = (...args) => {
    const child = spawnChild(...args);
    children.push(child);
    return child;
  };
  const ready = async (port, interactivePort) => {
    await waitForEcho(port, what);
    await waitForEcho(interactivePort, what);
  };
  try {
    return { ...(await launch(spawn, ready)), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

const diagnosing = process.env.BENCH_DIAG === '1';
const diagPreload = pathToFileURL(path.join(root, 'scripts/bench/diag-preload.js')).href;

/** Asks each process for its figures since the last call (SIGUSR2, see diag-preload.js) and reads them. */
async function readDiagnostics(dir, pids) {
  for (const pid of Object.values(pids)) process.kill(pid, 'SIGUSR2');
  const result = {};
  for (const [role, pid] of Object.entries(pids)) {
    const file = path.join(dir, `${pid}.json`);
    const deadline = Date.now() + 2_000;
    for (;;) {
      try {
        const text = readFileSync(file, 'utf8');
        rmSync(file);
        result[role] = JSON.parse(text);
        break;
      } catch {
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  return result;
}

/**
 * muxtun's design written in Go on the reference muxado (scripts/bench/go-tunnel):
 * a server and a client process, one TLS 1.3 connection (Go picks
 * TLS_AES_128_GCM_SHA256 where the CPU has AES, as muxtun's default does; the
 * client prints what it got), one muxado session, a stream per forwarded
 * connection. Built on start (GOPATH mode against Debian's muxado, never
 * downloading); skipped when Go or the muxado package is missing.
 */
export function goMuxado() {
  let negotiated = '';
  return {
    name: 'go-muxado',
    available: goAvailable,
    /** "TLSv1.3 TLS_AES_128_GCM_SHA256" once started, for the report's notes. */
    tls: () => negotiated,
    async start(targets) {
      const built = buildGo(path.join(root, 'scripts/bench/go-tunnel'), goTunnelBinary);
      if (!built.ok) throw new Error(built.reason);
      // Client first: the server then only sees its session end.
      return startTunnel('go-muxado client', {}, async (spawn, ready) => {
        const server = spawn(goTunnelBinary, ['server', '-listen', '127.0.0.1:0']);
        const [, serverPort, fingerprint] = await waitForOutput(server, /LISTENING (\d+)\nFINGERPRINT (sha256:[0-9a-f]+)/, 'go-muxado server');
        const forwards = [targets.bulk, targets.interactive].flatMap((target) => ['-listen', '127.0.0.1:0', '-target', `127.0.0.1:${target}`]);
        const client = spawn(goTunnelBinary, ['client', '-server', `127.0.0.1:${serverPort}`, '-fingerprint', fingerprint, ...forwards]);
        const [, tls, port, interactivePort] = (await waitForOutput(client, /TLS (.+)\nLISTENING (\d+)\nLISTENING (\d+)\n/, 'go-muxado client')).map(String);
        negotiated = tls;
        await ready(Number(port), Number(interactivePort));
        return { port: Number(port), interactivePort: Number(interactivePort), processes: () => ({ server: [server.pid], client: [client.pid] }) };
      });
    },
  };
}

/**
 * `ssh -L` through an OpenSSH server started here with its own config, host
 * key and user key in a temp dir: key-only root login on 127.0.0.1, nothing
 * else. Default ciphers on both sides, as a user would get them.
 */
export function ssh() {
  return {
    name: 'ssh -L',
    available() {
      const missing = [SSHD, 'ssh', 'ssh-keygen'].filter((tool) => !onPath(tool));
      if (missing.length > 0) return { ok: false, reason: `${missing.join(', ')} not installed (apt-get install openssh-server openssh-client)` };
      if (process.getuid?.() !== 0) return { ok: false, reason: 'sshd needs root here (it logs in as root with a key)' };
      return { ok: true };
    },
    async start(targets) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'muxtun-bench-ssh-'));
      return startTunnel('ssh -L', { afterStop: () => rmSync(dir, { recursive: true, force: true }) }, async (spawn, ready) => {
        // The bench's sshd may forward to the loopback targets, nothing else.
        const { config, userKey } = writeSshdFiles(dir, ['AllowTcpForwarding local', 'PermitOpen 127.0.0.1:*'], 'muxtun-bench');
        const sshdPort = await freePort();
        execFileSync(SSHD, ['-t', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
        const sshd = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(sshdPort)]);
        await waitForListening(sshdPort, { name: 'sshd', exited: () => sshd.exitCode !== null || sshd.signalCode !== null, tail: () => sshd.stderrTail() }, 15_000);
        const [port, interactivePort] = [await freePort(), await freePort()];
        const client = spawn('ssh', [
          '-N', '-F', '/dev/null',
          '-L', `${port}:127.0.0.1:${targets.bulk}`,
          '-L', `${interactivePort}:127.0.0.1:${targets.interactive}`,
          '-o', 'StrictHostKeyChecking=no',
          '-o', `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
          '-o', 'ExitOnForwardFailure=yes',
          '-o', 'BatchMode=yes',
          '-o', 'IdentitiesOnly=yes',
          '-o', 'LogLevel=ERROR',
          '-i', userKey,
          '-p', String(sshdPort),
          'root@127.0.0.1',
        ]);
        await ready(port, interactivePort);
        // sshd's per-connection children hold the forwarded sockets: count the whole tree.
        return { port, interactivePort, processes: () => ({ server: processTree(sshd.pid), client: [client.pid] }) };
      });
    },
  };
}

/**
 * The least a Node tunnel can do (node-tls-pipe.js): a TLS connection per
 * forwarded connection and pipe(), no multiplexing. What Node costs on
 * this machine, beside what muxtun adds to it.
 */
export function nodeTlsPipe() {
  const script = path.join(root, 'scripts/bench/node-tls-pipe.js');
  return {
    name: 'node-tls-pipe',
    available: () => (onPath('openssl') ? { ok: true } : { ok: false, reason: 'openssl not installed (it makes the certificate)' }),
    start(targets) {
      return startTunnel('node-tls-pipe client', {}, async (spawn, ready) => {
        const server = spawn(process.execPath, [script, 'server', String(targets.bulk), String(targets.interactive)]);
        const [, s1, s2] = await waitForOutput(server, /LISTENING (\d+) (\d+)/, 'node-tls-pipe server');
        const client = spawn(process.execPath, [script, 'client', s1, s2]);
        const [, port, interactivePort] = (await waitForOutput(client, /LISTENING (\d+) (\d+)/, 'node-tls-pipe client')).map(Number);
        await ready(port, interactivePort);
        return { port, interactivePort, processes: () => ({ server: [server.pid], client: [client.pid] }) };
      });
    },
  };
}

/**
 * One Node process that accepts, dials the target over plain TCP and pipes
 * (node-tls-pipe.js relay): the least Node does per forwarded connection.
 */
export function nodeTcpRelay() {
  const script = path.join(root, 'scripts/bench/node-tls-pipe.js');
  return {
    name: 'node-tcp-relay',
    available: () => ({ ok: true }),
    start(targets) {
      return startTunnel('node-tcp-relay', {}, async (spawn, ready) => {
        const relay = spawn(process.execPath, [script, 'relay', String(targets.bulk), String(targets.interactive)]);
        const [, port, interactivePort] = (await waitForOutput(relay, /LISTENING (\d+) (\d+)/, 'node-tcp-relay')).map(Number);
        await ready(port, interactivePort);
        return { port, interactivePort, processes: () => ({ server: [relay.pid] }) };
      });
    },
  };
}

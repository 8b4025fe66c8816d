import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The environment without what `npm test` exports to its children
 * (npm_config_prefix, npm_config_local_prefix, npm_package_*, …), which would
 * point an inner npm back at this repository; npm's own config files still apply.
 */
export function cleanEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_cafile']);
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || keep.has(key.toLowerCase())));
}

/**
 * A child process whose stdout and stderr lines are kept, so a test can wait
 * for the line that says the process is ready instead of sleeping.
 */
export class LineProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  #waiters = new Set<() => void>();
  #exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(command: string, args: string[], options: SpawnOptions) {
    this.child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        this.#wake();
      });
    }
    this.child.on('exit', (code, signal) => {
      this.#exited = { code, signal };
      this.#wake();
    });
    this.child.on('error', (error) => {
      this.lines.push(`spawn error: ${error.message}`);
      this.#exited = { code: null, signal: null };
      this.#wake();
    });
  }

  /** Resolves with the first line (seen or to come) that `match` returns a value for. */
  waitFor<T>(what: string, match: (line: string) => T | undefined, timeoutMs = 15_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        for (const line of this.lines) {
          const found = match(line);
          if (found !== undefined) return done(() => resolve(found));
        }
        if (this.#exited) done(() => reject(new Error(`process exited (${JSON.stringify(this.#exited)}) before ${what}:\n${this.output()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${this.output()}`))), timeoutMs);
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        settle();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Waits for a JSON log line whose `msg` is `msg`, and returns it parsed. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.waitFor(`log "${msg}"`, (line) => {
      if (!line.startsWith('{')) return undefined;
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        return entry.msg === msg ? entry : undefined;
      } catch {
        return undefined;
      }
    }, timeoutMs);
  }

  output(): string {
    return this.lines.map((line) => `  | ${line}`).join('\n');
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async kill(graceMs = 3_000): Promise<void> {
    if (this.#exited || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** A TCP echo server on 127.0.0.1 and an ephemeral port. */
export async function echoServer(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** Sends `payload` to 127.0.0.1:`port`, half-closes, and resolves with everything read back until the peer's FIN. */
export async function roundTrip(port: number, payload: Buffer, timeoutMs = 10_000): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no echo from port ${port} within ${timeoutMs} ms`)));
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.end(payload);
  await once(socket, 'end');
  socket.destroy();
  return Buffer.concat(chunks);
}

/** A TCP port that was free a moment ago (for programs that refuse port 0). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The port at the end of a forward description such as "-L 127.0.0.1:40123 -> 127.0.0.1:7". */
export function boundPort(forward: unknown): number {
  const match = /^-[LR] \S*:(\d+) -> /.exec(String(forward));
  if (!match) throw new Error(`cannot read the bound port from ${JSON.stringify(forward)}`);
  return Number(match[1]);
}

/**
 * Completes a TLS handshake with 127.0.0.1:`port` and returns the server
 * certificate's fingerprint as muxtun prints it (`sha256:<hex>`). A finished
 * handshake also proves the server's event loop ran after it printed its
 * readiness lines, so whatever it set up in that same tick (its signal
 * handlers) is in place.
 */
export async function tlsFingerprint(port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  try {
    await once(socket, 'secureConnect');
    return `sha256:${socket.getPeerCertificate().fingerprint256.replaceAll(':', '').toLowerCase()}`;
  } finally {
    socket.destroy();
  }
}

/** Reads "muxtun server listening on HOST:PORT" from serve's stdout. */
export function servePort(line: string): number | undefined {
  const match = /^muxtun server listening on .*:(\d+)$/.exec(line);
  return match ? Number(match[1]) : undefined;
}

/**
 * Real programs the dynamic-forwarding suites drive: curl (as a SOCKS
 * client) and OpenSSH (sshd reached through `connect -W` as a
 * ProxyCommand). Policy as for the Go interop suite: when one is missing
 * the suite is skipped and says why; with MUXTUN_REAL_PROGRAMS=required
 * (.ci/run sets it) that is a failure instead.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './fs.js';
import { freePort } from './net.js';
import { onPath, waitForListening } from './ports.js';
import { TestProcess } from './process.js';
import { currentScope, type Scope } from './scope.js';
import { SSHD, writeSshdFiles } from './sshd-files.js';

export { SSHD };

/** Why `programs` cannot run here, or null when they can. */
export function missingPrograms(programs: readonly string[]): string | null {
  const missing = programs.filter((program) => !onPath(program));
  if (missing.length > 0) return `${missing.join(', ')} not installed (apt-get install curl openssh-server openssh-client)`;
  if (programs.includes(SSHD) && process.getuid?.() !== 0) return 'sshd needs root here (it logs in as root with a key)';
  return null;
}

/**
 * For `describe.skipIf(skipWithout([...]))`: true only when a program is
 * missing and MUXTUN_REAL_PROGRAMS is not "required"; prints why.
 */
export function skipWithout(programs: readonly string[]): boolean {
  const reason = missingPrograms(programs);
  if (reason === null || process.env.MUXTUN_REAL_PROGRAMS === 'required') return false;
  console.warn(`skipped: ${reason} (set MUXTUN_REAL_PROGRAMS=required to make this a failure)`);
  return true;
}

/** For beforeAll: fails with the reason when a required program is missing. */
export function requirePrograms(programs: readonly string[]): void {
  const reason = missingPrograms(programs);
  if (reason !== null) throw new Error(`MUXTUN_REAL_PROGRAMS=required but ${reason}`);
}

export interface Sshd {
  port: number;
  /** ssh options that log in as root with the generated key, trusting the generated host key. */
  sshArgs: string[];
  dir: string;
}

/**
 * A private sshd on 127.0.0.1 (files from sshd-files.js, as the bench's):
 * its own host key, one authorized user key, key-only root login, sftp for
 * scp, no forwarding. Killed with the scope.
 */
export async function startSshd(scope: Scope = currentScope()): Promise<Sshd> {
  const dir = await tempDir('muxtun-sshd-', scope);
  const { config, userKey, hostKeyPub } = writeSshdFiles(dir, ['AllowTcpForwarding no', 'Subsystem sftp internal-sftp'], 'muxtun-test');
  const port = await freePort();
  const sshd = new TestProcess({ command: SSHD, args: ['-D', '-e', '-f', config, '-p', String(port)], name: 'sshd', scope });
  await waitForPort(port, sshd, 15_000);
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${readFileSync(hostKeyPub, 'utf8')}`);
  const sshArgs = [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o', 'LogLevel=ERROR',
    '-i', userKey,
  ];
  return { port, sshArgs, dir };
}

// ---- nginx (a TLS reverse proxy passing WebSocket upgrades), tinyproxy (an
// HTTP CONNECT proxy) and Dante (a SOCKS5 server), for the transport tests.
// Each runs in the foreground as a child of the test, with its own config,
// pid and temp paths in a temp dir, on a free port, killed with the scope.

export const NGINX = '/usr/sbin/nginx';
export const TINYPROXY = '/usr/bin/tinyproxy';
export const DANTED = '/usr/sbin/danted';

export interface RealProgram {
  available: boolean;
  /** MUXTUN_REAL_PROGRAMS=required: a missing program fails the suite instead of skipping it. */
  required: boolean;
  reason: string;
}

/**
 * Whether `programs` are installed, for `describe.skipIf(skipSuiteWithout(...))`.
 * Prints why a suite is skipped; throws when they are required.
 */
export function skipSuiteWithout(suite: string, ...programs: Array<{ path: string; apt: string }>): boolean {
  const missing = programs.filter(({ path }) => !onPath(path));
  const required = process.env.MUXTUN_REAL_PROGRAMS === 'required';
  if (missing.length === 0) return false;
  const reason = `${missing.map((p) => p.path).join(', ')} not installed (Debian: apt-get install ${missing.map((p) => p.apt).join(' ')})`;
  if (required) throw new Error(`${suite}: MUXTUN_REAL_PROGRAMS=required but ${reason}`);
  console.warn(`[skipped] ${suite}: ${reason}; .ci/run installs it and sets MUXTUN_REAL_PROGRAMS=required`);
  return true;
}

export const nginxProgram = { path: NGINX, apt: 'nginx-light' };
export const tinyproxyProgram = { path: TINYPROXY, apt: 'tinyproxy' };
export const dantedProgram = { path: DANTED, apt: 'dante-server' };

/** The programs print nothing when ready: wait (bounded) until the port accepts a connection, or the child exits. */
export async function waitForPort(port: number, child: TestProcess, timeoutMs = 10_000): Promise<void> {
  const exited = (): boolean => child.child.exitCode !== null || child.child.signalCode !== null;
  await waitForListening(port, { name: child.name, exited, tail: () => child.tail() }, timeoutMs);
}

export interface NginxOptions {
  /** Where `serve --ws-listen` listens. */
  wsPort: number;
  /** PEM files of nginx's own (public-facing) certificate. */
  cert: string;
  key: string;
  /** The path proxied to serve; default /muxtun. */
  path?: string;
  /** nginx's proxy_read_timeout / proxy_send_timeout in seconds; default 60 (nginx's own default). */
  readTimeoutS?: number;
  scope?: Scope;
}

/** The start of a test nginx config: in the foreground, one process, everything it writes under `dir`; an `http {` block left open. */
function nginxPreamble(dir: string, connections: number): string {
  return `
daemon off;
# One process: a worker would outlive a killed master and hold the test's pipes.
master_process off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections ${connections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;`;
}

/** nginx terminating TLS on a free port, passing WebSocket upgrades at `path` to 127.0.0.1:wsPort (the README's location block). */
export async function startNginx(options: NginxOptions): Promise<{ port: number; process: TestProcess }> {
  const scope = options.scope ?? currentScope();
  const dir = await tempDir('muxtun-nginx-', scope);
  const port = await freePort();
  const path = options.path ?? '/muxtun';
  const timeout = `${options.readTimeoutS ?? 60}s`;
  const conf = `${nginxPreamble(dir, 256)}
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${options.cert};
    ssl_certificate_key ${options.key};
    location ${path} {
      proxy_pass http://127.0.0.1:${options.wsPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout ${timeout};
      proxy_send_timeout ${timeout};
    }
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const child = new TestProcess({ command: NGINX, args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], name: 'nginx', scope });
  await waitForPort(port, child);
  return { port, process: child };
}

/** tinyproxy in the foreground, allowing CONNECT to `connectPort` only, with Basic credentials when given. */
export async function startTinyproxy(options: { connectPort: number; auth?: { user: string; password: string }; scope?: Scope }): Promise<{ port: number; process: TestProcess }> {
  const scope = options.scope ?? currentScope();
  const dir = await tempDir('muxtun-tinyproxy-', scope);
  const port = await freePort();
  const conf = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    'MaxClients 32',
    'LogLevel Info',
    `PidFile "${dir}/tinyproxy.pid"`,
    'Allow 127.0.0.1',
    `ConnectPort ${options.connectPort}`,
    ...(options.auth ? [`BasicAuth ${options.auth.user} ${options.auth.password}`] : []),
    ...(process.getuid?.() === 0 ? ['User nobody', 'Group nogroup'] : []),
    '',
  ].join('\n');
  await writeFile(join(dir, 'tinyproxy.conf'), conf);
  const child = new TestProcess({ command: TINYPROXY, args: ['-d', '-c', join(dir, 'tinyproxy.conf')], name: 'tinyproxy', scope });
  await waitForPort(port, child);
  return { port, process: child };
}

/** Dante's SOCKS5 server (danted) in the foreground on a free port, no authentication, loopback only. */
export async function startDanted(options: { scope?: Scope } = {}): Promise<{ port: number; process: TestProcess }> {
  const scope = options.scope ?? currentScope();
  const dir = await tempDir('muxtun-danted-', scope);
  const port = await freePort();
  const conf = `
logoutput: stderr
internal: 127.0.0.1 port = ${port}
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }
`;
  await writeFile(join(dir, 'danted.conf'), conf);
  const child = new TestProcess({ command: DANTED, args: ['-f', join(dir, 'danted.conf'), '-p', join(dir, 'danted.pid'), '-N', '1'], name: 'danted', scope });
  await waitForPort(port, child);
  return { port, process: child };
}

/**
 * nginx as a consumer of the PROXY protocol (v1 and v2 both: nginx tells
 * them apart): an HTTP server on a free port with `listen … proxy_protocol`
 * whose every response is what the header said, `SRC_ADDR:SRC_PORT
 * DST_ADDR:DST_PORT`, from $proxy_protocol_addr and friends.
 */
export async function startNginxProxyProtocol(options: { scope?: Scope } = {}): Promise<{ port: number; process: TestProcess }> {
  const scope = options.scope ?? currentScope();
  const dir = await tempDir('muxtun-nginx-pp-', scope);
  const port = await freePort();
  const conf = `${nginxPreamble(dir, 64)}
  server {
    listen 127.0.0.1:${port} proxy_protocol;
    default_type text/plain;
    return 200 "$proxy_protocol_addr:$proxy_protocol_port $proxy_protocol_server_addr:$proxy_protocol_server_port\\n";
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const child = new TestProcess({ command: NGINX, args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], name: 'nginx', scope });
  // A connection without a header is refused by nginx, but the port accepting it is enough to know it is up.
  await waitForPort(port, child);
  return { port, process: child };
}

/**
 * State paths the file system will not create (here: under /proc) must make
 * muxtun fail at once with one clear line, never hang. Before the fix,
 * fs.mkdir({ recursive: true }) looped for ever on /proc and `serve` or
 * `connect` sat there spinning a core, ignoring the first SIGTERM.
 */
import { describe, expect, it } from 'vitest';
import { runMuxtun, startServe } from '../support/muxtun.js';

/** How long a refused state path may take to fail, node start-up on a busy machine included. */
const FAIL_WITHIN_MS = 8_000;

/** The `muxtun: …` lines: what a user reads when a command fails. */
const failureLines = (stderr: string): string[] => stderr.split('\n').filter((line) => line.startsWith('muxtun:'));

describe('state paths that cannot be created', () => {
  it('serve --state-dir /proc/…: exit 1 at once, one line naming the path and the reason', async () => {
    const stateDir = `/proc/muxtun-e2e-${process.pid}/state`;
    const { exit, stdout, stderr } = await runMuxtun(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', stateDir], { timeoutMs: FAIL_WITHIN_MS });
    expect(exit, stderr).toEqual({ code: 1, signal: null });
    expect(failureLines(stderr)).toEqual([
      `muxtun: Cannot create state directory ${stateDir}: /proc does not allow creating directories ` +
        `(mkdir /proc/muxtun-e2e-${process.pid}: ENOENT) [ERR_MUXTUN_STATE_DIR]`,
    ]);
    expect(stdout).not.toContain('listening');
  });

  it('connect --known-hosts /proc/…/known_hosts, trust on first use: exit 1 at once, one clear line', async () => {
    const serve = await startServe();
    const knownHosts = `/proc/muxtun-e2e-${process.pid}/known_hosts`;
    // No --fingerprint: the client trusts on first use and must record the server in knownHosts.
    const { exit, stderr } = await runMuxtun(['connect', `127.0.0.1:${serve.port}`, '--known-hosts', knownHosts, '-L', '0:localhost:80'], {
      env: { MUXTUN_TOKEN: serve.token },
      timeoutMs: FAIL_WITHIN_MS,
    });
    expect(exit, stderr).toEqual({ code: 1, signal: null });
    expect(failureLines(stderr)).toEqual([
      `muxtun: Cannot record 127.0.0.1:${serve.port} in known hosts file ${knownHosts}: ` +
        `/proc does not allow creating directories (mkdir /proc/muxtun-e2e-${process.pid}: ENOENT) ` +
        '[ERR_MUXTUN_KNOWN_HOSTS_WRITE]',
    ]);
    expect(stderr).not.toContain(serve.token);
    // The server is unaffected by a client that could not keep its known_hosts.
    expect(serve.process.alive).toBe(true);
  });
});

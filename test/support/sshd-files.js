// The files of a private OpenSSH server, shared by the tests that drive ssh
// and scp and by the benchmark's ssh -L kind. Plain JavaScript (typed by
// sshd-files.d.ts) because scripts/bench runs under node itself.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const SSHD = '/usr/sbin/sshd';

/**
 * Writes into `dir` a host key, a user key authorized for root, and an
 * sshd_config for 127.0.0.1 that lets root in with that key only (no
 * passwords, no PAM, no TTYs), with `extraConfig` lines after the common
 * ones (what may be forwarded, sftp). Makes /run/sshd, without which sshd
 * does not start. `comment` names the keys.
 */
export function writeSshdFiles(dir, extraConfig, comment) {
  for (const key of ['host_key', 'user_key']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${comment} ${key}`, '-f', path.join(dir, key)]);
  }
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'user_key.pub')), { mode: 0o600 });
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'X11Forwarding no',
      'AllowAgentForwarding no',
      'PermitTTY no',
      'PrintMotd no',
      'LogLevel ERROR',
      ...extraConfig,
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  return { config, userKey: path.join(dir, 'user_key'), hostKeyPub: path.join(dir, 'host_key.pub') };
}

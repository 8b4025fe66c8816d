// Free ports and programs on PATH, shared by the tests and the benchmarks.
// Plain JavaScript (typed by ports.d.ts) because scripts/bench runs under
// node itself and cannot import the TypeScript of test/support.
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/**
 * A port that was free a moment ago, for what cannot take port 0 itself
 * (-L listeners, a -R port that must stay the same across a reconnect,
 * programs that refuse 0). Picked below the kernel's ephemeral range: ports
 * in that range are also handed out as source ports of outgoing connections,
 * and with hundreds of connections in flight one of those takes "our" port
 * often enough to flake.
 */
export async function freePort() {
  const [low] = ephemeralRange();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await canBind(port)) return port;
  }
  throw new Error('found no free port below the ephemeral range in 50 tries');
}

function ephemeralRange() {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low > 11_000 && high > low) return [low, high];
  } catch {
    // Not Linux: assume the IANA range.
  }
  return [49_152, 65_535];
}

async function canBind(port) {
  const server = net.createServer();
  try {
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  } catch {
    return false;
  }
  await new Promise((resolve) => server.close(() => resolve()));
  return true;
}

/** Whether `command` (a name looked up in PATH, or an absolute path) exists. */
export function onPath(command) {
  if (command.startsWith('/')) return existsSync(command);
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(path.join(dir, command)));
}

/** Whether 127.0.0.1:`port` accepts a TCP connection now. */
function portAccepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Resolves once 127.0.0.1:`port` accepts a connection, for programs that say
 * nothing when ready (sshd, nginx, tinyproxy, Dante): polling is the only way.
 * Rejects when `program.exited()` says it is gone, or after `timeoutMs`; the
 * message names it and ends with `program.tail()` (its last stderr).
 */
export async function waitForListening(port, program, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await portAccepts(port)) return;
    if (program.exited()) throw new Error(`${program.name} exited before listening on ${port}\n${program.tail()}`);
    if (Date.now() > deadline) throw new Error(`${program.name} did not listen on ${port} within ${timeoutMs} ms\n${program.tail()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

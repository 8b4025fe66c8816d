import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { defaultKnownHostsFile, knownHostsFile } from '../state/index.js';
import { parseFingerprint, type ClientTrust } from '../tls/index.js';
import { TunnelClient, type ForwardSpec } from '../tunnel/index.js';
import { parseForwardSpec, parseServerAddress } from './forward-spec.js';
import { createLogger } from './logger.js';
import { onShutdownSignal, type CommandContext } from './process.js';
import { heartbeatOptions, parseSeconds } from './numbers.js';
import { tokenFrom } from './token-source.js';
import { UsageError } from './usage-error.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

interface ConnectFlags {
  local?: string[];
  remote?: string[];
  token?: string;
  tokenFile?: string;
  fingerprint?: string;
  ca?: string;
  insecure?: boolean;
  knownHosts?: string;
  servername?: string;
  reconnect: boolean;
  drainTimeout: string;
  heartbeatInterval: string;
  heartbeatTolerance: string;
  logLevel: string;
  logFormat?: string;
}

export function connectCommand(context: CommandContext): Command {
  return new Command('connect')
    .description('connect to a muxtun server and forward ports through it (-L: here to there, -R: there to here)')
    .argument('[host:port]', 'the server (default: $MUXTUN_SERVER)')
    .option('-L, --local <[bind:]port:host:hostport>', 'listen here on port (bind default 127.0.0.1); the server dials host:hostport (repeatable)', collect)
    .option('-R, --remote <[bind:]port:host:hostport>', 'the server listens on port (bind default 0.0.0.0); this side dials host:hostport (repeatable)', collect)
    .option('--token <token>', 'the server\'s token (visible to other users in `ps`: prefer MUXTUN_TOKEN or --token-file)')
    .option('--token-file <file>', 'read the token from a file')
    .option('--fingerprint <sha256:HEX>', 'trust only the server certificate with this fingerprint (printed by `muxtun serve`)')
    .option('--ca <file>', 'verify the server with these CA certificates (PEM) and its host name')
    .option('--insecure', 'do not verify the server at anything (encrypted, but anyone in the path can pose as the server)')
    .option('--known-hosts <file>', 'where trust-on-first-use records servers (default: ~/.config/muxtun/known_hosts)')
    .option('--servername <name>', 'TLS server name (SNI and --ca host check) when it differs from HOST')
    .option('--no-reconnect', 'exit when the session drops instead of reconnecting')
    .option('--drain-timeout <seconds>', 'on SIGINT/SIGTERM, let open connections finish for this long', '5')
    .option('--heartbeat-interval <seconds>', 'how often to check that the server is alive', '3')
    .option('--heartbeat-tolerance <seconds>', 'silence beyond the interval after which the session is considered dead and replaced', '10')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info')
    .addOption(new Option('--log-format <format>', 'pretty or json (default: pretty on a terminal, json otherwise)').choices(['pretty', 'json']))
    .addHelpText(
      'after',
      `
Examples:
  export MUXTUN_TOKEN=...            # printed by \`muxtun serve\`
  muxtun connect tunnel.example.com:4443 -L 8080:localhost:80
      curl localhost:8080 reaches port 80 on the server's side.
  muxtun connect tunnel.example.com:4443 -R 9000:localhost:3000
      tunnel.example.com:9000 reaches port 3000 on this machine.
  MUXTUN_SERVER=tunnel.example.com:4443 muxtun connect -L 5432:db.internal:5432 -R 9000:localhost:3000

Trust (like ssh): the first connection records the server's fingerprint in
known_hosts and later ones insist on it; --fingerprint pins it up front;
--ca checks a CA-signed certificate; --insecure checks nothing.

Environment:
  MUXTUN_SERVER   host:port of the server, if not given as an argument
  MUXTUN_TOKEN    the token, if --token and --token-file are not given`,
    )
    .action(async (target: string | undefined, flags: ConnectFlags) => {
      const logger = createLogger(flags.logLevel, flags.logFormat);
      const shutdownSignal = onShutdownSignal();
      const serverText = target ?? context.env.MUXTUN_SERVER;
      if (serverText === undefined || serverText === '') {
        throw new UsageError('connect: give the server as HOST:PORT or set MUXTUN_SERVER');
      }
      const { host, port } = parseServerAddress(serverText, target === undefined ? 'MUXTUN_SERVER' : 'server address');
      const local: ForwardSpec[] = (flags.local ?? []).map((text) => parseForwardSpec('-L', text));
      const remote: ForwardSpec[] = (flags.remote ?? []).map((text) => parseForwardSpec('-R', text));
      if (local.length + remote.length === 0) throw new UsageError('connect: nothing to forward: give at least one -L or -R');
      const drainMs = parseSeconds(flags.drainTimeout, '--drain-timeout');
      const session = heartbeatOptions(flags);
      const token = await tokenFrom(flags, context.env);
      if (token === undefined) throw new UsageError('connect: no token: set MUXTUN_TOKEN (printed by `muxtun serve`), or use --token-file or --token');
      const trust = await trustFrom(flags, context.env);
      if (trust.kind === 'insecure') logger.warn({}, '--insecure: the server is not verified; anyone in the network path can pose as it');

      const client = new TunnelClient({
        host,
        port,
        ...(flags.servername ? { servername: flags.servername } : {}),
        token,
        trust,
        local,
        remote,
        reconnect: flags.reconnect,
        session,
        logger,
      });
      const running = client.run();
      const stopping = shutdownSignal.then(async (signal) => {
        logger.info({ signal, drainMs }, 'shutting down: letting open connections finish');
        await client.stop(drainMs);
      });
      await Promise.race([running, stopping.then(() => running)]);
      logger.info({}, 'stopped');
    });
}

async function trustFrom(flags: ConnectFlags, env: NodeJS.ProcessEnv): Promise<ClientTrust> {
  const chosen = [flags.fingerprint !== undefined && '--fingerprint', flags.ca !== undefined && '--ca', flags.insecure && '--insecure'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(' and ')}: choose one way to trust the server`);
  if (flags.fingerprint !== undefined) {
    try {
      return { kind: 'fingerprint', fingerprint: parseFingerprint(flags.fingerprint) };
    } catch (error) {
      throw new UsageError(`--fingerprint: ${(error as Error).message}`);
    }
  }
  if (flags.ca !== undefined) {
    let caPem: string;
    try {
      caPem = await readFile(flags.ca, 'utf8');
    } catch (error) {
      throw new UsageError(`--ca ${flags.ca}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    return { kind: 'ca', caPem };
  }
  if (flags.insecure) return { kind: 'insecure' };
  return { kind: 'tofu', knownHosts: knownHostsFile(flags.knownHosts ?? defaultKnownHostsFile(env)) };
}

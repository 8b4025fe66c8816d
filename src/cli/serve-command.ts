import { Command, Option } from 'commander';
import { defaultStateDir, loadCertificateFiles, loadOrCreateServerCertificate, loadOrCreateToken } from '../state/index.js';
import { defaultServerLimits, parsePortRange, parseTargetPattern, resolveServerLimits, TunnelServer, type ServerPolicy } from '../tunnel/index.js';
import { createLogger } from './logger.js';
import { parsePort } from './forward-spec.js';
import { heartbeatOptions, parseCount, parseSeconds } from './numbers.js';
import { onShutdownSignal, type CommandContext } from './process.js';
import { tokenFrom } from './token-source.js';
import { UsageError } from './usage-error.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

interface ServeFlags {
  host: string;
  port: string;
  token?: string;
  tokenFile?: string;
  cert?: string;
  key?: string;
  stateDir?: string;
  allowLocal?: string[];
  allowRemote?: string[];
  drainTimeout: string;
  maxSessions: string;
  maxUnauthenticated: string;
  maxStreams: string;
  maxRemoteListeners: string;
  handshakeTimeout: string;
  idleTimeout: string;
  heartbeatInterval: string;
  heartbeatTolerance: string;
  logLevel: string;
  logFormat?: string;
}

export function serveCommand(context: CommandContext): Command {
  return new Command('serve')
    .description('accept TLS connections from `muxtun connect` clients and serve their -L and -R forwards')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .option('--port <port>', 'TLS port to listen on (0: any free port, printed at start)', '4443')
    .option('--token <token>', 'shared secret clients must present (visible to other users in `ps`: prefer MUXTUN_TOKEN or --token-file)')
    .option('--token-file <file>', 'read the token from a file')
    .option('--cert <file>', 'your own TLS certificate (PEM); default: a self-signed one kept in the state dir')
    .option('--key <file>', 'the private key for --cert (PEM)')
    .option('--state-dir <dir>', 'where the generated certificate, key and token live (default: $XDG_STATE_HOME/muxtun or ~/.local/state/muxtun)')
    .option('--allow-local <pattern>', 'let -L reach only HOST:PORT targets matching this (repeatable; * and *.domain and port ranges work; default: anything)', collect)
    .option('--allow-remote <ports>', 'let -R bind only these ports or ranges (repeatable, e.g. 9000-9100; default: 1024-65535)', collect)
    .option('--drain-timeout <seconds>', 'on SIGINT/SIGTERM, let open connections finish for this long', '5')
    .option('--max-sessions <n>', 'authenticated clients at once; more are refused with a clear error', String(defaultServerLimits.maxSessions))
    .option('--max-unauthenticated <n>', 'connections still in the TLS handshake or authentication at once; more are dropped', String(defaultServerLimits.maxUnauthenticated))
    .option('--max-streams <n>', 'forwarded connections open at once per client and direction; more are refused', String(defaultServerLimits.maxStreams))
    .option('--max-remote-listeners <n>', '-R listeners one client may hold', String(defaultServerLimits.maxRemoteListeners))
    .option('--handshake-timeout <seconds>', 'time a new connection has for the TLS handshake and for authenticating', String(defaultServerLimits.handshakeTimeoutMs / 1000))
    .option('--idle-timeout <seconds>', 'close forwarded connections with no traffic for this long (0: never)', '0')
    .option('--heartbeat-interval <seconds>', 'how often to check that each client is alive', '3')
    .option('--heartbeat-tolerance <seconds>', 'silence beyond the interval after which a client is considered gone', '10')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info')
    .addOption(new Option('--log-format <format>', 'pretty or json (default: pretty on a terminal, json otherwise)').choices(['pretty', 'json']))
    .addHelpText(
      'after',
      `
Examples:
  muxtun serve --port 4443
      First start creates a certificate and a token in the state dir and
      prints both with a ready-to-paste connect line.
  MUXTUN_TOKEN=s3cret muxtun serve --port 4443 --allow-remote 9000-9100
  muxtun serve --cert /etc/muxtun/cert.pem --key /etc/muxtun/key.pem --allow-local 'db.internal:5432'

Environment:
  MUXTUN_TOKEN    the token, if --token and --token-file are not given

Also bounded (not flags): control messages 16 KiB, forward headers 1 KiB,
${defaultServerLimits.acceptBacklog} streams waiting to be served per client, ${defaultServerLimits.maxSessionBufferBytes / 2 ** 20} MiB of receive
window beyond 64 KiB per stream per client. Failed authentications from one
address slow down that address's next attempts (0.1 s doubling up to 10 s).`,
    )
    .action(async (flags: ServeFlags) => {
      const logger = createLogger(flags.logLevel, flags.logFormat);
      // Listen for signals before anything is printed: whoever reads our
      // output may stop us at once, and must get a clean stop.
      const shutdownSignal = onShutdownSignal();
      const port = parsePort(flags.port, '--port', true);
      const drainMs = parseSeconds(flags.drainTimeout, '--drain-timeout');
      const limits = usage(() =>
        resolveServerLimits({
          maxSessions: parseCount(flags.maxSessions, '--max-sessions', 1, 1_000_000),
          maxUnauthenticated: parseCount(flags.maxUnauthenticated, '--max-unauthenticated', 1, 100_000),
          maxStreams: parseCount(flags.maxStreams, '--max-streams', 1, 1 << 20),
          maxRemoteListeners: parseCount(flags.maxRemoteListeners, '--max-remote-listeners', 0, 10_000),
          handshakeTimeoutMs: parseSeconds(flags.handshakeTimeout, '--handshake-timeout', 0.1, 600),
          idleTimeoutMs: parseSeconds(flags.idleTimeout, '--idle-timeout'),
        }),
      );
      const session = heartbeatOptions(flags);
      if ((flags.cert === undefined) !== (flags.key === undefined)) throw new UsageError('--cert and --key go together: give both or neither');
      const policy: ServerPolicy = {
        allowLocal: (flags.allowLocal ?? []).map((p) => usage(() => parseTargetPattern(p))),
        allowRemote: flags.allowRemote ? flags.allowRemote.map((p) => usage(() => parsePortRange(p, `--allow-remote "${p}"`))) : [{ from: 1024, to: 65535 }],
      };
      const stateDir = flags.stateDir ?? defaultStateDir(context.env);

      let token = await tokenFrom(flags, context.env);
      let tokenNote = '';
      if (token === undefined) {
        const stored = await loadOrCreateToken(stateDir);
        token = stored.token;
        tokenNote = stored.created ? `generated a token and stored it in ${stored.path}` : `using the token stored in ${stored.path}`;
      }
      const material =
        flags.cert !== undefined && flags.key !== undefined
          ? { ...(await loadCertificateFiles(flags.cert, flags.key)), created: false }
          : await loadOrCreateServerCertificate(stateDir);

      const server = new TunnelServer({ host: flags.host, port, tls: material, token, policy, limits, session, logger });
      const address = await server.listen();
      logger.info({ address: `${address.address}:${address.port}`, fingerprint: material.fingerprint }, 'listening');
      if (tokenNote) logger.info({}, tokenNote);

      const shownHost = flags.host === '0.0.0.0' || flags.host === '::' ? 'localhost' : flags.host.includes(':') ? `[${flags.host}]` : flags.host;
      context.stdout.write(
        `muxtun server listening on ${address.address}:${address.port}\n` +
          `fingerprint: ${material.fingerprint}${material.created ? ' (new identity)' : ''}\n` +
          `token:       ${token}\n\n` +
          `Connect with (replace localhost with this machine's address from elsewhere):\n` +
          `  MUXTUN_TOKEN='${token}' muxtun connect ${shownHost}:${address.port} --fingerprint ${material.fingerprint} -L 8080:localhost:80\n`,
      );

      const signal = await shutdownSignal;
      logger.info({ signal, drainMs }, 'shutting down: no new connections, letting open ones finish');
      const { drained } = await server.stop(drainMs);
      logger.info({ drained }, 'stopped');
    });
}

/** Turns a policy parse error into a usage error (exit 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
}

// Kind `node-tls-pipe` of `npm run bench`: the least a Node tunnel can do,
// to tell what Node itself costs from what muxtun adds. No multiplexing: a
// TLS connection per forwarded connection (TLS 1.3, AES-128-GCM as muxtun),
// pipe() both ways, V8's young generation tuned as muxtun does it. For
// bulk and CPU per GB it is a floor for any Node tunnel on this machine;
// its connection rate includes a TLS handshake per connection, so it is not.
// Kind `node-tcp-relay` is one process that accepts and dials plain TCP
// and pipes: the least Node does per forwarded connection, a floor for the
// connection rate (no TLS, no second process).
//
//   node node-tls-pipe.js server <bulk target port> <interactive target port>
//     -> LISTENING <port> <port>  (a TLS listener per target)
//   node node-tls-pipe.js client <server port> <server port>
//     -> LISTENING <port> <port>  (a TCP listener per server port)
//   node node-tls-pipe.js relay <bulk target port> <interactive target port>
//     -> LISTENING <port> <port>  (a TCP listener per target, dialling it)
import v8 from 'node:v8';

v8.setFlagsFromString('--semi-space-growth-factor=1'); // before anything else loads, as bin/muxtun.js

const { execFileSync } = await import('node:child_process');
const net = await import('node:net');
const tls = await import('node:tls');

const [role, ...ports] = process.argv.slice(2);
const SUITE = 'TLS_AES_128_GCM_SHA256';

/** Pipes two half-open-capable sockets both ways (each FIN passed on); an error on either ends both. */
function join(a, b) {
  a.pipe(b);
  b.pipe(a);
  const fail = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', fail);
  b.on('error', fail);
}

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

const listening = [];
if (role === 'server') {
  const pem = execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=bench', '-days', '1', '-keyout', '-', '-out', '-'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(pem)[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)[0];
  for (const target of ports.map(Number)) {
    const server = tls.createServer({ allowHalfOpen: true, key, cert, minVersion: 'TLSv1.3', ciphersuites: SUITE }, (socket) => {
      socket.setNoDelay(true);
      join(socket, net.connect({ port: target, host: '127.0.0.1', noDelay: true, allowHalfOpen: true }));
    });
    listening.push(await listen(server));
  }
} else if (role === 'client') {
  for (const serverPort of ports.map(Number)) {
    const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      join(socket, tls.connect({ allowHalfOpen: true, port: serverPort, host: '127.0.0.1', rejectUnauthorized: false, minVersion: 'TLSv1.3', ciphersuites: SUITE, noDelay: true }));
    });
    listening.push(await listen(server));
  }
} else if (role === 'relay') {
  for (const target of ports.map(Number)) {
    const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      join(socket, net.connect({ port: target, host: '127.0.0.1', noDelay: true, allowHalfOpen: true }));
    });
    listening.push(await listen(server));
  }
} else {
  console.error('usage: node-tls-pipe.js server|client|relay <port> <port>');
  process.exit(2);
}
console.log(`LISTENING ${listening.join(' ')}`);
process.on('SIGTERM', () => process.exit(0));

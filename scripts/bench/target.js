// The target every kind forwards to: a TCP echo server in its own process, so
// neither the load nor the measuring process shares its event loop. It echoes
// until the client half-closes, then half-closes back.
// Usage: node target.js [port]   prints "LISTENING <port>".
import net from 'node:net';

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
// Thousands of connections arrive at once when the idle-memory workload opens them.
server.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0), backlog: 4096 }, () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));

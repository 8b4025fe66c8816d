// Echo server over our engine, for `npm run bench:engine`: each accepted
// stream is piped back to itself. Prints "LISTENING <port>"; exits when stdin closes.
import net from 'node:net';
import { server } from '../../dist/muxado/index.js';

const listener = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const session = server(socket, { maxStreams: 20_000, acceptBacklog: 20_000 });
  session.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.pipe(stream);
  });
});
listener.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${listener.address().port}\n`);
});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

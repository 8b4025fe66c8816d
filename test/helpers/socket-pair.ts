import net from 'node:net';
import { once } from 'node:events';

/** Two connected TCP sockets on loopback: [the dialling side, the accepting side]. */
export async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as net.AddressInfo;
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const dialled = net.connect(port, '127.0.0.1');
  await once(dialled, 'connect');
  const [serverSide] = await accepted;
  listener.close();
  return [dialled, serverSide];
}

// A minimal Redis client over one TCP connection (RESP2): commands, pipelines and SUBSCRIBE. The
// benchmark talks to Redis directly so that no client library or redis-cli process start sits
// inside a timed step.
import { connect } from 'node:net';

/**
 * Parses one RESP2 value of buffer at offset. Returns { value, next } or undefined when the buffer
 * ends before the value does. Error replies become Error objects.
 */
function parseValue(buffer, offset) {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const kind = String.fromCharCode(buffer[offset]);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  if (kind === '+') return { value: line, next };
  if (kind === '-') return { value: new Error(line), next };
  if (kind === ':') return { value: Number(line), next };
  if (kind === '$') {
    const length = Number(line);
    if (length < 0) return { value: null, next };
    if (buffer.length < next + length + 2) return undefined;
    return { value: buffer.toString('utf8', next, next + length), next: next + length + 2 };
  }
  if (kind === '*') {
    const count = Number(line);
    if (count < 0) return { value: null, next };
    const items = [];
    let at = next;
    for (let i = 0; i < count; i++) {
      const item = parseValue(buffer, at);
      if (item === undefined) return undefined;
      items.push(item.value);
      at = item.next;
    }
    return { value: items, next: at };
  }
  throw new Error(`unexpected RESP type byte ${JSON.stringify(kind)} from Redis`);
}

function encodeCommand(args) {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) {
    const text = String(arg);
    parts.push(`$${Buffer.byteLength(text)}\r\n${text}\r\n`);
  }
  return parts.join('');
}

/**
 * Connects to Redis on 127.0.0.1:port. Returns { command(args), pipeline(list), subscribe(channel,
 * onMessage), close() }. command and pipeline resolve with the replies (an error reply rejects).
 * After subscribe, onMessage(payload) runs for every message and no other command may be sent.
 */
export function connectRedis(port) {
  return new Promise((resolveConnect, rejectConnect) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    const waiting = [];
    let pending = Buffer.alloc(0);
    let onMessage = null;

    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      for (;;) {
        const parsed = parseValue(pending, offset);
        if (parsed === undefined) break;
        offset = parsed.next;
        const reply = parsed.value;
        if (onMessage !== null && Array.isArray(reply) && reply[0] === 'message') {
          onMessage(reply[2]);
          continue;
        }
        const waiter = waiting.shift();
        if (waiter === undefined) continue;
        if (reply instanceof Error) waiter.reject(reply);
        else waiter.resolve(reply);
      }
      pending = offset === pending.length ? Buffer.alloc(0) : pending.subarray(offset);
    });
    socket.once('error', (error) => {
      rejectConnect(new Error(`cannot connect to Redis on 127.0.0.1:${port}: ${error.message}`));
      for (const waiter of waiting.splice(0)) waiter.reject(error);
    });

    const send = (args) =>
      new Promise((resolveReply, rejectReply) => {
        waiting.push({ resolve: resolveReply, reject: rejectReply });
        socket.write(encodeCommand(args));
      });
    const client = {
      command: send,
      pipeline: (commands) => {
        const replies = commands.map(
          (args) =>
            new Promise((resolveReply, rejectReply) => {
              waiting.push({ resolve: resolveReply, reject: rejectReply });
            }),
        );
        socket.write(commands.map(encodeCommand).join(''));
        return Promise.all(replies);
      },
      subscribe: async (channel, handler) => {
        const confirmation = send(['SUBSCRIBE', channel]);
        onMessage = handler;
        await confirmation;
      },
      close: () => socket.destroy(),
    };
    socket.once('connect', () => resolveConnect(client));
  });
}

// redis-server processes that the Redis outage and TLS tests control closely: a fixed port that
// survives a restart, TLS-only listeners, extra server arguments, SIGSTOP and SIGCONT, and test
// certificates made with the `openssl` command.
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { collectLines, freePort, runCommand, spawnTracked, stopChild, waitFor } from './proc.mjs';

/**
 * Starts redis-server on 127.0.0.1 with its data in dir/NAME and its log appended to
 * dir/NAME.log. `port` reuses a port (for a restart), a free one by default. With `tls` (from
 * makeCertificates) the server listens for TLS only, on that port. `args` are extra server
 * arguments. Resolves once PING answers. Returns { port, url, child, cli(args, options), stop(),
 * kill(), pause(), resume() }; url is redis:// or rediss:// with host 127.0.0.1.
 */
export async function startRedisServer(dir, { name = 'redis', port, tls, args = [] } = {}) {
  const serverPort = port ?? (await freePort());
  const dataDir = join(dir, name);
  await mkdir(dataDir, { recursive: true });
  const logFile = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
  const serverArgs = ['--bind', '127.0.0.1', '--save', '', '--dir', dataDir];
  serverArgs.push('--daemonize', 'no', '--protected-mode', 'yes');
  if (tls) {
    serverArgs.push('--port', '0', '--tls-port', String(serverPort));
    serverArgs.push('--tls-cert-file', tls.serverCert, '--tls-key-file', tls.serverKey);
    serverArgs.push('--tls-ca-cert-file', tls.caCert, '--tls-auth-clients', 'no');
  } else {
    serverArgs.push('--port', String(serverPort));
  }
  serverArgs.push(...args);
  const child = spawnTracked('redis-server', serverArgs);
  child.once('close', () => logFile.end());
  const lines = [];
  collectLines(child.stdout, lines, logFile, []);
  collectLines(child.stderr, lines, logFile, []);

  const cli = (cliArgs, options) => tlsAwareCli(serverPort, tls, cliArgs, options);
  const server = {
    port: serverPort,
    url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${serverPort}`,
    child,
    lines,
    cli,
    stop: () => stopChild(child, { signal: 'SIGTERM', timeoutMs: 5000 }),
    kill: () => stopChild(child, { signal: 'SIGKILL', timeoutMs: 5000 }),
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited: ${lines.join(' | ')}`);
        return (await cli(['PING'], { allowError: true })).trim() === 'PONG';
      },
      { timeoutMs: 10000, intervalMs: 50, what: `redis-server PING on port ${serverPort}` },
    );
  } catch (error) {
    await server.kill();
    throw error;
  }
  return server;
}

/** Runs redis-cli as the default user, over TLS with the client certificate when tls is given;
 * returns stdout. */
async function tlsAwareCli(port, tls, args, { allowError = false, json = false } = {}) {
  const base = ['-h', '127.0.0.1', '-p', String(port), '-e'];
  if (tls) base.push('--tls', '--cacert', tls.caCert, '--cert', tls.clientCert, '--key', tls.clientKey);
  if (json) base.push('--json');
  const result = await runCommand('redis-cli', [...base, ...args], { timeoutMs: 10000 });
  if (result.code !== 0 && !allowError) {
    throw new Error(
      `redis-cli ${args.slice(0, 3).join(' ')} failed with status ${result.code}: ` +
        `${result.stdout.trim()} ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

async function openssl(args) {
  const result = await runCommand('openssl', args, { timeoutMs: 30000 });
  if (result.code !== 0) {
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${result.stderr.trim()}`);
  }
}

/** Makes a CA and a certificate signed by it, with P-256 keys, under dir/PREFIX-*.pem. */
async function makeCa(dir, prefix) {
  const caKey = join(dir, `${prefix}-ca.key`);
  const caCert = join(dir, `${prefix}-ca.pem`);
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']
    .concat(['-nodes', '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', `/CN=${prefix} CA`]));
  return { caKey, caCert };
}

async function issue(dir, ca, name, subjectAltName) {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const extensions = join(dir, `${name}.ext`);
  await writeFile(extensions, `subjectAltName=${subjectAltName}\n`);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    .concat(['-keyout', key, '-out', csr, '-subj', `/CN=${name}`]));
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.caCert, '-CAkey', ca.caKey]
    .concat(['-CAcreateserial', '-out', cert, '-days', '2', '-extfile', extensions]));
  return { key, cert };
}

/**
 * Makes the test PKI in dir: a CA, a server certificate for IP 127.0.0.1 and DNS redis.test, a
 * client certificate, and a second CA that signed nothing here. Returns { caCert, serverCert,
 * serverKey, clientCert, clientKey, wrongCaCert, serverName: 'redis.test' }.
 */
export async function makeCertificates(dir) {
  const ca = await makeCa(dir, 'test');
  const wrong = await makeCa(dir, 'wrong');
  const server = await issue(dir, ca, 'server', 'IP:127.0.0.1,DNS:redis.test');
  const client = await issue(dir, ca, 'client', 'DNS:kc-cluster-hub.test');
  return {
    caCert: ca.caCert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    wrongCaCert: wrong.caCert,
    serverName: 'redis.test',
  };
}

/**
 * Creates an ACL user with the password and the access rules given as one string, split on
 * spaces, after "clearselectors resetkeys resetchannels" as managed Redis setups send them.
 */
export async function setAclUser(server, user, password, rules) {
  const args = ['ACL', 'SETUSER', user, 'clearselectors', 'resetkeys', 'resetchannels'];
  args.push(`>${password}`, ...rules.split(' '));
  const reply = (await server.cli(args)).trim();
  if (reply !== 'OK') throw new Error(`ACL SETUSER ${user} returned ${reply}`);
}

/** The access string of an application instance's Redis user, as managed Redis setups use. */
export function instanceAccess(prefix) {
  return (
    `on ~${prefix}:* &${prefix}:* -@all +@fast +@pubsub +@keyspace +@string +@read +@write ` +
    '+@scripting -@dangerous +client|setname +info'
  );
}

/** The access string of the hub's own user, for every namespace in prefixes. */
export function hubAccess(prefixes) {
  const keys = prefixes.map((prefix) => `~${prefix}:*`).join(' ');
  const channels = prefixes.map((prefix) => `&${prefix}:*`).join(' ');
  return (
    `on ${keys} ${channels} -@all +@fast +@pubsub +@keyspace +@string +@read +@write ` +
    '+@scripting -@dangerous +client|setname +info'
  );
}

// Runs the Redis part of deploy/docker-compose.yml without Docker. deploy/demo/make-secrets.sh
// makes the CA, certificate, passwords and ACL file in a temp folder, and redis-server starts with
// the compose service's own arguments, on loopback and a free port. The hub and a kc-cluster-ctl
// instance then connect with the compose environment: rediss://, the ACL users, the CA file, and
// the certificate's server name "redis". The key that the instance publishes must be served.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import {
  buildDir, cleanEnv, collectLines, freePort, installHardTimeout, makeTempDir, removeTempDir,
  runCommand, spawnTracked, stopChild, waitFor,
} from '../integration/lib/proc.mjs';
import { startProvider, CLIENT_ID } from '../integration/lib/provider.mjs';
import { deployDir, hubBinary, loadCompose, parseDockerfile, stageEnv } from './lib.mjs';

const ctlBinary = join(buildDir, 'kc-cluster-ctl');
const compose = loadCompose();
const hubImageEnv = stageEnv(parseDockerfile().find((stage) => stage.name === 'hub'));
const isRoot = process.getuid?.() === 0;
const state = {};

installHardTimeout(100000, 'compose_redis.test.mjs');

/** Maps the compose file's /secrets/... paths into the temp folder. */
function localPath(path) {
  return path.startsWith('/secrets/') ? join(state.secrets, path.slice('/secrets/'.length)) : path;
}

/** Returns a service's compose environment with paths and the Redis URL for this machine. */
function localEnv(env) {
  const local = {};
  for (const [name, value] of Object.entries(env)) local[name] = localPath(String(value));
  const url = new URL(local.KCHUB_REDIS_URL);
  url.hostname = '127.0.0.1';
  url.port = String(state.redisPort);
  local.KCHUB_REDIS_URL = url.toString();
  local.KCHUB_REDIS_TLS_SERVER_NAME = 'redis';
  return local;
}

function startLogged(name, command, args, env) {
  const child = spawnTracked(command, args, { env: cleanEnv(env) });
  child.lines = [];
  const file = createWriteStream(join(state.dir, `${name}.log`));
  collectLines(child.stdout, child.lines, file, []);
  collectLines(child.stderr, child.lines, file, []);
  return child;
}

before(async () => {
  if (!isRoot) return;
  state.dir = await makeTempDir('compose-redis');
  state.secrets = join(state.dir, 'secrets');
  const secretsRun = await runCommand('bash', [join(deployDir, 'demo', 'make-secrets.sh')], {
    env: cleanEnv({ SECRETS_DIR: state.secrets, ACL_TEMPLATE: join(deployDir, 'redis', 'users.acl') }),
    timeoutMs: 30000,
  });
  assert.equal(secretsRun.code, 0, `make-secrets.sh failed: ${secretsRun.stderr}`);

  state.redisPort = await freePort();
  const args = compose.services.redis.command.slice(1).map(localPath);
  args[args.indexOf('--tls-port') + 1] = String(state.redisPort);
  args.push('--bind', '127.0.0.1', '--dir', state.dir);
  state.redis = startLogged('redis', 'redis-server', args, {});
  await waitFor(() => state.redis.lines.some((line) => line.includes('Ready to accept connections')),
    { timeoutMs: 10000, what: 'redis-server with the compose arguments to start' });

  state.publicPort = await freePort();
  state.adminPort = await freePort();
  const hubEnv = localEnv({ ...hubImageEnv, ...compose.services.hub.environment });
  Object.assign(hubEnv, {
    KCHUB_LISTEN: `127.0.0.1:${state.publicPort}`,
    KCHUB_ADMIN_LISTEN: `127.0.0.1:${state.adminPort}`,
    // Keycloak is not here: the realm keys URL points at a closed loopback port.
    KCHUB_LOGOUT_JWKS_URL: `http://127.0.0.1:${await freePort()}/certs`,
  });
  state.hub = startLogged('hub', hubBinary, [], hubEnv);
});

after(async () => {
  if (!isRoot) return;
  for (const child of [state.hub, state.redis]) if (child) await stopChild(child);
  if (process.env.KCHUB_TEST_KEEP_TMP) console.log(`kept ${state.dir}`);
  else await removeTempDir(state.dir);
});

test('compose redis: healthcheck sees auth required', { skip: !isRoot && 'needs root' }, async () => {
  const command = compose.services.redis.healthcheck.test[1]
    .replaceAll('/secrets/', `${state.secrets}/`)
    .replace('-p 6379', `-p ${state.redisPort}`);
  const result = await runCommand('sh', ['-c', command]);
  assert.equal(result.code, 0, `the healthcheck failed: ${result.stdout}${result.stderr}`);
});

test('compose redis: hub connects as its ACL user', { skip: !isRoot && 'needs root' }, async () => {
  const readyz = async () => (await fetch(`http://127.0.0.1:${state.adminPort}/readyz`)).status === 200;
  try {
    await waitFor(readyz, { timeoutMs: 15000, what: 'the hub to answer 200 on /readyz' });
  } catch (error) {
    assert.fail(`${error.message}; hub log:\n${state.hub.lines.join('\n')}`);
  }
});

test('compose redis: instance key is served', { skip: !isRoot && 'needs root' }, async () => {
  const keyPath = join(state.dir, 'instance-key.pem');
  const key = await runCommand('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt',
    'ec_paramgen_curve:P-256', '-out', keyPath]);
  assert.equal(key.code, 0, key.stderr);
  const namespace = compose.services.hub.environment.KCHUB_NAMESPACE;
  const jwksUrl = `http://127.0.0.1:${state.publicPort}/${namespace}/jwks`;
  const env = cleanEnv(localEnv(compose.services['instance-a'].environment));
  const published = await runCommand(ctlBinary, ['publish', '--namespace', namespace, '--key', keyPath,
    '--jwks-url', jwksUrl, '--safe-window-ms', '0', '--once'], { env, timeoutMs: 30000 });
  assert.equal(published.code, 0, `kc-cluster-ctl publish failed: ${published.stderr}`);
  const body = await (await fetch(jwksUrl)).json();
  assert.equal(body.keys.length, 1);
  assert.equal(body.keys[0].kty, 'EC');
});

test('compose redis: default user is refused', { skip: !isRoot && 'needs root' }, async () => {
  const result = await runCommand('redis-cli', ['--tls', '--cacert', join(state.secrets, 'ca.crt'),
    '--sni', 'redis', '-h', '127.0.0.1', '-p', String(state.redisPort), 'get', 'x']);
  assert.match(result.stdout + result.stderr, /NOAUTH/);
});

/**
 * Serves Keycloak's discovery and token paths of the demo realm on loopback and passes each
 * request on to oidc-provider, so deploy/demo/instance.sh runs unchanged against it.
 */
async function startRealmPaths(provider, realm) {
  const routes = {
    [`/realms/${realm}/.well-known/openid-configuration`]: `${provider.issuer}/.well-known/openid-configuration`,
    [`/realms/${realm}/protocol/openid-connect/token`]: provider.tokenEndpoint,
  };
  const server = createServer(async (request, response) => {
    const target = routes[request.url];
    if (!target) {
      response.writeHead(404).end();
      return;
    }
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const upstream = await fetch(target, {
      method: request.method,
      headers: { 'content-type': request.headers['content-type'] ?? 'text/plain' },
      body: request.method === 'POST' ? Buffer.concat(chunks) : undefined,
    });
    response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') });
    response.end(Buffer.from(await upstream.arrayBuffer()));
  });
  const port = await freePort();
  await new Promise((resolveListen) => server.listen(port, '127.0.0.1', resolveListen));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((done) => server.close(done)) };
}

test('demo instance: login and logout notice', { skip: !isRoot && 'needs root' }, async () => {
  const namespace = compose.services.hub.environment.KCHUB_NAMESPACE;
  const jwksUrl = `http://127.0.0.1:${state.publicPort}/${namespace}/jwks`;
  const provider = await startProvider({ jwksUri: jwksUrl });
  const realmPaths = await startRealmPaths(provider, 'demo');
  const env = localEnv(compose.services['instance-a'].environment);
  Object.assign(env, {
    KCHUB_INSTANCE: 'instance-a', DEMO_KEYCLOAK_URL: realmPaths.url, DEMO_CLIENT_ID: CLIENT_ID,
    DEMO_JWKS_URL: jwksUrl, DEMO_WORK_DIR: join(state.dir, 'instance-a'),
    PATH: `${buildDir}:${process.env.PATH}`,
  });
  const instance = startLogged('instance-a', 'bash', [join(deployDir, 'demo', 'instance.sh')], env);
  try {
    const loggedIn = () => instance.lines.some((line) => line.includes('client_credentials login succeeded'));
    await waitFor(loggedIn, { timeoutMs: 45000, what: 'the client_credentials login' }).catch((error) => {
      assert.fail(`${error.message}; instance log:\n${instance.lines.join('\n')}\n${provider.events.join('\n')}`);
    });
    const notice = JSON.stringify({ v: 1, iss: 'http://localhost:8180/realms/demo', sub: 'user-1',
      sid: 'sid-1', jti: 'jti-1', iat: 1, exp: null, revoke_offline_access: false, received_at_ms: 1 });
    const added = await runCommand('redis-cli', ['--tls', '--cacert', join(state.secrets, 'ca.crt'),
      '--sni', 'redis', '-h', '127.0.0.1', '-p', String(state.redisPort), '--user', 'kcc-hub',
      'XADD', `${namespace}:logout:events`, '*', 'v', '1', 'notice', notice],
    { env: cleanEnv({ REDISCLI_AUTH: (await readFile(join(state.secrets, 'hub-redis-password'), 'utf8')) }) });
    assert.equal(added.code, 0, added.stderr);
    const printed = () => instance.lines.find((line) => line.startsWith('logout notice: '));
    const line = await waitFor(printed, { timeoutMs: 10000, what: 'the logout notice line' });
    assert.equal(JSON.parse(line.slice('logout notice: '.length)).sid, 'sid-1');
  } finally {
    state.instanceExit = await stopChild(instance, { timeoutMs: 10000 });
    await realmPaths.close();
    await provider.close();
  }
  assert.equal(state.instanceExit.code, 0, `instance.sh exit status after SIGTERM; log:\n${instance.lines.join('\n')}`);
  assert.ok(instance.lines.some((line) => line.includes('stopping: the key is retired')));
});

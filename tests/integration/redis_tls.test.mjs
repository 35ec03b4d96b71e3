// Redis as managed services run it: TLS only, certificates made here with openssl, and ACL users
// confined to their namespace's prefix with the access string such deployments use. The hub and
// the ctl publish and serve through it, and every wrong setting (password, CA, host name, plain
// text to the TLS port, ACL) stops the hub at start with exit status 3 and a message that names
// the cause without the password.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { startPublish } from './lib/ctl.mjs';
import { getJwks, hubBinary, kidsOf, startHub, waitForJwks } from './lib/hub.mjs';
import { generateKey } from './lib/keys.mjs';
import {
  cleanEnv,
  freePort,
  installHardTimeout,
  makeTempDir,
  removeTempDir,
  runCommand,
} from './lib/proc.mjs';
import {
  hubAccess,
  instanceAccess,
  makeCertificates,
  setAclUser,
  startRedisServer,
} from './lib/redis_server.mjs';

const PROD = 'tls-prod';
const TEST = 'tls-test';
const HUB_USER = 'kcc-hub';
const HUB_PASSWORD = 'hub-secret-7f3a';
const PROD_USER = 'kcc-tls-prod';
const PROD_PASSWORD = 'prod-secret-91c2';
const TEST_USER = 'kcc-tls-test';
const TEST_PASSWORD = 'test-secret-44d0';
const EXIT_REDIS = 3;
// Every hub here gets a free admin port, so hubs that run at once do not collide, and stops
// without a drain delay. A hub without these settings ignores the variables.
const HUB_ENV = { KCHUB_ADMIN_LISTEN: '127.0.0.1:0', KCHUB_SHUTDOWN_DRAIN_MS: '0' };

const cancelHardTimeout = installHardTimeout(150000, 'redis_tls.test.mjs');

let dir;
let certs;
let redis;
let plainRedis;
const publishers = [];
const hubs = [];

before(async () => {
  dir = await makeTempDir('tls');
  certs = await makeCertificates(dir);
  redis = await startRedisServer(dir, { name: 'redis-tls', tls: certs });
  plainRedis = await startRedisServer(dir, { name: 'redis-plain' });
  await setAclUser(redis, HUB_USER, HUB_PASSWORD, hubAccess([PROD, TEST]));
  await setAclUser(redis, PROD_USER, PROD_PASSWORD, instanceAccess(PROD));
  await setAclUser(redis, TEST_USER, TEST_PASSWORD, instanceAccess(TEST));
  await setAclUser(plainRedis, PROD_USER, PROD_PASSWORD, instanceAccess(PROD));
});

after(async () => {
  for (const publisher of publishers) await publisher.stop('SIGKILL', 2000);
  for (const hub of hubs) await hub.stop();
  await redis?.kill();
  await plainRedis?.kill();
  if (dir && !process.env.KCHUB_TEST_KEEP_TMP) await removeTempDir(dir);
  cancelHardTimeout();
});

function tlsUrl(user, password, host = '127.0.0.1') {
  return `rediss://${user}:${password}@${host}:${redis.port}`;
}

/** The TLS and credential variables of a hub that connects as the hub's own user. */
function hubEnv(extra = {}) {
  return {
    ...HUB_ENV,
    KCHUB_REDIS_TLS_CA_FILE: certs.caCert,
    KCHUB_REDIS_PASSWORD: HUB_PASSWORD,
    ...extra,
  };
}

/**
 * Runs the hub until it exits (at most timeoutMs) with a config file for namespaces and the given
 * environment. Returns { code, output } with stderr and stdout joined.
 */
async function runHubToExit({ redisUrl, namespaces, env, timeoutMs = 15000 }) {
  const configPath = join(dir, `exit-${Math.random().toString(36).slice(2)}.json`);
  const config = {
    listen: `127.0.0.1:${await freePort()}`,
    http_threads: 1,
    redis: { url: redisUrl, connect_timeout_ms: 2000 },
    namespaces: namespaces.map((name) => ({ name })),
  };
  await writeFile(configPath, JSON.stringify(config));
  const result = await runCommand(hubBinary, ['--config', configPath], {
    timeoutMs,
    env: cleanEnv({ ...HUB_ENV, ...env }),
  });
  return { code: result.code, output: `${result.stderr}${result.stdout}` };
}

function startTlsPublisher(name, key, namespace, user, password, extraFlags = {}) {
  const publisher = startPublish({
    dir,
    name,
    flags: {
      namespace,
      key: key.pemPath,
      'redis-url': tlsUrl(user, password),
      'redis-tls-ca-file': certs.caCert,
      instance: name,
      'lease-ms': 60000,
      'safe-window-ms': 0,
      ...extraFlags,
    },
  });
  publishers.push(publisher);
  return publisher;
}

test('tls acl users publish and serve', async () => {
  const hub = await startHub({
    dir,
    redisUrl: `rediss://${HUB_USER}@127.0.0.1:${redis.port}`,
    namespaces: [PROD, TEST],
    env: hubEnv(),
  });
  hubs.push(hub);
  const prodKey = await generateKey(dir, 'tls-prod-key', 'ec');
  const testKey = await generateKey(dir, 'tls-test-key', 'ed25519');
  startTlsPublisher('tls-prod-1', prodKey, PROD, PROD_USER, PROD_PASSWORD);
  startTlsPublisher('tls-test-1', testKey, TEST, TEST_USER, TEST_PASSWORD);

  const prod = await waitForJwks(hub.jwksUrl(PROD), (body) => kidsOf(body).length === 1);
  const other = await waitForJwks(hub.jwksUrl(TEST), (body) => kidsOf(body).length === 1);
  assert.deepEqual(kidsOf(prod), [prodKey.thumbprint]);
  assert.deepEqual(kidsOf(other), [testKey.thumbprint]);
  assert.ok(
    hub.lines.some((line) => line.includes('may read and write the names of all 2 namespaces')),
    'the start-up check passed for both namespaces',
  );
  assert.ok(!hub.lines.some((line) => line.includes(HUB_PASSWORD)), 'no log line has the password');
});

test('tls server name for ip endpoint', async () => {
  // The certificate names 127.0.0.1 and redis.test but not localhost: reaching the server as
  // localhost needs the server name setting.
  const env = hubEnv({ KCHUB_REDIS_TLS_SERVER_NAME: certs.serverName });
  const hub = await startHub({
    dir,
    redisUrl: `rediss://${HUB_USER}@localhost:${redis.port}`,
    namespaces: [PROD],
    env,
  });
  hubs.push(hub);
  assert.equal((await getJwks(hub.jwksUrl(PROD))).status, 200);
});

test('tls verify off warns at start', async () => {
  const hub = await startHub({
    dir,
    redisUrl: `rediss://${HUB_USER}@127.0.0.1:${redis.port}`,
    namespaces: [PROD],
    env: { ...HUB_ENV, KCHUB_REDIS_PASSWORD: HUB_PASSWORD, KCHUB_REDIS_TLS_VERIFY: 'false' },
  });
  hubs.push(hub);
  assert.ok(
    hub.lines.some((line) => line.includes('WARN') && line.includes('verification')),
    `a warning says verification is off; log: ${hub.lines.join(' | ')}`,
  );
});

test('tls client certificate required', async () => {
  const strict = await startRedisServer(dir, {
    name: 'redis-mtls',
    tls: certs,
    args: ['--tls-auth-clients', 'yes'],
  });
  try {
    const url = `rediss://127.0.0.1:${strict.port}`;
    const without = await runHubToExit({
      redisUrl: url,
      namespaces: [PROD],
      env: { KCHUB_REDIS_TLS_CA_FILE: certs.caCert },
    });
    assert.equal(without.code, EXIT_REDIS, without.output);
    assert.match(without.output, /TLS/);
    const hub = await startHub({
      dir,
      redisUrl: url,
      namespaces: [PROD],
      env: {
        ...HUB_ENV,
        KCHUB_REDIS_TLS_CA_FILE: certs.caCert,
        KCHUB_REDIS_TLS_CERT_FILE: certs.clientCert,
        KCHUB_REDIS_TLS_KEY_FILE: certs.clientKey,
      },
    });
    await hub.stop();
  } finally {
    await strict.kill();
  }
});

test('wrong settings fail at start', async () => {
  const cases = [
    {
      name: 'wrong password',
      redisUrl: `rediss://${HUB_USER}@127.0.0.1:${redis.port}`,
      env: hubEnv({ KCHUB_REDIS_PASSWORD: 'not-the-password-5e1b' }),
      expected: /WRONGPASS/,
      secret: 'not-the-password-5e1b',
    },
    {
      name: 'wrong CA',
      redisUrl: `rediss://${HUB_USER}@127.0.0.1:${redis.port}`,
      env: hubEnv({ KCHUB_REDIS_TLS_CA_FILE: certs.wrongCaCert }),
      expected: /certificate did not verify/,
    },
    {
      name: 'host name mismatch',
      redisUrl: `rediss://${HUB_USER}@localhost:${redis.port}`,
      env: hubEnv(),
      expected: /does not match the name "localhost"/,
    },
    {
      name: 'plain text to the TLS port',
      redisUrl: `redis://${HUB_USER}@127.0.0.1:${redis.port}`,
      env: { KCHUB_REDIS_PASSWORD: HUB_PASSWORD },
      expected: /expects TLS, not plain text; use a rediss:\/\/ URL/,
    },
    {
      name: 'TLS to a plain-text port',
      redisUrl: `rediss://127.0.0.1:${plainRedis.port}`,
      env: { KCHUB_REDIS_TLS_CA_FILE: certs.caCert },
      expected: /answers plain text, not TLS; use a redis:\/\/ URL/,
    },
    {
      name: 'ACL without the namespace',
      redisUrl: `rediss://${PROD_USER}@127.0.0.1:${redis.port}`,
      namespaces: [PROD, TEST],
      env: hubEnv({ KCHUB_REDIS_PASSWORD: PROD_PASSWORD }),
      expected: /user "kcc-tls-prod" may not read the key tls-test:jwks: XINFO STREAM returned "NOPERM/,
      secret: PROD_PASSWORD,
    },
  ];
  const results = await Promise.all(
    cases.map((c) =>
      runHubToExit({ redisUrl: c.redisUrl, namespaces: c.namespaces ?? [PROD], env: c.env }),
    ),
  );
  cases.forEach((c, i) => {
    const { code, output } = results[i];
    assert.equal(code, EXIT_REDIS, `${c.name}: exit status; output: ${output}`);
    assert.match(output, c.expected, `${c.name}: message`);
    assert.match(output, /Redis rejected the configured credentials, certificates or ACL/);
    for (const secret of [HUB_PASSWORD, c.secret].filter(Boolean)) {
      assert.ok(!output.includes(secret), `${c.name}: the output has no password`);
    }
  });
});

test('refused connection is retried', async () => {
  const closedPort = await freePort();
  const hub = await startHub({
    dir,
    redisUrl: `redis://127.0.0.1:${closedPort}`,
    namespaces: [PROD],
    env: HUB_ENV,
    waitReady: false,
  });
  hubs.push(hub);
  await hub.waitForLog((line) => line.includes('cannot check Redis'), { timeoutMs: 5000 });
  assert.equal((await getJwks(hub.jwksUrl(PROD))).status, 503, 'no replay yet, so 503');
  assert.equal(hub.child.exitCode, null, 'the hub keeps running and retrying');
});

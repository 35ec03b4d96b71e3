// End to end: three instances publish their keys through kc-cluster-ctl, the hub folds them into
// one JWKS, and oidc-provider accepts each instance's private_key_jwt client assertion against
// that JWKS. Also covers a leaked private key in the stream, retirement on SIGTERM and lease
// expiry after SIGKILL.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { startPublish, waitForReadyFile } from './lib/ctl.mjs';
import { getJwks, kidsOf, parseRejection, startHub, waitForJwks } from './lib/hub.mjs';
import { generateKey, publishedJwk } from './lib/keys.mjs';
import { delay, installHardTimeout, makeTempDir, removeTempDir } from './lib/proc.mjs';
import { requestToken, startProvider } from './lib/provider.mjs';
import { entryIdMs, startRedis, xrevrange } from './lib/redis.mjs';

const NAMESPACE = 'e2e';
const STREAM = `${NAMESPACE}:jwks`;
const LEASE_MS = 6000;
const RETIRE_GRACE_MS = 3000;
// Slack for a hub that removes keys on a timer and for the 100 ms polling below.
const TIMING_SLACK_MS = 300;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const cancelHardTimeout = installHardTimeout(150000, 'jwks_e2e.test.mjs');

let dir;
let redis;
let hub;
let provider;
const keys = {};
const publishers = {};
const instances = { rsa: 'e2e-rsa', ec: 'e2e-ec', ed25519: 'e2e-ed25519' };

before(async () => {
  dir = await makeTempDir('e2e');
  redis = await startRedis(dir);
  hub = await startHub({
    dir,
    redisUrl: redis.url,
    namespaces: [NAMESPACE],
    keys: { retire_grace_ms: RETIRE_GRACE_MS },
  });
  provider = await startProvider({ jwksUri: hub.jwksUrl(NAMESPACE) });
  keys.rsa = await generateKey(dir, 'rsa', 'rsa');
  keys.ec = await generateKey(dir, 'ec', 'ec');
  keys.ed25519 = await generateKey(dir, 'ed25519', 'ed25519');
  keys.unpublished = await generateKey(dir, 'unpublished', 'ec');
  keys.evil = await generateKey(dir, 'evil', 'ec');
});

after(async () => {
  for (const publisher of Object.values(publishers)) await publisher.stop('SIGKILL', 2000);
  await provider?.close();
  await hub?.stop();
  await redis?.stop();
  if (dir && !process.env.KCHUB_TEST_KEEP_TMP) await removeTempDir(dir);
  cancelHardTimeout();
});

function context() {
  const hubTail = hub.lines.slice(-8).join(' | ');
  return `hub log tail: ${hubTail}; provider events: ${provider.events.join(' | ')}`;
}

async function servedKids() {
  const { status, body } = await getJwks(hub.jwksUrl(NAMESPACE));
  assert.equal(status, 200, `GET ${hub.jwksUrl(NAMESPACE)} returned ${status}`);
  return kidsOf(body);
}

test('stream: leaked private key rejected', { timeout: 20000 }, async () => {
  // A foreign writer publishes a JWK that still has its private scalar `d`. oidc-provider would
  // reject the whole JWKS because of it, locking every instance out.
  const jwk = { ...publishedJwk(keys.evil), d: 'c2VjcmV0LXNjYWxhci10aGF0LW11c3Qtbm90LWxlYWs' };
  const id = await redis.xadd(STREAM, [
    ['v', '1'],
    ['type', 'publish'],
    ['instance', 'evil'],
    ['kid', jwk.kid],
    ['lease_ms', '60000'],
    ['jwk', JSON.stringify(jwk)],
  ]);

  const line = await hub.waitForLog((text) => parseRejection(text)?.id === id, {
    timeoutMs: 10000,
    what: `rejection of stream entry ${id}`,
  });
  const rejection = parseRejection(line);
  assert.equal(rejection.reason, 'private_member', line);
  assert.equal(rejection.instance, 'evil', line);
  assert.equal(rejection.namespace, NAMESPACE, line);
  assert.match(line, / WARN /, line);
});

test('ctl: three instances become ready', { timeout: 40000 }, async () => {
  const readyFiles = {};
  for (const kind of Object.keys(instances)) {
    readyFiles[kind] = join(dir, `ready-${kind}.json`);
    publishers[kind] = startPublish({
      dir,
      name: kind,
      flags: {
        namespace: NAMESPACE,
        key: keys[kind].pemPath,
        'redis-url': redis.url,
        instance: instances[kind],
        'lease-ms': LEASE_MS,
        'jwks-url': hub.jwksUrl(NAMESPACE),
        // The default window (11 s) covers a Keycloak node that fetched the JWKS just before the
        // key was served. oidc-provider has made no fetch yet, so its first fetch, made by the
        // first token request below, already sees every key: 1 s is enough here.
        'safe-window-ms': 1000,
        'ready-file': readyFiles[kind],
      },
    });
  }

  for (const kind of Object.keys(instances)) {
    const ready = await waitForReadyFile(readyFiles[kind], publishers[kind], { timeoutMs: 30000 });
    assert.deepEqual(ready.kids, [keys[kind].thumbprint], `ready file of ${kind}`);
    assert.equal(typeof ready.safe_at_ms, 'number', `safe_at_ms in ready file of ${kind}`);
    assert.ok(ready.safe_at_ms <= Date.now(), `safe_at_ms of ${kind} lies in the future`);
  }
  for (const kind of Object.keys(instances)) {
    const logged = publishers[kind].lines.some((line) =>
      line.includes(`key ${keys[kind].thumbprint} is safe to sign with`),
    );
    assert.ok(logged, `ctl ${kind} did not log "is safe to sign with": ${publishers[kind].lines}`);
  }
});

test('jwks: serves the three public keys', { timeout: 10000 }, async () => {
  const { status, headers, body } = await getJwks(hub.jwksUrl(NAMESPACE));
  assert.equal(status, 200);
  assert.match(headers.get('content-type') ?? '', /^application\/(jwk-set\+)?json/);
  assert.ok(Array.isArray(body?.keys), 'body has a keys array');

  for (const kind of Object.keys(instances)) {
    const expected = publishedJwk(keys[kind]);
    const served = body.keys.find((key) => key.kid === keys[kind].thumbprint);
    assert.ok(served, `kid ${expected.kid} of ${kind} is served`);
    assert.equal(served.kty, expected.kty, `kty of ${kind}`);
    assert.equal(served.use, 'sig', `use of ${kind}`);
    assert.equal(served.alg, expected.alg, `alg of ${kind}`);
    for (const member of ['n', 'e', 'crv', 'x', 'y']) {
      assert.equal(served[member], expected[member], `${member} of ${kind}`);
    }
  }
});

test('jwks: no private member, no evil key', { timeout: 10000 }, async () => {
  const { body } = await getJwks(hub.jwksUrl(NAMESPACE));
  for (const key of body.keys) {
    for (const member of PRIVATE_MEMBERS) {
      assert.equal(key[member], undefined, `served key ${key.kid} has private member ${member}`);
    }
  }
  assert.ok(!kidsOf(body).includes(keys.evil.thumbprint), 'evil kid is served');
  assert.ok(!body.keys.some((key) => key.x === keys.evil.publicJwk.x), 'evil key is served');
  assert.equal(body.keys.length, 3, `served kids: ${kidsOf(body)}`);
});

test('token: each instance key accepted', { timeout: 20000 }, async () => {
  for (const kind of Object.keys(instances)) {
    const { status, body } = await requestToken(provider, { key: keys[kind] });
    assert.equal(status, 200, `${kind}: ${JSON.stringify(body)}; ${context()}`);
    assert.equal(typeof body.access_token, 'string', `${kind}: access_token`);
    assert.equal(body.token_type, 'Bearer', `${kind}: token_type`);
  }
});

test('token: unpublished key rejected', { timeout: 10000 }, async () => {
  const { status, body } = await requestToken(provider, { key: keys.unpublished });
  assert.equal(status, 401, JSON.stringify(body));
  assert.equal(body.error, 'invalid_client');
});

/** Returns the newest entry of the stream matching fields, or undefined. */
async function newestEntry(match) {
  const entries = await xrevrange(redis.port, STREAM, 200);
  return entries.find((entry) =>
    Object.entries(match).every(([name, value]) => entry.fields[name] === value),
  );
}

/**
 * Polls until kid leaves the JWKS and returns the time it was first seen absent. Fails when the
 * kid is still served at deadlineMs (epoch ms).
 */
async function waitUntilAbsent(kid, deadlineMs) {
  await waitForJwks(hub.jwksUrl(NAMESPACE), (body) => !kidsOf(body).includes(kid), {
    timeoutMs: Math.max(deadlineMs - Date.now(), 0),
    intervalMs: 100,
    what: `kid ${kid} to leave the JWKS`,
  });
  return Date.now();
}

test('ctl SIGTERM: retired after grace', { timeout: 30000 }, async () => {
  const kid = keys.rsa.thumbprint;
  const { code, signal } = await publishers.rsa.stop('SIGTERM', 10000);
  assert.equal(signal, null, `ctl ended by signal ${signal}`);
  assert.equal(code, 0, `ctl exit status; log: ${publishers.rsa.lines.join(' | ')}`);
  assert.ok((await servedKids()).includes(kid), 'retired key still served right after exit');

  const retire = await newestEntry({ type: 'retire', instance: instances.rsa });
  assert.ok(retire, `no retire entry for ${instances.rsa} in ${STREAM}`);
  if (retire.fields.kid !== undefined) assert.equal(retire.fields.kid, kid);
  const retiredAt = entryIdMs(retire.id);

  // Still served one second into the grace period.
  await delay(Math.max(retiredAt + 1000 - Date.now(), 0));
  assert.ok((await servedKids()).includes(kid), 'retired key served 1 s into the grace period');

  const absentAt = await waitUntilAbsent(kid, retiredAt + RETIRE_GRACE_MS + 2500);
  assert.ok(
    absentAt >= retiredAt + RETIRE_GRACE_MS - TIMING_SLACK_MS,
    `key left ${absentAt - retiredAt} ms after retiring, within the ${RETIRE_GRACE_MS} ms grace`,
  );
});

test('ctl SIGKILL: removed at lease end', { timeout: 30000 }, async () => {
  const kid = keys.ec.thumbprint;
  await publishers.ec.stop('SIGKILL', 2000);
  const last = await newestEntry({ type: 'publish', instance: instances.ec });
  assert.ok(last, `no publish entry for ${instances.ec} in ${STREAM}`);
  const leaseEnd = entryIdMs(last.id) + LEASE_MS;

  assert.ok(Date.now() < leaseEnd - 1000, `last renewal ${last.id} is older than the lease allows`);
  assert.ok((await servedKids()).includes(kid), 'killed instance key served before lease end');

  const absentAt = await waitUntilAbsent(kid, leaseEnd + 3000);
  assert.ok(
    absentAt >= leaseEnd - TIMING_SLACK_MS,
    `key left ${leaseEnd - absentAt} ms before its lease ended`,
  );
});

test('token: ed25519 instance still accepted', { timeout: 20000 }, async () => {
  const kids = await servedKids();
  assert.ok(kids.includes(keys.ed25519.thumbprint), `served kids: ${kids}`);
  assert.ok(!kids.includes(keys.rsa.thumbprint), `retired rsa kid still served: ${kids}`);
  assert.ok(!kids.includes(keys.ec.thumbprint), `expired ec kid still served: ${kids}`);

  const { status, body } = await requestToken(provider, { key: keys.ed25519 });
  assert.equal(status, 200, `${JSON.stringify(body)}; ${context()}`);
  assert.equal(typeof body.access_token, 'string');
});

test('hub: SIGTERM exits 0', { timeout: 15000 }, async () => {
  const { code, signal } = await hub.stop();
  assert.equal(signal, null, `hub ended by signal ${signal}`);
  assert.equal(code, 0, `hub exit status; log tail: ${hub.lines.slice(-5).join(' | ')}`);
});

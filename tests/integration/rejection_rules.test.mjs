// Every rejection reason of the stream protocol, fed to a running hub through redis-cli XADD as a
// foreign or faulty writer would, and the hub's HTTP behaviour on GET, HEAD and other methods.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { startPublish, waitForReadyFile } from './lib/ctl.mjs';
import {
  fetchWithTimeout,
  getJwks,
  kidsOf,
  parseRejection,
  startHub,
  waitForJwks,
} from './lib/hub.mjs';
import { generateKey, publishedJwk } from './lib/keys.mjs';
import { freePort, installHardTimeout, makeTempDir, removeTempDir } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';

const NAMESPACE = 'rules';
// A second namespace for the future-ID case. Once an entry with a future ID is in a stream, Redis
// gives every later `*` entry of that stream an ID above it, so the stream is no use for the
// cases after it.
const FUTURE_NAMESPACE = 'later';
const LEASE_MAX_MS = 600000;
const RETIRE_GRACE_MS = 1000;
const BAD_INSTANCE = 'bad-writer';
const VALID_INSTANCE = 'rules-valid';

const cancelHardTimeout = installHardTimeout(150000, 'rejection_rules.test.mjs');

let dir;
let redis;
let hub;
let publisher;
const keys = {};

before(async () => {
  dir = await makeTempDir('rules');
  redis = await startRedis(dir);
  hub = await startHub({
    dir,
    redisUrl: redis.url,
    namespaces: [NAMESPACE, FUTURE_NAMESPACE],
    keys: { lease_max_ms: LEASE_MAX_MS, retire_grace_ms: RETIRE_GRACE_MS },
  });
  keys.valid = await generateKey(dir, 'valid', 'ec');
  keys.bad = await generateKey(dir, 'bad', 'ec');
  keys.other = await generateKey(dir, 'other', 'ec');
  keys.probe = await generateKey(dir, 'probe', 'ec');
  keys.later = await generateKey(dir, 'later', 'ec');
  keys.weakRsa = await generateKey(dir, 'weak-rsa', 'rsa1024');

  const readyFile = join(dir, 'ready-valid.json');
  publisher = startPublish({
    dir,
    name: 'valid',
    flags: {
      namespace: NAMESPACE,
      key: keys.valid.pemPath,
      'redis-url': redis.url,
      instance: VALID_INSTANCE,
      'lease-ms': 60000,
      'jwks-url': hub.jwksUrl(NAMESPACE),
      // Only "served" matters here: no OpenID provider reads this JWKS.
      'safe-window-ms': 1000,
      'ready-file': readyFile,
    },
  });
  await waitForReadyFile(readyFile, publisher, { timeoutMs: 30000 });
});

after(async () => {
  await publisher?.stop('SIGKILL', 2000);
  await hub?.stop();
  await redis?.stop();
  if (dir && !process.env.KCHUB_TEST_KEEP_TMP) await removeTempDir(dir);
  cancelHardTimeout();
});

/** Builds publish-entry fields; an override set to undefined leaves that field out. */
function entry(overrides) {
  const fields = {
    v: '1',
    type: 'publish',
    instance: BAD_INSTANCE,
    kid: undefined,
    lease_ms: '60000',
    jwk: undefined,
    ...overrides,
  };
  if (typeof fields.jwk === 'object' && fields.jwk !== null)
    fields.jwk = JSON.stringify(fields.jwk);
  return Object.entries(fields).filter(([, value]) => value !== undefined);
}

/** Builds a publish entry for the bad key under `kid`, with the JWK changed by `change`. */
function badKeyEntry(kid, change = (jwk) => jwk, overrides = {}) {
  return entry({ kid, jwk: change(publishedJwk(keys.bad, kid)), ...overrides });
}

function b64url(buffer) {
  return Buffer.from(buffer).toString('base64url');
}

function withoutMember(jwk, member) {
  const copy = { ...jwk };
  delete copy[member];
  return copy;
}

function flipLastBit(value) {
  const bytes = Buffer.from(value, 'base64url');
  bytes[bytes.length - 1] ^= 1;
  return b64url(bytes);
}

// Each case: the reasons the hub may log (one, except where two checks apply to the same
// input), the stream fields, and the kids that must not be served afterwards.
const CASES = [
  {
    name: 'private member d',
    reasons: ['private_member'],
    fields: () => badKeyEntry('bad-private', (jwk) => ({ ...jwk, d: b64url(Buffer.alloc(32, 7)) })),
  },
  {
    name: 'oct key with k',
    reasons: ['private_member'],
    fields: () =>
      entry({
        kid: 'bad-oct-k',
        jwk: {
          kty: 'oct',
          kid: 'bad-oct-k',
          use: 'sig',
          alg: 'HS256',
          k: b64url(Buffer.alloc(32, 1)),
        },
      }),
  },
  {
    name: 'oct key without k',
    reasons: ['kty'],
    fields: () =>
      entry({ kid: 'bad-oct', jwk: { kty: 'oct', kid: 'bad-oct', use: 'sig', alg: 'HS256' } }),
  },
  {
    name: 'kty missing',
    reasons: ['kty'],
    fields: () => badKeyEntry('bad-no-kty', (jwk) => withoutMember(jwk, 'kty')),
  },
  {
    name: 'kty unsupported',
    reasons: ['kty'],
    fields: () => badKeyEntry('bad-kty', (jwk) => ({ ...jwk, kty: 'XYZ' })),
  },
  {
    // The entry's kid field is present, so a hub may also call the JWK's missing kid a mismatch.
    name: 'kid missing in jwk',
    reasons: ['missing_member', 'kid_mismatch'],
    fields: () => badKeyEntry('bad-no-kid', (jwk) => withoutMember(jwk, 'kid')),
  },
  {
    name: 'use missing',
    reasons: ['missing_member'],
    fields: () => badKeyEntry('bad-no-use', (jwk) => withoutMember(jwk, 'use')),
  },
  {
    name: 'alg missing',
    reasons: ['missing_member'],
    fields: () => badKeyEntry('bad-no-alg', (jwk) => withoutMember(jwk, 'alg')),
  },
  {
    name: 'kid control character',
    reasons: ['kid'],
    fields: () => badKeyEntry('bad\u0001kid'),
  },
  {
    name: 'use enc',
    reasons: ['use_enc'],
    fields: () => badKeyEntry('bad-use-enc', (jwk) => ({ ...jwk, use: 'enc' })),
  },
  {
    name: 'use foo',
    reasons: ['use'],
    fields: () => badKeyEntry('bad-use-foo', (jwk) => ({ ...jwk, use: 'foo' })),
  },
  {
    name: 'alg RS256 on EC key',
    reasons: ['alg'],
    fields: () => badKeyEntry('bad-alg', (jwk) => ({ ...jwk, alg: 'RS256' })),
  },
  {
    name: 'RSA 1024-bit modulus',
    reasons: ['bad_key'],
    fields: () => entry({ kid: 'bad-rsa-1024', jwk: publishedJwk(keys.weakRsa, 'bad-rsa-1024') }),
  },
  {
    name: 'EC point off curve',
    reasons: ['bad_key'],
    fields: () => badKeyEntry('bad-off-curve', (jwk) => ({ ...jwk, y: flipLastBit(jwk.y) })),
  },
  {
    name: 'EC coordinate too short',
    reasons: ['bad_key'],
    fields: () =>
      badKeyEntry('bad-short-x', (jwk) => ({
        ...jwk,
        x: b64url(Buffer.from(jwk.x, 'base64url').subarray(1)),
      })),
  },
  {
    // No alg fits an unknown curve, so the alg check may name it first.
    name: 'EC curve unknown',
    reasons: ['bad_key', 'alg'],
    fields: () =>
      badKeyEntry('bad-crv', (jwk) => ({
        ...jwk,
        crv: 'P-192',
        x: b64url(Buffer.alloc(24, 3)),
        y: b64url(Buffer.alloc(24, 5)),
      })),
  },
  {
    name: 'type missing',
    reasons: ['malformed'],
    fields: () => badKeyEntry('bad-no-type', undefined, { type: undefined }),
  },
  {
    name: 'instance missing',
    reasons: ['malformed'],
    instance: '-',
    fields: () => badKeyEntry('bad-no-instance', undefined, { instance: undefined }),
  },
  {
    name: 'type unknown',
    reasons: ['malformed'],
    fields: () => badKeyEntry('bad-type', undefined, { type: 'rotate' }),
  },
  {
    name: 'jwk over 16384 bytes',
    reasons: ['too_large'],
    fields: () => badKeyEntry('bad-large', (jwk) => ({ ...jwk, x5u: 'a'.repeat(16400) })),
  },
  {
    name: 'version 2',
    reasons: ['version'],
    fields: () => badKeyEntry('bad-version', undefined, { v: '2' }),
  },
  {
    name: 'lease 0',
    reasons: ['lease'],
    fields: () => badKeyEntry('bad-lease-0', undefined, { lease_ms: '0' }),
  },
  {
    name: 'lease over maximum',
    reasons: ['lease'],
    fields: () => badKeyEntry('bad-lease-max', undefined, { lease_ms: String(LEASE_MAX_MS + 1) }),
  },
  {
    name: 'jwk bad JSON',
    reasons: ['bad_json'],
    fields: () => entry({ kid: 'bad-json', jwk: '{"kty":"EC","kid":"bad-json",' }),
  },
  {
    name: 'kid field mismatch',
    reasons: ['kid_mismatch'],
    absentKids: ['bad-mismatch-field', 'bad-mismatch-jwk'],
    fields: () =>
      entry({ kid: 'bad-mismatch-field', jwk: publishedJwk(keys.bad, 'bad-mismatch-jwk') }),
  },
];

async function feed(fields, stream = `${NAMESPACE}:jwks`) {
  const id = await redis.xadd(stream, fields);
  const line = await hub.waitForLog((text) => parseRejection(text)?.id === id, {
    timeoutMs: 10000,
    what: `the rejection line of stream entry ${id}`,
  });
  return { id, line, rejection: parseRejection(line) };
}

async function assertValidStillServed(ns = NAMESPACE, kid = keys.valid.thumbprint) {
  const { status, body } = await getJwks(hub.jwksUrl(ns));
  assert.equal(status, 200, `GET ${hub.jwksUrl(ns)}`);
  assert.ok(kidsOf(body).includes(kid), `valid kid ${kid} no longer served: ${kidsOf(body)}`);
  return body;
}

function assertRejection({ line, rejection }, reasons, instance = BAD_INSTANCE, ns = NAMESPACE) {
  assert.ok(rejection, `unparsable rejection line: ${line}`);
  assert.ok(
    reasons.includes(rejection.reason),
    `reason ${rejection.reason}, expected ${reasons}: ${line}`,
  );
  assert.equal(rejection.namespace, ns, line);
  assert.equal(rejection.instance, instance, line);
  assert.match(line, / WARN /, line);
}

test('http: GET returns JWKS', { timeout: 10000 }, async () => {
  const { status, headers, body } = await getJwks(hub.jwksUrl(NAMESPACE));
  assert.equal(status, 200);
  assert.match(headers.get('content-type') ?? '', /^application\/(jwk-set\+)?json/);
  assert.equal(headers.get('cache-control'), 'no-cache');
  assert.match(headers.get('etag') ?? '', /^"[^"]+"$/, 'strong ETag');
  assert.deepEqual(kidsOf(body), [keys.valid.thumbprint]);
});

test('http: If-None-Match gives 304', { timeout: 10000 }, async () => {
  const first = await getJwks(hub.jwksUrl(NAMESPACE));
  const etag = first.headers.get('etag');
  const second = await getJwks(hub.jwksUrl(NAMESPACE), { 'if-none-match': etag });
  assert.equal(second.status, 304);
  assert.equal(second.text, '');
  assert.equal(second.headers.get('etag'), etag);
  const other = await getJwks(hub.jwksUrl(NAMESPACE), { 'if-none-match': '"not-the-etag"' });
  assert.equal(other.status, 200);
});

test('http: HEAD has headers only', { timeout: 10000 }, async () => {
  const get = await getJwks(hub.jwksUrl(NAMESPACE));
  const response = await fetchWithTimeout(hub.jwksUrl(NAMESPACE), { method: 'HEAD' });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('etag'), get.headers.get('etag'));
  assert.match(response.headers.get('content-type') ?? '', /^application\/(jwk-set\+)?json/);
  assert.equal(await response.text(), '');
  const length = response.headers.get('content-length');
  if (length !== null) assert.equal(Number(length), Buffer.byteLength(get.text));
});

test('http: POST gives 405 with Allow', { timeout: 10000 }, async () => {
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const response = await fetchWithTimeout(hub.jwksUrl(NAMESPACE), {
      method,
      body: method === 'DELETE' ? undefined : '{}',
    });
    assert.equal(response.status, 405, method);
    assert.equal(response.headers.get('allow'), 'GET, HEAD', method);
    await response.arrayBuffer();
  }
});

test('http: unknown namespace gives 404', { timeout: 10000 }, async () => {
  for (const path of ['/unknown/jwks', `/${NAMESPACE}/keys`, '/']) {
    const { status, headers, body } = await getJwks(`${hub.baseUrl}${path}`);
    assert.equal(status, 404, path);
    assert.match(headers.get('content-type') ?? '', /^application\/json/, path);
    assert.equal(body?.error, 'not_found', path);
    assert.equal(typeof body?.error_description, 'string', path);
  }
});

test('http: 503 before stream replay', { timeout: 20000 }, async () => {
  // Nothing listens on this port, so the second hub never finishes its first replay.
  const deadRedisUrl = `redis://127.0.0.1:${await freePort()}`;
  const waiting = await startHub({
    dir,
    redisUrl: deadRedisUrl,
    namespaces: [NAMESPACE],
    waitReady: false,
  });
  let response;
  try {
    response = await getJwks(waiting.jwksUrl(NAMESPACE));
  } finally {
    const { code } = await waiting.stop();
    assert.equal(code, 0, 'exit status of the waiting hub after SIGTERM');
  }
  assert.equal(response.status, 503);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(typeof response.body?.error, 'string');
  assert.equal(typeof response.body?.error_description, 'string');
});

test('http: ETag follows key set', { timeout: 20000 }, async () => {
  const url = hub.jwksUrl(NAMESPACE);
  const before = await getJwks(url);
  const probeKid = keys.probe.thumbprint;
  await redis.xadd(
    `${NAMESPACE}:jwks`,
    entry({
      instance: 'etag-probe',
      kid: probeKid,
      jwk: publishedJwk(keys.probe),
    }),
  );
  await waitForJwks(url, (body) => kidsOf(body).includes(probeKid), {
    what: `probe kid ${probeKid}`,
  });
  const added = await getJwks(url);
  assert.notEqual(added.headers.get('etag'), before.headers.get('etag'), 'ETag after add');
  const stale = await getJwks(url, { 'if-none-match': before.headers.get('etag') });
  assert.equal(stale.status, 200, 'old ETag no longer matches');

  // Kids keep their relative order when a key joins, and repeated GETs give the same body.
  const previous = kidsOf(before.body);
  assert.deepEqual(
    kidsOf(added.body).filter((kid) => previous.includes(kid)),
    previous,
  );
  const again = await getJwks(url);
  assert.equal(again.text, added.text, 'same body on repeated GET');
  assert.equal(again.headers.get('etag'), added.headers.get('etag'));

  await redis.xadd(`${NAMESPACE}:jwks`, [
    ['v', '1'],
    ['type', 'retire'],
    ['instance', 'etag-probe'],
  ]);
  await waitForJwks(url, (body) => !kidsOf(body).includes(probeKid), {
    timeoutMs: RETIRE_GRACE_MS + 5000,
    what: `probe kid ${probeKid} to leave after its retire grace`,
  });
  const removed = await getJwks(url);
  assert.notEqual(removed.headers.get('etag'), added.headers.get('etag'), 'ETag after removal');
  assert.deepEqual(kidsOf(removed.body), previous);
});

test('http: key order stable', { timeout: 20000 }, async () => {
  const url = hub.jwksUrl(NAMESPACE);
  const kids = ['order-c', 'order-a', 'order-b'];
  const material = [keys.probe, keys.other, keys.later];
  for (let i = 0; i < kids.length; i += 1) {
    await redis.xadd(
      `${NAMESPACE}:jwks`,
      entry({
        instance: `order-${i}`,
        kid: kids[i],
        jwk: publishedJwk(material[i], kids[i]),
      }),
    );
  }
  const full = await waitForJwks(url, (body) => kids.every((kid) => kidsOf(body).includes(kid)), {
    what: 'the three order-* kids',
  });
  for (let i = 0; i < 5; i += 1) {
    const { body } = await getJwks(url);
    assert.deepEqual(kidsOf(body), kidsOf(full), `order on GET ${i + 1}`);
  }
  for (let i = 0; i < kids.length; i += 1) {
    await redis.xadd(`${NAMESPACE}:jwks`, [
      ['v', '1'],
      ['type', 'retire'],
      ['instance', `order-${i}`],
    ]);
  }
  await waitForJwks(url, (body) => !kids.some((kid) => kidsOf(body).includes(kid)), {
    timeoutMs: RETIRE_GRACE_MS + 5000,
    what: 'the order-* kids to leave',
  });
});

for (const testCase of CASES) {
  test(`reject: ${testCase.name}`, { timeout: 20000 }, async () => {
    const fields = testCase.fields();
    const kid = fields.find(([name]) => name === 'kid')?.[1];
    const result = await feed(fields);
    assertRejection(result, testCase.reasons, testCase.instance ?? BAD_INSTANCE);

    const body = await assertValidStillServed();
    for (const absent of testCase.absentKids ?? [kid]) {
      assert.ok(!kidsOf(body).includes(absent), `rejected kid ${JSON.stringify(absent)} is served`);
    }
  });
}

test('reject: kid_conflict same instance', { timeout: 20000 }, async () => {
  const kid = keys.valid.thumbprint;
  const result = await feed(
    entry({ instance: VALID_INSTANCE, kid, jwk: publishedJwk(keys.other, kid) }),
  );
  assertRejection(result, ['kid_conflict'], VALID_INSTANCE);

  const body = await assertValidStillServed();
  const served = body.keys.filter((key) => key.kid === kid);
  assert.equal(served.length, 1, `kid ${kid} served ${served.length} times`);
  assert.equal(served[0].x, keys.valid.publicJwk.x, 'kid still maps to the original key');
  assert.equal(served[0].y, keys.valid.publicJwk.y, 'kid still maps to the original key');
});

test('reject: kid_owner other instance', { timeout: 20000 }, async () => {
  const kid = keys.valid.thumbprint;
  const result = await feed(entry({ instance: 'kid-thief', kid, jwk: publishedJwk(keys.valid) }));
  assertRejection(result, ['kid_owner'], 'kid-thief');

  const body = await assertValidStillServed();
  assert.equal(body.keys.filter((key) => key.kid === kid).length, 1, `kid ${kid} served once`);
});

test('reject: future_id ten minutes ahead', { timeout: 20000 }, async () => {
  const stream = `${FUTURE_NAMESPACE}:jwks`;
  const laterKid = keys.later.thumbprint;
  await redis.xadd(
    stream,
    entry({ instance: 'later-valid', kid: laterKid, jwk: publishedJwk(keys.later) }),
  );
  await waitForJwks(hub.jwksUrl(FUTURE_NAMESPACE), (body) => kidsOf(body).includes(laterKid), {
    what: `kid ${laterKid} in namespace ${FUTURE_NAMESPACE}`,
  });

  const futureMs = (await redis.timeMs()) + 10 * 60 * 1000;
  const fields = badKeyEntry('bad-future');
  const id = await redis.xadd(stream, fields, `${futureMs}-0`);
  assert.equal(id, `${futureMs}-0`);
  const line = await hub.waitForLog((text) => parseRejection(text)?.id === id, {
    timeoutMs: 10000,
    what: `the rejection line of stream entry ${id}`,
  });
  assertRejection(
    { line, rejection: parseRejection(line) },
    ['future_id'],
    BAD_INSTANCE,
    FUTURE_NAMESPACE,
  );

  const body = await assertValidStillServed(FUTURE_NAMESPACE, laterKid);
  assert.ok(!kidsOf(body).includes('bad-future'), 'future entry kid is served');
  await assertValidStillServed();
});

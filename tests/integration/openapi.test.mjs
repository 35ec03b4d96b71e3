// openapi/openapi.yaml: @redocly/cli lints it, and the response checker is shown to catch a
// wrong status, header and body. Then a running hub is brought to send every status of the public
// routes (JWKS 200/304/404/405/503, logout 200/400/404/405/413/415/503), and each response is
// checked against the description.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { startHub, waitForJwks } from './lib/hub.mjs';
import { generateKey, publishedJwk } from './lib/keys.mjs';
import { logoutClaims, signLogoutToken, signerFor, startTestIssuer } from './lib/logout.mjs';
import { freePort, installHardTimeout, makeTempDir, removeTempDir } from './lib/proc.mjs';
import { startRedis } from './lib/redis.mjs';
import { fetchChecked, lintDescription, loadDescription, openapiPath } from './openapi.mjs';

const NS = 'oas';
const NS_LOGOUT = 'oas-logout';
const CLIENT_ID = 'oas-app';
const BODY_MAX_BYTES = 4096;
const JWKS = '/{namespace}/jwks';
const LOGOUT = '/{namespace}/backchannel-logout';
const FORM = 'application/x-www-form-urlencoded';

const cancelHardTimeout = installHardTimeout(90000, 'openapi.test.mjs');

let dir;
let redis;
let issuer;
let hub;
// Its Redis URL points at a port nothing listens on: JWKS 503, logout 503.
let deadHub;
let signer;

before(async () => {
  dir = await makeTempDir('openapi');
  redis = await startRedis(dir);
  const realmKey = await generateKey(dir, 'realm', 'rsa');
  signer = await signerFor(realmKey);
  issuer = await startTestIssuer({ keys: [publishedJwk(realmKey)] });
  const namespaces = [
    NS,
    { name: NS_LOGOUT, logout: { issuer: issuer.issuer, client_id: CLIENT_ID } },
  ];
  const extraConfig = { http_body_max_bytes: BODY_MAX_BYTES };
  hub = await startHub({ dir, redisUrl: redis.url, namespaces, extraConfig });
  const deadRedis = `redis://127.0.0.1:${await freePort()}`;
  deadHub = await startHub({ dir, redisUrl: deadRedis, namespaces, extraConfig, waitReady: false });

  const instanceKey = await generateKey(dir, 'instance', 'ec');
  const jwk = publishedJwk(instanceKey, 'oas-kid');
  await redis.xadd(`${NS}:jwks`, [
    ['v', '1'],
    ['type', 'publish'],
    ['instance', 'oas-instance'],
    ['kid', jwk.kid],
    ['lease_ms', '600000'],
    ['jwk', JSON.stringify(jwk)],
  ]);
  await waitForJwks(hub.jwksUrl(NS), (body) => body.keys.length === 1);
});

after(async () => {
  // In parallel: a hub waits for idle keep-alive connections (up to its drain time) on SIGTERM.
  await Promise.all([hub?.stop(), deadHub?.stop()]);
  await issuer?.close();
  await redis?.stop();
  if (dir && !process.env.KCHUB_TEST_KEEP_TMP) await removeTempDir(dir);
  cancelHardTimeout();
});

function logoutToken() {
  const claims = logoutClaims({ issuer: issuer.issuer, clientId: CLIENT_ID });
  return signLogoutToken({ signer, claims });
}

function form(token) {
  return new URLSearchParams({ logout_token: token }).toString();
}

test('lint: redocly finds no problem', { timeout: 60000 }, async () => {
  const { code, stdout, stderr, report } = await lintDescription();
  assert.ok(report, `redocly lint printed no JSON report (status ${code}): ${stdout} ${stderr}`);
  const problems = report.problems.map((p) => `${p.ruleId}: ${p.message}`).join('; ');
  assert.equal(report.totals.errors, 0, problems);
  assert.equal(report.totals.warnings, 0, problems);
  assert.equal(code, 0, stderr);
});

test('lint: broken description fails', { timeout: 60000 }, async () => {
  // A response without a description and a $ref to nothing: both break OpenAPI 3.1.
  const text = (await readFile(openapiPath, 'utf8'))
    .replace("$ref: '#/components/responses/NotModified'", "$ref: '#/components/responses/Gone'")
    .replace('description: The process is alive.', 'x-note: no description');
  const brokenPath = join(dir, 'broken-openapi.yaml');
  await writeFile(brokenPath, text);
  const { code, report } = await lintDescription(brokenPath);
  assert.notEqual(code, 0, 'redocly lint accepted a broken description');
  assert.ok(report.totals.errors >= 2, JSON.stringify(report.problems.map((p) => p.ruleId)));
});

test('checker: catches mismatches', async () => {
  const checker = await loadDescription();
  const json = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  const undocumented = checker.problems({ method: 'GET', path: JWKS, status: 418, headers: {} });
  assert.match(undocumented.join(), /status 418 is not documented/);

  const noEtag = checker.problems({
    method: 'GET',
    path: JWKS,
    status: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-cache' },
    text: '{"keys":[]}',
  });
  assert.deepEqual(noEtag, ['required header ETag is missing']);

  const leaked = checker.problems({
    method: 'GET',
    path: JWKS,
    status: 200,
    headers: { ...json, etag: '"abc"' },
    text: '{"keys":[{"kty":"EC","kid":"k","use":"sig","alg":"ES256","d":"secret"}]}',
  });
  assert.match(leaked.join(), /must NOT have additional properties/);

  const wrongState = checker.problems({
    method: 'GET',
    path: '/readyz',
    status: 200,
    headers: json,
    text: '{"status":"ready","namespaces":[{"name":"a","state":"asleep","replayed":true,' +
      '"redis_connected":true,"keys_served":0}]}',
  });
  assert.match(wrongState.join(), /state must be equal to one of the allowed values/);

  const wrongType = checker.problems({
    method: 'GET',
    path: '/metrics',
    status: 200,
    headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' },
    text: 'x 1\n',
  });
  assert.match(wrongType.join(), /Content-Type text\/plain is not one of the documented/);
});

test('jwks: 200, HEAD and 304', async () => {
  const url = hub.jwksUrl(NS);
  const first = await fetchChecked(url, JWKS);
  assert.equal(first.status, 200);
  assert.deepEqual(
    JSON.parse(first.text).keys.map((k) => k.kid),
    ['oas-kid'],
  );
  const head = await fetchChecked(url, JWKS, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('etag'), first.headers.get('etag'));
  const etag = first.headers.get('etag');
  for (const method of ['GET', 'HEAD']) {
    const cached = await fetchChecked(url, JWKS, { method, headers: { 'if-none-match': etag } });
    assert.equal(cached.status, 304, `${method} with If-None-Match`);
    assert.equal(cached.text, '');
  }
});

test('jwks: 404, 405 and 503', async () => {
  const missing = await fetchChecked(hub.jwksUrl('no-such-ns'), JWKS);
  assert.equal(missing.status, 404);
  const missingHead = await fetchChecked(hub.jwksUrl('no-such-ns'), JWKS, { method: 'HEAD' });
  assert.equal(missingHead.status, 404);
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const wrong = await fetchChecked(hub.jwksUrl(NS), JWKS, { method });
    assert.equal(wrong.status, 405, method);
  }
  for (const method of ['GET', 'HEAD']) {
    const waiting = await fetchChecked(deadHub.jwksUrl(NS), JWKS, { method });
    assert.equal(waiting.status, 503, `${method} before the stream was read`);
  }
});

test('logout: 200 and 400', async () => {
  const url = hub.logoutUrl(NS_LOGOUT);
  const headers = { 'content-type': FORM };
  const token = await logoutToken();
  const accepted = await fetchChecked(url, LOGOUT, { method: 'POST', headers, body: form(token) });
  assert.equal(accepted.status, 200, accepted.text);
  const replayed = await fetchChecked(url, LOGOUT, { method: 'POST', headers, body: form(token) });
  assert.equal(replayed.status, 400);
  assert.match(JSON.parse(replayed.text).error_description, /^replayed_jti: /);
  const missing = await fetchChecked(url, LOGOUT, { method: 'POST', headers, body: 'a=1' });
  assert.equal(missing.status, 400);
  const garbage = await fetchChecked(url, LOGOUT, { method: 'POST', headers, body: form('x.y.z') });
  assert.equal(garbage.status, 400);
});

test('logout: 404, 405, 413 and 415', async () => {
  const url = hub.logoutUrl(NS_LOGOUT);
  const post = { method: 'POST', headers: { 'content-type': FORM }, body: 'logout_token=a' };
  const plain = await fetchChecked(hub.logoutUrl(NS), LOGOUT, post);
  assert.equal(plain.status, 404, 'namespace without logout settings');
  const unknown = await fetchChecked(hub.logoutUrl('no-such-ns'), LOGOUT, post);
  assert.equal(unknown.status, 404, 'unknown namespace');
  for (const method of ['GET', 'PUT', 'DELETE']) {
    const wrong = await fetchChecked(url, LOGOUT, { method });
    assert.equal(wrong.status, 405, method);
  }
  const big = `logout_token=${'a'.repeat(BODY_MAX_BYTES)}`;
  const tooLarge = await fetchChecked(url, LOGOUT, { ...post, body: big });
  assert.equal(tooLarge.status, 413, 'over the limit by Content-Length');
  // Without Content-Length the hub finds the size while it reads the body.
  const chunked = new Blob([big]).stream();
  const streamed = await fetchChecked(url, LOGOUT, { ...post, body: chunked, duplex: 'half' });
  assert.equal(streamed.status, 413, 'over the limit in a chunked body');
  const json = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' };
  const wrongType = await fetchChecked(url, LOGOUT, json);
  assert.equal(wrongType.status, 415);
});

test('logout: 503 without Redis', async () => {
  const headers = { 'content-type': FORM };
  const body = form(await logoutToken());
  const url = deadHub.logoutUrl(NS_LOGOUT);
  const unavailable = await fetchChecked(url, LOGOUT, { method: 'POST', headers, body });
  assert.equal(unavailable.status, 503, unavailable.text);
  assert.equal(JSON.parse(unavailable.text).error, 'temporarily_unavailable');
});

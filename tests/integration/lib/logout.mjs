// Back-channel logout helpers: a test issuer (discovery document and JWKS over plain HTTP on
// 127.0.0.1), logout tokens built and signed here with jose, POSTs to the hub's logout route, and
// the notices the hub wrote to Redis.
import { createPrivateKey, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';

import { CompactSign, base64url } from 'jose';

import { freePort } from './proc.mjs';
import { xrevrange } from './redis.mjs';

export const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Members of a protocol version 1 logout notice, in the order the hub writes them. */
export const NOTICE_MEMBERS = [
  'v',
  'iss',
  'sub',
  'sid',
  'jti',
  'iat',
  'exp',
  'revoke_offline_access',
  'received_at_ms',
];

export function logoutStream(ns) {
  return `${ns}:logout:events`;
}

export function logoutChannel(ns) {
  return `${ns}:logout`;
}

export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

/**
 * Starts an issuer on 127.0.0.1 that serves a discovery document (issuer, jwks_uri) and the JWKS
 * { keys }. setKeys() replaces the served keys. Every GET of the JWKS is recorded in jwksFetches
 * (epoch ms). Returns { issuer, jwksUrl, jwksFetches, discoveryFetches, setKeys(keys), close() }.
 */
export async function startTestIssuer({ keys }) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const state = { keys, jwksFetches: [], discoveryFetches: [] };
  const server = createServer((request, response) => {
    const send = (status, body) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (request.method !== 'GET') return send(405, { error: 'method_not_allowed' });
    if (request.url === '/.well-known/openid-configuration') {
      state.discoveryFetches.push(Date.now());
      return send(200, { issuer, jwks_uri: `${issuer}/jwks` });
    }
    if (request.url === '/jwks') {
      state.jwksFetches.push(Date.now());
      return send(200, { keys: state.keys });
    }
    return send(404, { error: 'not_found' });
  });
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolveListen);
  });
  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    jwksFetches: state.jwksFetches,
    discoveryFetches: state.discoveryFetches,
    setKeys: (newKeys) => {
      state.keys = newKeys;
    },
    close: () =>
      new Promise((resolveClose) => {
        server.closeAllConnections?.();
        server.close(() => resolveClose());
      }),
  };
}

/**
 * Returns a signer for signLogoutToken: { key (node KeyObject), alg, kid } for a key from
 * keys.mjs. Any alg of the key's type works, so one RSA key signs RS256 and RS384.
 */
export async function signerFor(key, { alg = key.alg, kid = key.thumbprint } = {}) {
  return { key: createPrivateKey(await readFile(key.pemPath, 'utf8')), alg, kid };
}

/** Returns a copy of base with overrides applied; an override of undefined removes the member. */
export function withOverrides(base, overrides = {}) {
  const result = { ...base, ...overrides };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[name];
  }
  return result;
}

/**
 * Returns the claims of a valid logout token, as Keycloak sends them, with overrides applied
 * (see withOverrides): iss, aud, iat now, exp 120 s later, a fresh jti, sub, sid and the logout
 * event.
 */
export function logoutClaims({ issuer, clientId, sub = 'user-1', sid = 'sid-1' }, overrides) {
  const iat = nowSeconds();
  const claims = {
    iss: issuer,
    aud: clientId,
    iat,
    exp: iat + 120,
    jti: randomUUID(),
    sub,
    sid,
    events: { [LOGOUT_EVENT]: {} },
  };
  return withOverrides(claims, overrides);
}

/**
 * Signs a logout token (compact JWS) with signer. The header is { alg, kid, typ: "logout+jwt" }
 * with `header` overrides applied. The payload is JSON.stringify(claims), or payloadText as it
 * is. `crit` lists the header parameters jose is told to accept as critical.
 */
export function signLogoutToken({ signer, claims, payloadText, header = {}, crit }) {
  const protectedHeader = withOverrides(
    { alg: signer.alg, kid: signer.kid, typ: 'logout+jwt' },
    header,
  );
  const payload = new TextEncoder().encode(payloadText ?? JSON.stringify(claims));
  const options = crit ? { crit: Object.fromEntries(crit.map((name) => [name, true])) } : {};
  return new CompactSign(payload).setProtectedHeader(protectedHeader).sign(signer.key, options);
}

/** Returns "header.payload." with both parts JSON and base64url-encoded, and no signature. */
export function unsignedToken(header, claims) {
  const encode = (value) => base64url.encode(JSON.stringify(value));
  return `${encode(header)}.${encode(claims)}.`;
}

/** Returns the token with the first byte of its signature changed. */
export function corruptSignature(token) {
  const [header, payload, signature] = token.split('.');
  const bytes = base64url.decode(signature);
  bytes[0] ^= 0x01;
  return `${header}.${payload}.${base64url.encode(bytes)}`;
}

/**
 * POSTs a logout to url. body defaults to the form `logout_token=<token>`. Returns { status,
 * headers, text, json } with json parsed when the body is JSON.
 */
export async function postLogout(
  url,
  {
    token,
    body,
    contentType = 'application/x-www-form-urlencoded',
    method = 'POST',
    timeoutMs = 5000,
  } = {},
) {
  const headers = {};
  if (contentType !== undefined) headers['content-type'] = contentType;
  const init = { method, headers, signal: AbortSignal.timeout(timeoutMs) };
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = body ?? new URLSearchParams({ logout_token: token }).toString();
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Returns the number of entries in the namespace's notice stream (0 when it does not exist). */
export async function noticeCount(redis, ns) {
  return Number((await redis.cli(['XLEN', logoutStream(ns)])).trim());
}

/**
 * Returns the newest `count` entries of the namespace's notice stream, oldest first, as
 * [{ id, fields, text (the notice field), notice (parsed) }].
 */
export async function latestNotices(redis, ns, count = 1) {
  const entries = await xrevrange(redis.port, logoutStream(ns), count);
  return entries.reverse().map(({ id, fields }) => ({
    id,
    fields,
    text: fields.notice,
    notice: fields.notice === undefined ? undefined : JSON.parse(fields.notice),
  }));
}

// The certified OpenID provider `oidc-provider`, run in-process as the party that fetches the
// hub's JWKS for private_key_jwt client authentication, plus client-assertion and token-request
// helpers.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import { SignJWT } from 'jose';
import Provider from 'oidc-provider';

import { fetchWithTimeout } from './hub.mjs';
import { freePort } from './proc.mjs';

export const CLIENT_ID = 'app';

/**
 * Passes the provider's outgoing request (here: the client's jwks_uri) to plain fetch. The
 * provider adds an undici `dispatcher` option that destroys sockets to loopback and private
 * addresses. Dropping that option lets the provider fetch the hub on 127.0.0.1.
 */
function fetchWithoutAddressGuard(url, options) {
  const { dispatcher, ...rest } = options;
  return globalThis.fetch(url, rest);
}

/**
 * Starts oidc-provider on 127.0.0.1 with one client `app` that authenticates with
 * private_key_jwt against keys from jwksUri and may use the client_credentials grant. Returns
 * { issuer, tokenEndpoint, events, close() }; `events` lists the provider's grant and server
 * errors with their detail, for assertion messages.
 */
export async function startProvider({ jwksUri }) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: jwksUri,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
    ],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
    },
    fetch: fetchWithoutAddressGuard,
  });

  const events = [];
  for (const name of ['grant.error', 'server_error']) {
    provider.on(name, (ctx, error) => {
      const cause = error?.cause ? ` (cause: ${error.cause.message ?? error.cause})` : '';
      events.push(`${name}: ${error?.message} ${error?.error_detail ?? ''}${cause}`.trim());
    });
  }

  const server = createServer(provider.callback());
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolveListen);
  });

  const discovery = await (
    await fetchWithTimeout(`${issuer}/.well-known/openid-configuration`)
  ).json();
  return {
    issuer,
    tokenEndpoint: discovery.token_endpoint,
    events,
    close: () =>
      new Promise((resolveClose) => {
        server.closeAllConnections?.();
        server.close(() => resolveClose());
      }),
  };
}

/**
 * Signs a client assertion for `clientId` with `key` (from keys.mjs): iss = sub = clientId, one
 * aud, a fresh jti, iat now and exp 60 s later. kid defaults to the key's RFC 7638 thumbprint.
 */
export function signClientAssertion({ key, audience, clientId = CLIENT_ID, kid, alg }) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: alg ?? key.alg, kid: kid ?? key.thumbprint, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(audience)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(key.privateKey);
}

/**
 * Requests a token with the client_credentials grant, authenticating with a client assertion
 * signed by `key`. Returns { status, body }.
 */
export async function requestToken(provider, { key, kid, alg, clientId = CLIENT_ID }) {
  const assertion = await signClientAssertion({
    key,
    kid,
    alg,
    clientId,
    audience: provider.tokenEndpoint,
  });
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
  const response = await fetchWithTimeout(provider.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form,
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: response.status, body };
}

/**
 * Starts oidc-provider on 127.0.0.1:port as the sender of back-channel logouts. It signs with
 * signingJwk (a private RSA JWK with kid) and has one client `clientId` whose
 * backchannel_logout_uri is backchannelLogoutUri, with backchannel_logout_session_required, so
 * every logout token carries a sid. Returns { issuer, provider, events, close() }; send a logout
 * with `(await provider.Client.find(clientId)).backchannelLogout(sub, sid)`, which rejects unless
 * the receiver answers 200 or 204.
 */
export async function startLogoutProvider({
  port,
  signingJwk,
  backchannelLogoutUri,
  clientId = CLIENT_ID,
}) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    jwks: { keys: [signingJwk] },
    clients: [
      {
        client_id: clientId,
        client_secret: 'logout-test-client-secret-not-used-for-anything',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        backchannel_logout_uri: backchannelLogoutUri,
        backchannel_logout_session_required: true,
      },
    ],
    features: {
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
    },
    fetch: fetchWithoutAddressGuard,
  });

  const events = [];
  provider.on('server_error', (ctx, error) => events.push(`server_error: ${error?.message}`));

  const server = createServer(provider.callback());
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolveListen);
  });
  return {
    issuer,
    provider,
    events,
    close: () =>
      new Promise((resolveClose) => {
        server.closeAllConnections?.();
        server.close(() => resolveClose());
      }),
  };
}

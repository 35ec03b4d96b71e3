// Public JWKs from PEM keys or freshly made EC points, and RS256 logout tokens signed in advance on
// every core, so the load generator only sends bytes.
import { createECDH, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Returns the public JWK of a PEM private key, as a publisher announces it: kid, use, alg. */
export function publicJwkOf(pemPath, kid) {
  const pem = readFileSync(pemPath, 'utf8');
  const jwk = createPublicKey(createPrivateKey(pem)).export({ format: 'jwk' });
  return { kty: jwk.kty, kid, use: 'sig', alg: 'RS256', n: jwk.n, e: jwk.e };
}

/**
 * Returns the public JWK of a new EC P-256 key pair (the private half is dropped). ECDH key
 * generation yields the point directly, so ten thousand distinct keys take well under a second.
 */
export function newEcJwk(kid) {
  const point = createECDH('prime256v1').generateKeys(); // 0x04 || x || y
  return { kty: 'EC', kid, use: 'sig', alg: 'ES256', crv: 'P-256',
    x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') };
}

function base64urlJson(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Signs tokens first..first+count-1 and returns their lines "<jti>\tlogout_token=<JWS>". */
function signRange({ pemPath, kid, issuer, audience, runId, first, count, iat }) {
  const key = createPrivateKey(readFileSync(pemPath, 'utf8'));
  const header = base64urlJson({ alg: 'RS256', kid, typ: 'logout+jwt' });
  const lines = [];
  for (let i = first; i < first + count; i++) {
    const jti = `bench-${runId}-${i}`;
    const claims = {
      iss: issuer,
      aud: audience,
      iat,
      exp: iat + 600,
      jti,
      sub: `user-${i}`,
      sid: `sid-${i}`,
      events: { [LOGOUT_EVENT]: {} },
    };
    const input = `${header}.${base64urlJson(claims)}`;
    const signature = sign('sha256', Buffer.from(input), key).toString('base64url');
    lines.push(`${jti}\tlogout_token=${input}.${signature}`);
  }
  return lines;
}

/**
 * Writes `count` RS256 logout tokens for issuer and audience to outPath, one line each
 * ("<jti>\t<form body>"), each with its own jti, signed on as many worker threads as there are
 * cores. Resolves with the number of milliseconds the signing took.
 */
export async function signTokens({ pemPath, kid, issuer, audience, count, outPath }) {
  const started = performance.now();
  const runId = Date.now().toString(36);
  const iat = Math.floor(Date.now() / 1000);
  const workers = Math.max(1, Math.min(availableParallelism(), 8));
  const share = Math.ceil(count / workers);
  const jobs = [];
  for (let w = 0; w < workers; w++) {
    const first = w * share;
    const size = Math.min(share, count - first);
    if (size <= 0) break;
    const data = { pemPath, kid, issuer, audience, runId, first, count: size, iat };
    jobs.push(
      new Promise((resolveJob, rejectJob) => {
        const worker = new Worker(new URL(import.meta.url), { workerData: data });
        worker.once('message', resolveJob);
        worker.once('error', rejectJob);
      }),
    );
  }
  const parts = await Promise.all(jobs);
  writeFileSync(outPath, parts.flat().join('\n') + '\n');
  return performance.now() - started;
}

if (!isMainThread) parentPort.postMessage(signRange(workerData));

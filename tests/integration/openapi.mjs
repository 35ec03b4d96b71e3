// Checks HTTP responses against openapi/openapi.yaml, so the description cannot drift from what
// the hub sends: the status must be documented for the route, every required header must be
// present and match its schema, and the body must have a documented media type and validate
// against the response schema (JSON Schema 2020-12, with Ajv). Also runs @redocly/cli's linter.
//
// Conventions of the description that this checker relies on:
// - A 405 is documented on the route's operations, not under every method that gets it, so a
//   method without an operation is checked against the route's documented 405.
// - HEAD without its own operation is checked against GET, without a body.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';

import { repoRoot, runCommand } from './lib/proc.mjs';

export const openapiPath = join(repoRoot, 'openapi', 'openapi.yaml');
export const redoclyConfigPath = join(repoRoot, 'openapi', 'redocly.yaml');
const redoclyBinary = join(repoRoot, 'tests', 'integration', 'node_modules', '.bin', 'redocly');

// The Ajv key of the whole document; schema pointers are resolved below it.
const DOCUMENT_ID = 'urn:kc-cluster-hub:openapi';
const OPENAPI_MEMBERS = [
  'openapi',
  'info',
  'jsonSchemaDialect',
  'servers',
  'security',
  'tags',
  'externalDocs',
  'paths',
  'webhooks',
  'components',
];
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'];

/**
 * Loads an OpenAPI description and returns a checker: { document, problems(response),
 * check(response) }. checkResponse() describes the response shape.
 */
export async function loadDescription(path = openapiPath) {
  const document = parseYaml(await readFile(path, 'utf8'));
  assert.equal(typeof document?.paths, 'object', `${path} has no paths object`);
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  // The document is not a schema itself: Ajv compiles its root with the OpenAPI members as
  // keywords without effect, and the fragments that a response points to as schemas, whose
  // local $refs resolve against the document root.
  ajv.addVocabulary(OPENAPI_MEMBERS);
  ajv.addSchema(document, DOCUMENT_ID, undefined, false);
  const checker = {
    document,
    problems: (response) => responseProblems(document, ajv, response),
    check: (response) => {
      const found = checker.problems(response);
      const request = `${response.method} ${response.path} -> ${response.status}`;
      assert.deepEqual(found, [], `${request} does not match ${path}:\n  ${found.join('\n  ')}`);
    },
  };
  return checker;
}

let defaultChecker;

/**
 * Checks one response against openapi/openapi.yaml and throws an AssertionError that lists every
 * mismatch. `response` is { method, path (the template, for example "/{namespace}/jwks"), status,
 * headers (a fetch Headers object or a plain object), text (the raw body, "" when empty) }. The
 * objects that getJwks() and postLogout() return can be spread into it.
 */
export async function checkResponse(response) {
  defaultChecker ??= loadDescription();
  (await defaultChecker).check(response);
}

/** fetch()es url and returns { status, headers, text } after checking it with checkResponse(). */
export async function fetchChecked(url, path, init = {}) {
  const method = (init.method ?? 'GET').toUpperCase();
  const response = await fetch(url, { signal: AbortSignal.timeout(5000), ...init });
  const text = await response.text();
  const result = { status: response.status, headers: response.headers, text };
  await checkResponse({ method, path, ...result });
  return result;
}

/** Runs `redocly lint` on the description with the repository's config, as JSON. */
export async function lintDescription(path = openapiPath, { timeoutMs = 60000 } = {}) {
  const env = {
    ...process.env,
    // No usage report or update check: the tests reach only servers they started.
    REDOCLY_TELEMETRY: 'off',
    REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
    REDOCLY_SUPPRESS_NOTIFICATIONS: 'true',
  };
  const args = ['lint', '--format', 'json', '--config', redoclyConfigPath, path];
  const result = await runCommand(redoclyBinary, args, { timeoutMs, env });
  let report;
  try {
    report = JSON.parse(result.stdout);
  } catch {
    report = undefined;
  }
  return { ...result, report };
}

/** Returns the response's mismatches with the description as sentences; [] when it matches. */
export function responseProblems(document, ajv, { method, path, status, headers, text = '' }) {
  const pathItem = document.paths[path];
  if (pathItem === undefined) return [`path ${path} is not in the description`];
  const found = findOperation(pathItem, path, method.toLowerCase(), status);
  if (typeof found === 'string') return [found];
  const { operation, operationPointer, headOnly } = found;
  const key = responseKey(operation.responses ?? {}, status);
  if (key === undefined) {
    const documented = Object.keys(operation.responses ?? {}).join(', ');
    return [`status ${status} is not documented for ${method} ${path} (documented: ${documented})`];
  }
  const [responseObject, responsePointer] = resolve(
    document,
    operation.responses[key],
    `${operationPointer}/responses/${escapePointer(key)}`,
  );
  const problems = headerProblems(document, ajv, responseObject, responsePointer, headers);
  if (!headOnly) {
    problems.push(...bodyProblems(ajv, responseObject, responsePointer, headers, text));
  }
  return problems;
}

/** Returns { operation, operationPointer, headOnly } for the request, or a problem sentence. */
function findOperation(pathItem, path, method, status) {
  const found = (name) => ({
    operation: pathItem[name],
    operationPointer: `#/paths/${escapePointer(path)}/${name}`,
    headOnly: method === 'head',
  });
  if (pathItem[method] !== undefined) return found(method);
  if (method === 'head' && pathItem.get !== undefined) return found('get');
  if (status === 405) {
    const name = METHODS.find((candidate) => pathItem[candidate]?.responses?.['405'] !== undefined);
    if (name !== undefined) return found(name);
  }
  return (
    `${method.toUpperCase()} is not documented for ${path}, and ${status} is not a 405 ` +
    'documented on another method of the path'
  );
}

function responseKey(responses, status) {
  const exact = String(status);
  if (responses[exact] !== undefined) return exact;
  const range = `${exact[0]}XX`;
  if (responses[range] !== undefined) return range;
  return responses.default !== undefined ? 'default' : undefined;
}

function headerProblems(document, ajv, responseObject, responsePointer, headers) {
  const problems = [];
  for (const [name, headerRef] of Object.entries(responseObject.headers ?? {})) {
    // OpenAPI ignores a documented Content-Type header; the media type comes from `content`.
    if (name.toLowerCase() === 'content-type') continue;
    const [header, headerPointer] = resolve(
      document,
      headerRef,
      `${responsePointer}/headers/${escapePointer(name)}`,
    );
    const value = headerValue(headers, name);
    if (value === undefined) {
      if (header.required) problems.push(`required header ${name} is missing`);
      continue;
    }
    if (header.schema === undefined) continue;
    const validate = schemaAt(ajv, `${headerPointer}/schema`);
    if (!validate(value)) {
      problems.push(`header ${name}: ${JSON.stringify(value)} ${describeErrors(validate.errors)}`);
    }
  }
  return problems;
}

function bodyProblems(ajv, responseObject, responsePointer, headers, text) {
  const content = responseObject.content;
  if (content === undefined) {
    return text === '' ? [] : [`the body is not documented but ${text.length} bytes were sent`];
  }
  const contentType = headerValue(headers, 'content-type');
  if (contentType === undefined) return ['the Content-Type header is missing'];
  const mediaKey = Object.keys(content).find((key) => mediaTypeMatches(key, contentType));
  if (mediaKey === undefined) {
    const documented = Object.keys(content).join(', ');
    return [`Content-Type ${contentType} is not one of the documented media types: ${documented}`];
  }
  const media = content[mediaKey];
  if (media.schema === undefined) return [];
  let value = text;
  if (/^application\/(.+\+)?json$/i.test(parseMediaType(mediaKey).type)) {
    try {
      value = JSON.parse(text);
    } catch (error) {
      return [`the ${mediaKey} body is not JSON (${error.message}): ${text.slice(0, 200)}`];
    }
  }
  const validate = schemaAt(ajv, `${responsePointer}/content/${escapePointer(mediaKey)}/schema`);
  if (validate(value)) return [];
  return [`the body ${describeErrors(validate.errors)}: ${text.slice(0, 300)}`];
}

function schemaAt(ajv, pointer) {
  const validate = ajv.getSchema(`${DOCUMENT_ID}${pointer}`);
  if (validate === undefined) throw new Error(`no schema at ${pointer} in ${openapiPath}`);
  return validate;
}

/** Follows local $refs (to #/...) and returns [object, pointer of the object]. */
function resolve(document, object, pointer) {
  let current = object;
  let currentPointer = pointer;
  for (let depth = 0; current?.$ref !== undefined; depth += 1) {
    if (depth > 10 || !current.$ref.startsWith('#/')) {
      throw new Error(`cannot follow $ref ${current.$ref} at ${currentPointer}`);
    }
    currentPointer = current.$ref;
    current = current.$ref
      .slice(2)
      .split('/')
      .reduce((node, part) => node?.[unescapePointer(part)], document);
    if (current === undefined) throw new Error(`$ref ${currentPointer} points to nothing`);
  }
  return [current, currentPointer];
}

function headerValue(headers, name) {
  if (typeof headers?.get === 'function') return headers.get(name) ?? undefined;
  const match = Object.keys(headers ?? {}).find((key) => key.toLowerCase() === name.toLowerCase());
  return match === undefined ? undefined : String(headers[match]);
}

function parseMediaType(text) {
  const [type, ...rest] = text.split(';');
  const parameters = {};
  for (const part of rest) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const name = part.slice(0, at).trim().toLowerCase();
    parameters[name] = part.slice(at + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return { type: type.trim().toLowerCase(), parameters };
}

// The documented type must equal the sent one, and every documented parameter must be sent with
// the same value; parameters that are not documented (charset) may be added.
function mediaTypeMatches(documented, sent) {
  const want = parseMediaType(documented);
  const got = parseMediaType(sent);
  if (want.type !== got.type) return false;
  return Object.entries(want.parameters).every(([name, value]) => got.parameters[name] === value);
}

function describeErrors(errors) {
  return (errors ?? [])
    .map((error) => `${error.instancePath || '(root)'} ${error.message}`)
    .join('; ');
}

/** Returns a JSON pointer segment for part, encoded for a URI fragment as Ajv reads it. */
function escapePointer(part) {
  return encodeURIComponent(part.replaceAll('~', '~0').replaceAll('/', '~1'));
}

function unescapePointer(part) {
  return decodeURIComponent(part).replaceAll('~1', '/').replaceAll('~0', '~');
}

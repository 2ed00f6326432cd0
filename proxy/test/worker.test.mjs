// Tests worker.js in workerd (the real Workers runtime) against a fake
// OpenAI API, all on 127.0.0.1. Run with `npm test`.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import {
  RESPONSE_GAP_MS, STREAM_GAP_MS, STREAM_WORDS, completion, response, responseEvents, startFakeOpenAI,
} from './fake-openai.mjs';
import { request } from './http.mjs';
import { startWorker } from './workerd.mjs';

const CALLER_KEY = 'sk-caller-key-0123456789';
const REAL_KEY = 'sk-real-key-in-worker-9876543210';
const PROXY_TOKEN = 'pt-proxy-token-abcdef0123456789';

// Per suite, hooks included; generous because workerd starts slowly on a busy machine.
const TIMEOUT = { timeout: 45000 };

// The caller's address under the many names proxies, CDNs and load balancers
// give it; none may reach OpenAI.
const CLIENT_IP = {
  'client-ip': '203.0.113.7',
  'x-client-ip': '203.0.113.7',
  'x-originating-ip': '[203.0.113.7]',
  'fastly-client-ip': '203.0.113.7',
  'x-envoy-external-address': '203.0.113.7',
  'x-forwarded-for': '203.0.113.7, 198.51.100.1',
  'x-original-forwarded-for': '203.0.113.7',
  'cf-connecting-ip': '203.0.113.7',
  'cf-connecting-ipv6': '2001:db8::7',
  'cf-pseudo-ipv4': '203.0.113.7',
  'true-client-ip': '203.0.113.7',
  forwarded: 'for=203.0.113.7;proto=https',
  'x-real-ip': '203.0.113.7',
  'x-cluster-client-ip': '203.0.113.7',
  'x-appengine-user-ip': '203.0.113.7',
  'x-remote-addr': '203.0.113.7',
  'x-proxyuser-ip': '203.0.113.7',
};

// Other headers OpenAI does not need, some of which say who the caller is,
// where or in which language; none may reach it either.
const OTHER_DROPPED = {
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'ai-proxy.example.com',
  'x-forwarded-port': '443',
  'cf-ipcountry': 'CN',
  'cf-ray': '8a1b2c3d4e5f6789-HKG',
  'cf-visitor': '{"scheme":"https"}',
  'cf-worker': 'example.com',
  'cf-ew-via': '15',
  'cf-access-client-id': 'someone',
  'cdn-loop': 'cloudflare',
  via: '1.1 some-proxy',
  origin: 'https://app.example.com',
  referer: 'https://app.example.com/chat?user=42',
  cookie: 'session=abc123',
  'accept-language': 'zh-CN,zh;q=0.9',
  'x-stainless-lang': 'go',
  'x-stainless-os': 'Linux',
  'cache-control': 'no-cache',
  'x-custom-header': 'anything',
};

// Headers the API relies on; they must reach it unchanged in both modes.
const KEPT = {
  'content-type': 'application/json',
  accept: 'application/json',
  'openai-beta': 'assistants=v2',
  'user-agent': 'chatbot-test/1.0',
};

// Headers that choose the account a key bills: forwarded in pass-through mode
// only.
const ACCOUNT = {
  'openai-organization': 'org-test',
  'openai-project': 'proj_test',
};

// What upstream may see besides the forwarded headers: those fetch() sets.
const SET_BY_FETCH = ['host', 'content-length', 'transfer-encoding', 'connection'];

const CHAT_BODY = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
const STREAM_BODY = JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] });
// What chatbot sends to the Responses API (see DESIGN.md): stream, store false.
const RESPONSES_BODY = JSON.stringify({
  model: 'gpt-test',
  stream: true,
  store: false,
  instructions: 'You are a helpful assistant.',
  input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
});

let fake;

before(async () => {
  fake = await startFakeOpenAI({ validKeys: [CALLER_KEY, REAL_KEY] });
});

after(async () => {
  await fake?.close();
});

beforeEach(() => fake.reset());

// withWorker runs a describe block's tests against one workerd instance.
function withWorker(bindings) {
  const ctx = {};
  before(async () => {
    Object.assign(ctx, await startWorker({ bindings: bindings() }));
  });
  after(async () => {
    await ctx.stop?.();
  });
  return ctx;
}

function chat(worker, { auth, body = CHAT_BODY, headers = {}, path = '/v1/chat/completions' } = {}) {
  return request(worker.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}), ...headers },
    body,
  });
}

function assertOpenAIError(res, status, code) {
  assert.equal(res.status, status, res.body);
  assert.match(res.headers['content-type'], /^application\/json/);
  const { error } = res.json();
  assert.equal(error.code, code);
  assert.equal(error.param, null);
  assert.equal(typeof error.message, 'string');
  assert.equal(typeof error.type, 'string');
  return error;
}

// assertStreamed checks an SSE answer from the fake (text: its decoded body)
// and that it came through incrementally.
function assertStreamed(res, text) {
  assert.equal(res.status, 200, res.body);
  assert.match(res.headers['content-type'], /^text\/event-stream/);
  assertFromWorker(res);

  const events = text.split('\n\n').filter((e) => e !== '');
  assert.equal(events.at(-1), 'data: [DONE]');
  const words = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)).choices[0].delta.content);
  assert.deepEqual(words, STREAM_WORDS);

  // The fake spaces its events STREAM_GAP_MS apart. Buffered, the whole body
  // would arrive at once; streamed, the first chunk arrives long before the
  // last. Generous margin: half the fake's own spread.
  const spread = res.chunks.at(-1).at - res.chunks[0].at;
  const fakeSpread = STREAM_GAP_MS * STREAM_WORDS.length;
  assert.ok(res.chunks.length >= 3, `body came in ${res.chunks.length} chunk(s)`);
  assert.ok(spread >= fakeSpread / 2, `first and last chunks only ${spread.toFixed(0)} ms apart`);
}

function assertFromWorker(res) {
  assert.equal(res.headers['x-proxy'], 'chatbot-worker');
}

function assertNoSecrets(res) {
  const all = res.body + JSON.stringify(res.headers);
  for (const secret of [REAL_KEY, PROXY_TOKEN]) {
    assert.ok(!all.includes(secret), `response leaks ${secret}`);
  }
}

// assertOnlyForwarded checks the headers upstream saw: the forwarded ones
// with their values, those fetch() sets, nothing else, and no trace of the
// caller's address, page, cookie or language in any value.
function assertOnlyForwarded(seen, forwarded) {
  for (const [name, value] of Object.entries(forwarded)) {
    assert.equal(seen[name], value, name);
  }
  const extra = Object.keys(seen).filter((name) => !(name in forwarded) && !SET_BY_FETCH.includes(name));
  assert.deepEqual(extra, [], `upstream saw ${extra.map((name) => `${name}: ${seen[name]}`).join('; ')}`);
  const values = JSON.stringify(seen);
  for (const value of ['203.0.113.7', '2001:db8::7', 'app.example.com', 'session=abc123', 'zh-CN']) {
    assert.ok(!values.includes(value), `upstream saw ${value} in ${values}`);
  }
}

// assertUnsafePathsRefused sends paths with encoded slashes, backslashes and
// dot segments (with credentials that would otherwise pass) and expects 400
// for each, and nothing forwarded.
async function assertUnsafePathsRefused(worker, auth) {
  for (const [method, rawPath] of [
    ['GET', '/v1/models%2Fgpt-test'],
    ['GET', '/v1/models%2fgpt-test'],
    ['POST', '/v1/chat%2Fcompletions'],
    ['GET', '/v1/models%5Cgpt-test'],
    ['GET', '/v1/models\\gpt-test'],
    ['GET', '/v1/../admin'],
    ['GET', '/v1/models/..'],
    ['GET', '/v1/models/../../admin?x=1'],
    ['GET', '/v1/%2e%2e/admin'],
    ['GET', '/v1/%2E./admin'],
    ['GET', '/v1/.%2e/models'],
    ['GET', '/v1/./models'],
    ['GET', '/v1/%2e/models'],
    ['POST', '/v1/responses/..%2F..%2Fadmin'],
  ]) {
    const res = await request(worker.url, { method, rawPath, headers: { authorization: auth }, body: method === 'POST' ? CHAT_BODY : undefined });
    const error = assertOpenAIError(res, 400, 'invalid_path');
    assert.equal(error.type, 'invalid_request_error', rawPath);
    assertFromWorker(res);
  }
  assert.deepEqual(fake.requests, []);

  // Dots inside a segment and slashes in the query are fine.
  const ok = await request(worker.url, { rawPath: '/v1/models?after=a%2Fb/../c', headers: { authorization: auth } });
  assert.equal(ok.status, 200, ok.body);
  const dotted = await request(worker.url, { rawPath: '/v1/models/gpt-test...', headers: { authorization: auth } });
  assertOpenAIError(dotted, 404, 'model_not_found');
  assert.deepEqual(fake.requests.map((r) => r.path), ['/v1/models?after=a%2Fb/../c', '/v1/models/gpt-test...']);
}

// parseEvents splits a server-sent event body into {event, data} records.
function parseEvents(text) {
  return text.split('\n\n').filter((block) => block !== '').map((block) => {
    const fields = {};
    for (const line of block.split('\n')) {
      const colon = line.indexOf(': ');
      fields[line.slice(0, colon)] = line.slice(colon + 2);
    }
    return fields;
  });
}

// arrivedAt is when (performance.now()) the first event of type had wholly
// reached the client.
function arrivedAt(res, type) {
  const start = res.body.indexOf(`event: ${type}\n`);
  assert.ok(start >= 0, `no ${type} event`);
  const end = res.body.indexOf('\n\n', start) + 2;
  let length = 0;
  for (const chunk of res.chunks) {
    length += chunk.text.length;
    if (length >= end) {
      return res.started + chunk.at;
    }
  }
  return assert.fail(`${type} event incomplete`);
}

// assertResponseStream checks a streamed Responses API answer from the fake
// (seen: the fake's record of the request): the events as the fake wrote
// them, and each delivered while the fake was still writing the rest.
function assertResponseStream(res, seen) {
  assert.equal(res.status, 200, res.body);
  assert.match(res.headers['content-type'], /^text\/event-stream/);
  assert.equal(res.headers['x-request-id'], 'req_response_stream');
  assertFromWorker(res);

  const want = responseEvents();
  const events = parseEvents(res.body);
  assert.deepEqual(events.map((e) => e.event), want.map((e) => e.type));
  assert.deepEqual(events.map((e) => JSON.parse(e.data)), want);
  assert.ok(!res.body.includes('[DONE]'), 'the Responses API sends no [DONE]');
  const done = JSON.parse(events.at(-1).data).response;
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.usage, { input_tokens: 5, output_tokens: 5, total_tokens: 10 });
  const deltas = events.filter((e) => e.event === 'response.output_text.delta');
  assert.equal(deltas.map((e) => JSON.parse(e.data).delta).join(''), STREAM_WORDS.join(''));

  // The fake writes its events RESPONSE_GAP_MS apart. Buffered, nothing
  // would arrive before it finished; streamed, each event arrives about as
  // long before the end as the fake takes to write the events after it.
  // Generous margin: half of that.
  assert.notEqual(seen.finishedAt, null, 'the fake has not finished');
  for (const type of ['response.created', 'response.output_text.delta']) {
    const after = want.length - 1 - want.findIndex((e) => e.type === type);
    const lead = seen.finishedAt - arrivedAt(res, type);
    assert.ok(lead >= (after * RESPONSE_GAP_MS) / 2,
      `${type} arrived only ${lead.toFixed(0)} ms before upstream finished writing ${after} more events`);
  }
}

describe('pass-through mode', TIMEOUT, () => {
  // A trailing slash on UPSTREAM must not double the path's slash.
  const worker = withWorker(() => ({ UPSTREAM: `${fake.url}/` }));

  test('forwards a chat completion: method, path, query, body', async () => {
    const res = await chat(worker, { auth: `Bearer ${CALLER_KEY}`, path: '/v1/chat/completions?trace=1&x=a%20b' });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), completion());
    assertFromWorker(res);
    assert.equal(res.headers['x-request-id'], 'req_200');

    assert.equal(fake.requests.length, 1);
    const seen = fake.requests[0];
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/v1/chat/completions?trace=1&x=a%20b');
    assert.equal(seen.body, CHAT_BODY);
    assert.equal(seen.headers.authorization, `Bearer ${CALLER_KEY}`);
    assert.equal(seen.headers.host, fake.host);
  });

  test('forwards other methods and /v1 itself', async () => {
    const auth = { authorization: `Bearer ${CALLER_KEY}` };
    const models = await request(`${worker.url}/v1/models?limit=2`, { headers: auth });
    assert.equal(models.status, 200, models.body);
    assert.equal(models.json().data[0].id, 'gpt-test');

    const del = await request(`${worker.url}/v1/files/file-abc`, { method: 'DELETE', headers: auth });
    const bare = await request(`${worker.url}/v1`, { headers: auth });
    // The fake answers both with OpenAI's own 404, passed through.
    assert.equal(del.status, 404);
    assert.equal(bare.status, 404);
    assert.equal(bare.json().error.message, 'Invalid URL (GET /v1)');
    assertFromWorker(bare);

    assert.deepEqual(fake.requests.map((r) => `${r.method} ${r.path}`),
      ['GET /v1/models?limit=2', 'DELETE /v1/files/file-abc', 'GET /v1']);
  });

  test('streams SSE chunk by chunk', async () => {
    const res = await chat(worker, { auth: `Bearer ${CALLER_KEY}`, body: STREAM_BODY });
    assertStreamed(res, res.body);
  });

  test('streams gzip-compressed SSE chunk by chunk', async () => {
    const res = await chat(worker, { auth: `Bearer ${CALLER_KEY}`, body: STREAM_BODY, headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(fake.requests[0].headers['accept-encoding'], 'gzip');
    assertStreamed(res, zlib.gunzipSync(res.raw).toString('utf8'));
  });

  test('answers 404 in OpenAI shape outside /v1 and forwards nothing', async () => {
    for (const [method, rawPath] of [
      ['GET', '/'],
      ['GET', '/favicon.ico'],
      ['POST', '/v2/chat/completions'],
      ['GET', '/v1beta/models'],
      ['GET', '/V1/models'],
      ['GET', '/chat/completions?x=/v1/'],
    ]) {
      const res = await request(worker.url, { method, rawPath, headers: { authorization: `Bearer ${CALLER_KEY}` } });
      const error = assertOpenAIError(res, 404, 'not_found');
      assert.equal(error.type, 'invalid_request_error', rawPath);
      assertFromWorker(res);
    }
    assert.deepEqual(fake.requests, []);
  });

  test('forwards only allowlisted headers: no client IP under any name', async () => {
    const auth = `Bearer ${CALLER_KEY}`;
    const res = await chat(worker, { auth, headers: { ...CLIENT_IP, ...OTHER_DROPPED, ...KEPT, ...ACCOUNT } });
    assert.equal(res.status, 200, res.body);
    const seen = fake.requests[0].headers;
    assertOnlyForwarded(seen, { ...KEPT, ...ACCOUNT, authorization: auth });
    assert.equal(seen.host, fake.host);
  });

  test('refuses methods other than GET, POST and DELETE with 405', async () => {
    const auth = { authorization: `Bearer ${CALLER_KEY}` };
    for (const method of ['PUT', 'PATCH', 'TRACE', 'OPTIONS', 'PROPFIND']) {
      const res = await request(`${worker.url}/v1/chat/completions`, { method, headers: auth });
      const error = assertOpenAIError(res, 405, 'method_not_allowed');
      assert.match(error.message, new RegExp(`\\b${method}\\b`));
      assert.equal(res.headers.allow, 'GET, POST, DELETE');
      assertFromWorker(res);
    }
    const head = await request(`${worker.url}/v1/models`, { method: 'HEAD', headers: auth });
    assert.equal(head.status, 405);
    assert.equal(head.headers.allow, 'GET, POST, DELETE');
    assert.deepEqual(fake.requests, []);
  });

  test('refuses encoded slashes and dot segments with 400', async () => {
    await assertUnsafePathsRefused(worker, `Bearer ${CALLER_KEY}`);
  });

  test('streams /v1/responses events as they come, before upstream finishes', async () => {
    const res = await chat(worker, { auth: `Bearer ${CALLER_KEY}`, path: '/v1/responses', body: RESPONSES_BODY,
      headers: { accept: 'text/event-stream' } });
    assertResponseStream(res, fake.requests[0]);
    assert.equal(fake.requests[0].headers.accept, 'text/event-stream');
  });

  test('passes the /v1/responses body through untouched (store: false)', async () => {
    const res = await chat(worker, { auth: `Bearer ${CALLER_KEY}`, path: '/v1/responses', body: RESPONSES_BODY });
    assert.equal(res.status, 200);
    const seen = fake.requests[0];
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/v1/responses');
    assert.equal(seen.body, RESPONSES_BODY);
    assert.equal(JSON.parse(seen.body).store, false);
    assert.equal(seen.headers['content-type'], 'application/json');

    const plain = JSON.stringify({ ...JSON.parse(RESPONSES_BODY), stream: false });
    const whole = await chat(worker, { auth: `Bearer ${CALLER_KEY}`, path: '/v1/responses', body: plain });
    assert.equal(whole.status, 200, whole.body);
    assert.deepEqual(whole.json(), response('completed'));
    assert.equal(fake.requests[1].body, plain);
  });

  test('passes /v1/responses errors through with their headers', async () => {
    const limited = await chat(worker, {
      auth: `Bearer ${CALLER_KEY}`,
      path: '/v1/responses',
      body: JSON.stringify({ model: 'rate-limited', input: 'hi', stream: true, store: false }),
    });
    assertOpenAIError(limited, 429, 'rate_limit_exceeded');
    assert.equal(limited.headers['retry-after'], '7');
    assert.equal(limited.headers['x-request-id'], 'req_429');
    assertFromWorker(limited);
  });

  test('passes upstream errors through unchanged', async () => {
    const limited = await chat(worker, {
      auth: `Bearer ${CALLER_KEY}`,
      body: JSON.stringify({ model: 'rate-limited', messages: [] }),
    });
    const error = assertOpenAIError(limited, 429, 'rate_limit_exceeded');
    assert.equal(error.message, 'Rate limit reached for requests. Please try again in 7s.');
    assert.equal(limited.headers['retry-after'], '7');
    assert.equal(limited.headers['x-ratelimit-remaining-requests'], '0');
    assertFromWorker(limited);

    const denied = await chat(worker, { auth: 'Bearer sk-wrong-key-000' });
    assertOpenAIError(denied, 401, 'invalid_api_key');
    assert.equal(denied.json().error.type, 'invalid_request_error');
    assert.equal(fake.requests.at(-1).headers.authorization, 'Bearer sk-wrong-key-000');

    const anonymous = await chat(worker, {});
    assertOpenAIError(anonymous, 401, null);
    assert.equal(fake.requests.at(-1).headers.authorization, undefined);
  });

  test('CORS: any origin by default, echoed, with Vary', async () => {
    const pre = await request(`${worker.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-stainless-os',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET, POST, DELETE, OPTIONS');
    const allowed = pre.headers['access-control-allow-headers'].split(/,\s*/);
    for (const name of ['authorization', 'content-type', 'openai-organization', 'openai-project',
      'openai-beta', 'x-stainless-os']) {
      assert.ok(allowed.includes(name), `${name} not in ${allowed}`);
    }
    assert.ok(Number(pre.headers['access-control-max-age']) > 0);
    assert.match(pre.headers.vary, /\bOrigin\b/);
    assertFromWorker(pre);

    const real = await chat(worker, { auth: `Bearer ${CALLER_KEY}`, headers: { origin: 'https://other.example' } });
    assert.equal(real.status, 200);
    assert.equal(real.headers['access-control-allow-origin'], 'https://other.example');
    assert.match(real.headers.vary, /\bOrigin\b/);
    assert.equal(fake.requests.length, 1, 'the preflight must not be forwarded');
  });
});

describe('key-in-Worker mode', TIMEOUT, () => {
  const worker = withWorker(() => ({ UPSTREAM: fake.url, PROXY_TOKEN, OPENAI_API_KEY: REAL_KEY }));

  test('refuses a missing or wrong proxy token with invalid_proxy_token', async () => {
    for (const auth of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Bearer wrong',
      `Bearer ${PROXY_TOKEN.slice(0, -1)}`,
      `Bearer ${PROXY_TOKEN}0`,
      `Bearer ${REAL_KEY}`,
      PROXY_TOKEN,
      `Basic ${PROXY_TOKEN}`,
    ]) {
      const res = await chat(worker, { headers: auth === undefined ? {} : { authorization: auth } });
      const error = assertOpenAIError(res, 401, 'invalid_proxy_token');
      assert.equal(error.type, 'invalid_request_error');
      assert.match(error.message, /proxy token/i);
      assertFromWorker(res);
      assertNoSecrets(res);
    }
    assert.deepEqual(fake.requests, []);
  });

  test('sends the real key upstream, never the proxy token', async () => {
    for (const auth of [`Bearer ${PROXY_TOKEN}`, `bearer ${PROXY_TOKEN}`]) {
      const res = await chat(worker, { auth, headers: KEPT });
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(res.json(), completion());
      assertFromWorker(res);
      assertNoSecrets(res);
    }
    assert.equal(fake.requests.length, 2);
    for (const seen of fake.requests) {
      assert.equal(seen.headers.authorization, `Bearer ${REAL_KEY}`);
      assert.ok(!JSON.stringify(seen).includes(PROXY_TOKEN), 'upstream saw the proxy token');
    }
  });

  test('drops OpenAI-Organization, OpenAI-Project and client IPs', async () => {
    const res = await chat(worker, {
      auth: `Bearer ${PROXY_TOKEN}`,
      headers: { ...CLIENT_IP, ...OTHER_DROPPED, ...KEPT, ...ACCOUNT },
    });
    assert.equal(res.status, 200, res.body);
    const seen = fake.requests[0].headers;
    assert.equal(seen['openai-organization'], undefined, 'a caller chose the organization of the owner\'s key');
    assert.equal(seen['openai-project'], undefined, 'a caller chose the project of the owner\'s key');
    assertOnlyForwarded(seen, { ...KEPT, authorization: `Bearer ${REAL_KEY}` });
  });

  test('forwards the calls chatbot makes, a multipart upload byte for byte', async () => {
    const auth = { authorization: `Bearer ${PROXY_TOKEN}` };
    const json = { ...auth, 'content-type': 'application/json' };
    const boundary = '----chatbot-test-7MA4YWxkTrZu0gW';
    const multipart = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="voice.ogg"\r\n` +
        'Content-Type: audio/ogg\r\n\r\n'),
      Buffer.from([0x4f, 0x67, 0x67, 0x53, 0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a]),
      Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n` +
        `gpt-transcribe\r\n--${boundary}--\r\n`),
    ]);
    const calls = [
      ['POST', '/v1/responses', json, JSON.stringify({ model: 'gpt-test', input: 'hi', store: false })],
      ['POST', '/v1/chat/completions', json, CHAT_BODY],
      ['POST', '/v1/audio/transcriptions', { ...auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, multipart],
      ['POST', '/v1/images/generations', json, JSON.stringify({ model: 'gpt-image-2', prompt: 'a cat' })],
      ['GET', '/v1/models', auth],
      ['GET', '/v1/models/gpt-test', auth],
    ];
    for (const [method, path, headers, body] of calls) {
      const res = await request(worker.url + path, { method, headers, body });
      assert.equal(res.status, 200, `${method} ${path}: ${res.body}`);
      assertFromWorker(res);
    }
    // An upstream error on an allowed path passes through.
    const missing = await request(`${worker.url}/v1/models/ft:gpt-test:org:custom:abc123`, { headers: auth });
    assertOpenAIError(missing, 404, 'model_not_found');

    assert.deepEqual(fake.requests.map((r) => `${r.method} ${r.path}`),
      [...calls.map(([method, path]) => `${method} ${path}`), 'GET /v1/models/ft:gpt-test:org:custom:abc123']);
    const upload = fake.requests[2];
    assert.equal(upload.headers['content-type'], `multipart/form-data; boundary=${boundary}`);
    assert.ok(upload.raw.equals(multipart), 'the multipart body changed on the way');
    assert.equal(upload.headers['content-length'], String(multipart.length));
  });

  test('refuses paths chatbot does not use with 403, after the token', async () => {
    const auth = { authorization: `Bearer ${PROXY_TOKEN}` };
    for (const [method, path] of [
      ['GET', '/v1'],
      ['GET', '/v1/'],
      ['GET', '/v1/files'],
      ['POST', '/v1/files'],
      ['POST', '/v1/embeddings'],
      ['POST', '/v1/completions'],
      ['POST', '/v1/fine_tuning/jobs'],
      ['GET', '/v1/organization/costs'],
      ['GET', '/v1/responses/resp_1'],
      ['POST', '/v1/responses/resp_1/cancel'],
      ['POST', '/v1/responses/'],
      ['POST', '/v1/chat/completions/x'],
      ['POST', '/v1/audio/speech'],
      ['POST', '/v1/images/edits'],
      ['GET', '/v1/models/'],
      ['GET', '/v1/models/a/b'],
      ['GET', '/v1//models'],
    ]) {
      const res = await request(worker.url + path, { method, headers: auth, body: method === 'POST' ? CHAT_BODY : undefined });
      const error = assertOpenAIError(res, 403, 'path_not_allowed');
      assert.equal(error.type, 'invalid_request_error');
      assert.ok(error.message.includes(`${method} ${path}`), error.message);
      assertFromWorker(res);

      // Without the token the answer is the 401, so the route list stays private.
      const anonymous = await request(worker.url + path, { method });
      assertOpenAIError(anonymous, 401, 'invalid_proxy_token');
    }
    assert.deepEqual(fake.requests, []);
  });

  test('refuses other methods with 405 and Allow', async () => {
    const auth = { authorization: `Bearer ${PROXY_TOKEN}` };
    for (const [method, path, allow] of [
      ['DELETE', '/v1/models/ft:gpt-test:org:custom:abc123', 'GET, POST'],
      ['PUT', '/v1/chat/completions', 'GET, POST'],
      ['PATCH', '/v1/responses', 'GET, POST'],
      ['TRACE', '/v1/models', 'GET, POST'],
      ['OPTIONS', '/v1/models', 'GET, POST'],
      ['GET', '/v1/chat/completions', 'POST'],
      ['GET', '/v1/responses', 'POST'],
      ['POST', '/v1/models', 'GET'],
      ['POST', '/v1/models/gpt-test', 'GET'],
    ]) {
      const res = await request(worker.url + path, { method, headers: auth });
      assertOpenAIError(res, 405, 'method_not_allowed');
      assert.equal(res.headers.allow, allow, `${method} ${path}`);
      assertFromWorker(res);
      assertNoSecrets(res);
    }
    assert.deepEqual(fake.requests, []);
  });

  test('refuses encoded slashes and dot segments with 400', async () => {
    await assertUnsafePathsRefused(worker, `Bearer ${PROXY_TOKEN}`);
  });

  test('streams /v1/responses events as they come', async () => {
    const res = await chat(worker, { auth: `Bearer ${PROXY_TOKEN}`, path: '/v1/responses', body: RESPONSES_BODY });
    assertResponseStream(res, fake.requests[0]);
    assert.equal(fake.requests[0].body, RESPONSES_BODY);
    assert.equal(fake.requests[0].headers.authorization, `Bearer ${REAL_KEY}`);
  });

  test('streams in this mode too', async () => {
    const res = await chat(worker, { auth: `Bearer ${PROXY_TOKEN}`, body: STREAM_BODY });
    assertStreamed(res, res.body);
  });

  test('CORS is off by default', async () => {
    const pre = await request(`${worker.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    assert.equal(pre.headers['access-control-allow-methods'], undefined);
    assertFromWorker(pre);

    const real = await chat(worker, { auth: `Bearer ${PROXY_TOKEN}`, headers: { origin: 'https://app.example.com' } });
    assert.equal(real.status, 200);
    assert.equal(real.headers['access-control-allow-origin'], undefined);
  });
});

describe('key-in-Worker mode with ALLOWED_ORIGINS', TIMEOUT, () => {
  const worker = withWorker(() => ({
    UPSTREAM: fake.url,
    PROXY_TOKEN,
    OPENAI_API_KEY: REAL_KEY,
    ALLOWED_ORIGINS: 'https://a.example, https://b.example/',
  }));

  const preflight = (origin) => request(`${worker.url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
  });

  test('echoes allowed origins only', async () => {
    for (const origin of ['https://a.example', 'https://b.example']) {
      const res = await preflight(origin);
      assert.equal(res.status, 204);
      assert.equal(res.headers['access-control-allow-origin'], origin);
      assert.match(res.headers['access-control-allow-headers'], /\bauthorization\b/);
    }
    for (const origin of ['https://evil.example', 'http://a.example', 'https://a.example.evil.test']) {
      const res = await preflight(origin);
      assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
      assert.equal(res.headers['access-control-allow-headers'], undefined, origin);
      assert.match(res.headers.vary, /\bOrigin\b/);
    }
    const real = await chat(worker, { auth: `Bearer ${PROXY_TOKEN}`, headers: { origin: 'https://a.example' } });
    assert.equal(real.status, 200);
    assert.equal(real.headers['access-control-allow-origin'], 'https://a.example');
    const denied = await chat(worker, { headers: { origin: 'https://a.example' } });
    assertOpenAIError(denied, 401, 'invalid_proxy_token');
    assert.equal(denied.headers['access-control-allow-origin'], 'https://a.example',
      'a browser must be able to read the 401');
  });
});

describe('misconfiguration', TIMEOUT, () => {
  const onlyToken = withWorker(() => ({ UPSTREAM: fake.url, PROXY_TOKEN }));
  const onlyKey = withWorker(() => ({ UPSTREAM: fake.url, OPENAI_API_KEY: REAL_KEY }));
  const badUpstream = withWorker(() => ({ UPSTREAM: 'ftp://files.example' }));

  test('one secret without the other: 500 naming the missing one, nothing forwarded', async () => {
    for (const [worker, missing] of [[onlyToken, 'OPENAI_API_KEY'], [onlyKey, 'PROXY_TOKEN']]) {
      for (const auth of [`Bearer ${PROXY_TOKEN}`, `Bearer ${CALLER_KEY}`, undefined]) {
        const res = await chat(worker, { auth });
        const error = assertOpenAIError(res, 500, 'proxy_misconfigured');
        assert.match(error.message, new RegExp(`${missing} is not`));
        assertFromWorker(res);
        assertNoSecrets(res);
      }
    }
    assert.deepEqual(fake.requests, []);
  });

  test('a bad UPSTREAM: 500', async () => {
    const res = await chat(badUpstream, { auth: `Bearer ${CALLER_KEY}` });
    assert.match(assertOpenAIError(res, 500, 'proxy_misconfigured').message, /UPSTREAM/);
  });
});

describe('upstream without the Responses API', TIMEOUT, () => {
  let chatOnly;
  // Registered before withWorker's hooks, so it runs first.
  before(async () => {
    chatOnly = await startFakeOpenAI({ validKeys: [REAL_KEY], responses: false });
  });
  after(async () => {
    await chatOnly?.close();
  });
  const worker = withWorker(() => ({ UPSTREAM: chatOnly.url, PROXY_TOKEN, OPENAI_API_KEY: REAL_KEY }));

  test('passes its 404 on /v1/responses through as it is', async () => {
    // chatbot's openai.api "auto" falls back to Chat Completions on this 404.
    const res = await chat(worker, { auth: `Bearer ${PROXY_TOKEN}`, path: '/v1/responses', body: RESPONSES_BODY });
    assert.equal(res.status, 404);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.headers['x-request-id'], 'req_no_responses');
    assert.equal(res.body, '404 page not found\n');
    assertFromWorker(res);
    assert.deepEqual(chatOnly.requests.map((r) => `${r.method} ${r.path}`), ['POST /v1/responses']);

    const fallback = await chat(worker, { auth: `Bearer ${PROXY_TOKEN}`, body: STREAM_BODY });
    assertStreamed(fallback, fallback.body);
  });
});

describe('upstream', TIMEOUT, () => {
  let closedPort;
  // Registered before withWorker's hooks, so it runs first.
  before(async () => {
    // A port that was free a moment ago: connecting to it is refused.
    const server = net.createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    closedPort = server.address().port;
    await new Promise((resolve) => server.close(resolve));
  });
  const prefixed = withWorker(() => ({ UPSTREAM: `${fake.url}/openai/` }));
  const unreachable = withWorker(() => ({ UPSTREAM: `http://127.0.0.1:${closedPort}` }));

  test('keeps a path prefix in UPSTREAM', async () => {
    const res = await request(`${prefixed.url}/v1/models?limit=1`, { headers: { authorization: `Bearer ${CALLER_KEY}` } });
    assert.equal(res.status, 200, res.body);
    assert.equal(fake.requests[0].path, '/openai/v1/models?limit=1');
  });

  test('unreachable: 502 upstream_unreachable', async () => {
    const res = await chat(unreachable, { auth: `Bearer ${CALLER_KEY}` });
    const error = assertOpenAIError(res, 502, 'upstream_unreachable');
    assert.equal(error.type, 'server_error');
    assertFromWorker(res);
  });
});

describe('serve.mjs', TIMEOUT, () => {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'serve.mjs');

  // Starts serve.mjs and resolves with the child and its URL.
  function serve() {
    const child = spawn(process.execPath, [script], {
      env: { PATH: process.env.PATH, UPSTREAM: fake.url, PROXY_TOKEN, OPENAI_API_KEY: REAL_KEY },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const url = new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`serve.mjs did not start: ${err}`)), 15000);
      child.stderr.on('data', (chunk) => { err += chunk; });
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      exited.then((code) => reject(new Error(`serve.mjs exited (${code}): ${err}`)));
    });
    return { child, exited, url };
  }

  async function refusedWithin(url, ms) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      try {
        await request(`${url}/v1/models`, { timeoutMs: 1000 });
      } catch (err) {
        if (err.code === 'ECONNREFUSED') {
          return true;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  }

  test('serves the Worker and stops when stdin closes', async () => {
    const { child, exited, url } = serve();
    const base = await url;
    const res = await request(`${base}/v1/models`, { headers: { authorization: `Bearer ${PROXY_TOKEN}` } });
    assert.equal(res.status, 200, res.body);
    assert.equal(fake.requests[0].headers.authorization, `Bearer ${REAL_KEY}`);

    child.stdin.end();
    assert.equal(await Promise.race([exited, timeout(5000)]), 0);
    assert.ok(await refusedWithin(base, 5000), 'workerd still listening');
  });

  test('takes workerd down with it even on SIGKILL', async () => {
    const { child, exited, url } = serve();
    const base = await url;
    child.kill('SIGKILL');
    await Promise.race([exited, timeout(5000)]);
    assert.ok(await refusedWithin(base, 5000), 'workerd outlived serve.mjs');
  });
});

function timeout(ms) {
  return new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref();
  });
}

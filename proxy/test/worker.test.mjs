// Tests worker.js in workerd (the real Workers runtime) against a fake
// OpenAI API, all on 127.0.0.1. Run with `npm test`.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { STREAM_GAP_MS, STREAM_WORDS, completion, startFakeOpenAI } from './fake-openai.mjs';
import { request } from './http.mjs';
import { startWorker } from './workerd.mjs';

const CALLER_KEY = 'sk-caller-key-0123456789';
const REAL_KEY = 'sk-real-key-in-worker-9876543210';
const PROXY_TOKEN = 'pt-proxy-token-abcdef0123456789';

// Per suite, hooks included; generous because workerd starts slowly on a busy machine.
const TIMEOUT = { timeout: 45000 };

// Headers that tell who and where the caller is; none may reach OpenAI.
const IDENTIFYING = {
  'cf-connecting-ip': '203.0.113.7',
  'cf-connecting-ipv6': '2001:db8::7',
  'x-forwarded-for': '203.0.113.7, 198.51.100.1',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'ai-proxy.example.com',
  'x-forwarded-port': '443',
  'x-real-ip': '203.0.113.7',
  'true-client-ip': '203.0.113.7',
  'cf-ipcountry': 'CN',
  'cf-ray': '8a1b2c3d4e5f6789-HKG',
  'cf-visitor': '{"scheme":"https"}',
  'cf-worker': 'example.com',
  'cf-ew-via': '15',
  'cf-access-client-id': 'someone',
  'cdn-loop': 'cloudflare',
  forwarded: 'for=203.0.113.7;proto=https',
  via: '1.1 some-proxy',
  'x-client-ip': '203.0.113.7',
  'x-cluster-client-ip': '203.0.113.7',
  origin: 'https://app.example.com',
  referer: 'https://app.example.com/chat?user=42',
  cookie: 'session=abc123',
};

// Headers the API relies on; they must reach it unchanged.
const KEPT = {
  'content-type': 'application/json',
  'openai-organization': 'org-test',
  'openai-project': 'proj_test',
  'openai-beta': 'assistants=v2',
  'user-agent': 'chatbot-test/1.0',
  'x-stainless-lang': 'go',
};

const CHAT_BODY = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
const STREAM_BODY = JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] });

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
      ['GET', '/v1/../admin'],
      ['GET', '/v1/%2e%2e/admin'],
      ['GET', '/chat/completions?x=/v1/'],
    ]) {
      const res = await request(worker.url, { method, rawPath, headers: { authorization: `Bearer ${CALLER_KEY}` } });
      const error = assertOpenAIError(res, 404, 'not_found');
      assert.equal(error.type, 'invalid_request_error', rawPath);
      assertFromWorker(res);
    }
    assert.deepEqual(fake.requests, []);
  });

  test('strips identifying headers and keeps the others', async () => {
    const res = await chat(worker, { auth: `Bearer ${CALLER_KEY}`, headers: { ...IDENTIFYING, ...KEPT } });
    assert.equal(res.status, 200, res.body);
    const seen = fake.requests[0].headers;
    for (const name of Object.keys(IDENTIFYING)) {
      assert.equal(seen[name], undefined, `upstream saw ${name}: ${seen[name]}`);
    }
    const values = JSON.stringify(seen);
    for (const value of ['203.0.113.7', 'app.example.com', 'session=abc123']) {
      assert.ok(!values.includes(value), `upstream saw ${value} in ${values}`);
    }
    for (const [name, value] of Object.entries(KEPT)) {
      assert.equal(seen[name], value, name);
    }
    assert.equal(seen.host, fake.host);
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
    assert.match(pre.headers['access-control-allow-methods'], /\bPOST\b/);
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
      assert.equal(seen.headers['openai-organization'], 'org-test');
    }
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

// A tiny fake of the OpenAI API on 127.0.0.1 for the Worker tests. It records
// every request it gets (method, path with query, headers, body) and answers
// like the real API for the few cases the tests need:
//   - a missing or unknown API key: 401 with OpenAI's error JSON;
//   - POST .../v1/chat/completions: a JSON completion, or, with "stream":
//     true, an SSE stream of STREAM_WORDS one chunk every STREAM_GAP_MS ms
//     (gzip-compressed if the client accepts gzip);
//     model "rate-limited" gets a 429 with Retry-After;
//   - GET .../v1/models: a model list; anything else: OpenAI's 404.

import http from 'node:http';
import zlib from 'node:zlib';

export const STREAM_WORDS = ['Hello', ' from', ' the', ' fake', ' model'];
export const STREAM_GAP_MS = 150;

const MODEL = 'gpt-test';

/**
 * Starts the fake on a free loopback port.
 * @param {{validKeys: string[]}} opts API keys it accepts.
 */
export async function startFakeOpenAI({ validKeys }) {
  const requests = [];
  const timers = new Set();

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method, path: req.url, headers: { ...req.headers }, body });
      handle(req, res, body);
    });
  });

  function handle(req, res, body) {
    const auth = req.headers.authorization || '';
    const key = auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : '';
    if (!validKeys.includes(key)) {
      const shown = key ? `${key.slice(0, 3)}***${key.slice(-2)}` : '';
      return sendError(res, 401, key
        ? `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`
        : "You didn't provide an API key.", 'invalid_request_error', key ? 'invalid_api_key' : null);
    }

    const pathname = new URL(req.url, 'http://fake').pathname;
    if (req.method === 'GET' && pathname.endsWith('/v1/models')) {
      return sendJSON(res, 200, {
        object: 'list',
        data: [{ id: MODEL, object: 'model', created: 1700000000, owned_by: 'system' }],
      });
    }
    if (req.method === 'POST' && pathname.endsWith('/v1/chat/completions')) {
      let params;
      try {
        params = JSON.parse(body);
      } catch {
        return sendError(res, 400, 'We could not parse the JSON body of your request.',
          'invalid_request_error', null);
      }
      if (params.model === 'rate-limited') {
        res.setHeader('retry-after', '7');
        res.setHeader('x-ratelimit-remaining-requests', '0');
        return sendError(res, 429, 'Rate limit reached for requests. Please try again in 7s.',
          'requests', 'rate_limit_exceeded');
      }
      return params.stream ? streamCompletion(req, res) : sendJSON(res, 200, completion());
    }
    return sendError(res, 404, `Invalid URL (${req.method} ${pathname})`, 'invalid_request_error', null);
  }

  // Like the real API behind Cloudflare, it compresses when the client
  // accepts gzip, flushing the compressor after every event.
  function streamCompletion(req, res) {
    const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] || '');
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-request-id': 'req_stream',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.flushHeaders();
    let out = res;
    if (gzip) {
      out = zlib.createGzip();
      out.pipe(res);
    }
    let i = 0;
    const next = () => {
      if (i < STREAM_WORDS.length) {
        out.write(`data: ${JSON.stringify(chunk(STREAM_WORDS[i]))}\n\n`);
        if (gzip) {
          out.flush();
        }
        i++;
        const timer = setTimeout(() => {
          timers.delete(timer);
          next();
        }, STREAM_GAP_MS);
        timers.add(timer);
      } else {
        out.end('data: [DONE]\n\n');
      }
    };
    next();
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    /** Requests received so far, oldest first. */
    requests,
    reset() {
      requests.length = 0;
    },
    async close() {
      for (const timer of timers) {
        clearTimeout(timer);
      }
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Body the fake answers to a non-streaming chat completion. */
export function completion() {
  return {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: 1700000000,
    model: MODEL,
    choices: [{
      index: 0,
      message: { role: 'assistant', content: STREAM_WORDS.join('') },
      finish_reason: 'stop',
    }],
    usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
  };
}

function chunk(word) {
  return {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: MODEL,
    choices: [{ index: 0, delta: { content: word }, finish_reason: null }],
  };
}

function sendJSON(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': `req_${status}`,
  });
  res.end(body);
}

function sendError(res, status, message, type, code) {
  sendJSON(res, status, { error: { message, type, param: null, code } });
}

// A tiny fake of the OpenAI API on 127.0.0.1 for the Worker tests. It records
// every request it gets (method, path with query, headers, body as text and
// as raw bytes, and finishedAt: performance.now() when its answer was
// completely written) and
// answers like the real API for the few cases the tests need:
//   - a missing or unknown API key: 401 with OpenAI's error JSON;
//   - POST .../v1/chat/completions: a JSON completion, or, with "stream":
//     true, an SSE stream of STREAM_WORDS one chunk every STREAM_GAP_MS ms
//     (gzip-compressed if the client accepts gzip);
//   - POST .../v1/responses: a JSON response, or, with "stream": true, the
//     Responses API's SSE events (response.created ... response.completed,
//     no [DONE]) one every RESPONSE_GAP_MS ms; with {responses: false} it is
//     a server without that API and answers a plain-text 404 instead;
//   - on both, model "rate-limited" gets a 429 with Retry-After;
//   - POST .../v1/audio/transcriptions (multipart): a transcript;
//     POST .../v1/images/generations: one image;
//   - GET .../v1/models and .../v1/models/{id}: the model list, the model;
//     anything else: OpenAI's 404.

import http from 'node:http';
import zlib from 'node:zlib';

export const STREAM_WORDS = ['Hello', ' from', ' the', ' fake', ' model'];
export const STREAM_GAP_MS = 150;
export const RESPONSE_GAP_MS = 60;

const MODEL = 'gpt-test';

/**
 * Starts the fake on a free loopback port.
 * @param {{validKeys: string[], responses?: boolean}} opts validKeys: API keys
 *   it accepts; responses: false for a server without POST /v1/responses.
 */
export async function startFakeOpenAI({ validKeys, responses = true }) {
  const requests = [];
  const timers = new Set();

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = raw.toString('utf8');
      const seen = { method: req.method, path: req.url, headers: { ...req.headers }, body, raw, finishedAt: null };
      requests.push(seen);
      res.on('finish', () => {
        seen.finishedAt = performance.now();
      });
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
    // Without UPSTREAM's path prefix, if any.
    const path = pathname.replace(/^.*?\/v1\//, '/v1/');
    const route = `${req.method} ${path}`;
    const modelId = /^\/v1\/models\/([^/]+)$/.exec(path)?.[1];
    if (route === 'GET /v1/models') {
      return sendJSON(res, 200, { object: 'list', data: [model(MODEL)] });
    }
    if (req.method === 'GET' && modelId !== undefined) {
      const id = decodeURIComponent(modelId);
      return id === MODEL ? sendJSON(res, 200, model(id))
        : sendError(res, 404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found');
    }
    if (route === 'POST /v1/audio/transcriptions' && /^multipart\/form-data; boundary=/.test(req.headers['content-type'] || '')) {
      return sendJSON(res, 200, { text: STREAM_WORDS.join('') });
    }
    if (route === 'POST /v1/images/generations') {
      return sendJSON(res, 200, { created: 1700000000, data: [{ b64_json: 'iVBORw0KGgo=' }] });
    }
    if (route === 'POST /v1/responses' && !responses) {
      // Like a server that has only Chat Completions (a Go mux's 404).
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-request-id': 'req_no_responses' });
      return res.end('404 page not found\n');
    }
    if (route === 'POST /v1/chat/completions' || route === 'POST /v1/responses') {
      const params = parseParams(res, body);
      if (params === null) {
        return undefined;
      }
      const chat = route === 'POST /v1/chat/completions';
      if (!params.stream) {
        return sendJSON(res, 200, chat ? completion() : response('completed'));
      }
      return chat ? streamCompletion(req, res) : streamResponse(res);
    }
    return sendError(res, 404, `Invalid URL (${req.method} ${pathname})`, 'invalid_request_error', null);
  }

  // parseParams reads a JSON body; it answers 400 for one that is not JSON,
  // 429 for the model "rate-limited", and returns null then.
  function parseParams(res, body) {
    let params;
    try {
      params = JSON.parse(body);
    } catch {
      sendError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
      return null;
    }
    if (params.model === 'rate-limited') {
      res.setHeader('retry-after', '7');
      res.setHeader('x-ratelimit-remaining-requests', '0');
      sendError(res, 429, 'Rate limit reached for requests. Please try again in 7s.',
        'requests', 'rate_limit_exceeded');
      return null;
    }
    return params;
  }

  // streamResponse writes the Responses API's events RESPONSE_GAP_MS apart,
  // each as "event: TYPE" and "data: JSON" lines, and ends after
  // response.completed.
  function streamResponse(res) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-request-id': 'req_response_stream',
    });
    res.flushHeaders();
    const events = responseEvents();
    let i = 0;
    const next = () => {
      const event = events[i++];
      res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      if (i === events.length) {
        res.end();
        return;
      }
      later(next, RESPONSE_GAP_MS);
    };
    next();
  }

  function later(fn, ms) {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
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
        later(next, STREAM_GAP_MS);
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

/** The Responses API object: in_progress (no output yet) or completed. */
export function response(status) {
  const done = status === 'completed';
  return {
    id: 'resp_fake',
    object: 'response',
    created_at: 1700000000,
    status,
    model: MODEL,
    output: done ? [outputMessage('completed')] : [],
    usage: done ? { input_tokens: 5, output_tokens: STREAM_WORDS.length, total_tokens: 5 + STREAM_WORDS.length } : null,
    store: false,
  };
}

function outputMessage(status) {
  const text = status === 'completed' ? STREAM_WORDS.join('') : '';
  return {
    id: 'msg_1',
    type: 'message',
    status,
    role: 'assistant',
    content: status === 'completed' ? [{ type: 'output_text', text, annotations: [] }] : [],
  };
}

/** The events of a streamed response, in order, with their sequence numbers. */
export function responseEvents() {
  const text = STREAM_WORDS.join('');
  const part = { item_id: 'msg_1', output_index: 0, content_index: 0 };
  const events = [
    { type: 'response.created', response: response('in_progress') },
    { type: 'response.in_progress', response: response('in_progress') },
    { type: 'response.output_item.added', output_index: 0, item: outputMessage('in_progress') },
    { type: 'response.content_part.added', ...part, part: { type: 'output_text', text: '', annotations: [] } },
    ...STREAM_WORDS.map((delta) => ({ type: 'response.output_text.delta', ...part, delta })),
    { type: 'response.output_text.done', ...part, text },
    { type: 'response.content_part.done', ...part, part: { type: 'output_text', text, annotations: [] } },
    { type: 'response.output_item.done', output_index: 0, item: outputMessage('completed') },
    { type: 'response.completed', response: response('completed') },
  ];
  return events.map((event, i) => ({ type: event.type, sequence_number: i, ...event }));
}

function model(id) {
  return { id, object: 'model', created: 1700000000, owned_by: 'system' };
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

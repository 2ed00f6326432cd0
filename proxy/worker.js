// chatbot's OpenAI proxy: a Cloudflare Worker that forwards /v1/* to the
// OpenAI API (or any compatible UPSTREAM) and streams the answer back.
//
// Two modes, chosen by the Worker's secrets:
//   - pass-through (no PROXY_TOKEN, no OPENAI_API_KEY): the caller's own
//     Authorization header (its OpenAI key) goes upstream unchanged, and any
//     GET, POST or DELETE under /v1/ is forwarded;
//   - key-in-Worker (both set): the caller authenticates with
//     "Authorization: Bearer <PROXY_TOKEN>" and the Worker sends
//     "Authorization: Bearer <OPENAI_API_KEY>" upstream, so the real key
//     never leaves Cloudflare; only the calls chatbot makes (KEY_ROUTES) are
//     forwarded.
// Exactly one of the two set is a misconfiguration: every request gets a 500.
//
// In both modes only the request headers in FORWARDED_HEADERS go upstream, so
// nothing that names the caller, its address or its language (X-Forwarded-For,
// CF-Connecting-IP, Accept-Language, Cookie, ...) reaches OpenAI, whatever
// the header's name.
//
// Vars: UPSTREAM (default https://api.openai.com; may carry a path prefix),
// ALLOWED_ORIGINS (comma-separated origins, "*" or "none"; unset or empty means
// "*" in pass-through mode and "none" in key-in-Worker mode).

const DEFAULT_UPSTREAM = 'https://api.openai.com';

// Marks every response this Worker makes or forwards, so a client (for
// example `chatbot check`) can tell it went through the proxy.
const PROXY_HEADER = 'x-proxy';
const PROXY_NAME = 'chatbot-worker';

// The only request headers sent upstream, per mode. Content-Type is copied
// as is, so a multipart body keeps its boundary; fetch() sets Host and
// Content-Length itself. OpenAI-Organization and OpenAI-Project pick the
// account a key bills: the caller's own business in pass-through mode, but
// in key-in-Worker mode they would let a caller choose for the owner's key.
const COMMON_HEADERS = ['accept', 'accept-encoding', 'authorization', 'content-type', 'openai-beta', 'user-agent'];
const FORWARDED_HEADERS = {
  pass: [...COMMON_HEADERS, 'openai-organization', 'openai-project'],
  key: COMMON_HEADERS,
};

// The methods forwarded in each mode (OPTIONS preflights are answered here).
const METHODS = {
  pass: ['GET', 'POST', 'DELETE'],
  key: ['GET', 'POST'],
};

// What key-in-Worker mode forwards: the calls chatbot and `chatbot check` make.
const KEY_ROUTES = [
  { method: 'POST', path: /^\/v1\/responses$/ },
  { method: 'POST', path: /^\/v1\/chat\/completions$/ },
  { method: 'POST', path: /^\/v1\/audio\/transcriptions$/ },
  { method: 'POST', path: /^\/v1\/images\/generations$/ },
  { method: 'GET', path: /^\/v1\/models$/ },
  { method: 'GET', path: /^\/v1\/models\/[^/]+$/ },
];

// Request headers a browser may send (answered in preflights). In
// key-in-Worker mode openai-organization and openai-project are accepted but
// dropped, like the x-stainless-* headers below, by upstreamHeaders.
const CORS_ALLOW_HEADERS = [
  'authorization',
  'content-type',
  'openai-organization',
  'openai-project',
  'openai-beta',
];
const CORS_MAX_AGE = '86400';

// Statuses whose responses must not carry a body (Response() throws otherwise).
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

export default {
  async fetch(request, env) {
    const config = readConfig(env || {});
    const allowOrigin = config.ok ? corsOrigin(config, request.headers.get('origin')) : null;
    return decorate(await handle(request, config, allowOrigin), allowOrigin);
  },
};

// handle answers one request: it refuses what must not go upstream, with an
// error in OpenAI's shape, and forwards the rest.
async function handle(request, config, allowOrigin) {
  if (!config.ok) {
    return errorResponse(500, config.error, 'server_error', 'proxy_misconfigured');
  }
  if (isUnsafePath(request.url)) {
    return errorResponse(400, 'Invalid URL: this proxy refuses paths with percent-encoded slashes ' +
      '(%2F), backslashes or dot segments (. and ..).', 'invalid_request_error', 'invalid_path');
  }
  const url = new URL(request.url);
  if (url.pathname !== '/v1' && !url.pathname.startsWith('/v1/')) {
    return notFound(request, url);
  }
  if (isPreflight(request)) {
    return preflight(request, config, allowOrigin);
  }
  if (!METHODS[config.mode].includes(request.method)) {
    return methodNotAllowed(request, url, METHODS[config.mode]);
  }
  if (config.mode === 'key') {
    const refusal = await refuseInKeyMode(request, config, url);
    if (refusal !== null) {
      return refusal;
    }
  }
  return forward(request, config, url);
}

// refuseInKeyMode answers a caller without the proxy token, or a call outside
// KEY_ROUTES, and returns null for a call that may spend the owner's key.
async function refuseInKeyMode(request, config, url) {
  if (!(await tokenMatches(request.headers.get('authorization'), config.proxyToken))) {
    return errorResponse(
      401,
      'Incorrect proxy token: send "Authorization: Bearer <PROXY_TOKEN>" with the token set ' +
        'on this Worker (wrangler secret put PROXY_TOKEN), not an OpenAI API key.',
      'invalid_request_error',
      'invalid_proxy_token',
    );
  }
  const routes = KEY_ROUTES.filter((route) => route.path.test(url.pathname));
  if (routes.length === 0) {
    return errorResponse(
      403,
      `${request.method} ${url.pathname} is not forwarded: in key-in-Worker mode this proxy ` +
        'forwards only the calls chatbot makes (see DEPLOY.md).',
      'invalid_request_error',
      'path_not_allowed',
    );
  }
  if (!routes.some((route) => route.method === request.method)) {
    return methodNotAllowed(request, url, routes.map((route) => route.method));
  }
  return null;
}

// forward sends the request upstream with the allowed headers only and
// returns the upstream answer as it comes.
async function forward(request, config, url) {
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  let upstream;
  try {
    upstream = await fetch(config.upstream + url.pathname + url.search, {
      method: request.method,
      headers: upstreamHeaders(request, config),
      // Streamed, never buffered: workerd accepts a ReadableStream body
      // without the `duplex: 'half'` option that Node's fetch requires.
      body: hasBody ? request.body : null,
      // Hand redirects to the caller instead of following them here.
      redirect: 'manual',
    });
  } catch (err) {
    console.error(`upstream fetch failed: ${err && err.message}`);
    return errorResponse(
      502,
      'The proxy could not reach the upstream API. Check the UPSTREAM variable and try again.',
      'server_error',
      'upstream_unreachable',
    );
  }
  // Status, body and headers pass through unchanged (errors included); the
  // body is the upstream stream itself, so SSE events flow as they arrive.
  return new Response(NULL_BODY_STATUSES.has(upstream.status) ? null : upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: new Headers(upstream.headers),
  });
}

// upstreamHeaders copies the mode's FORWARDED_HEADERS and, in key-in-Worker
// mode, puts the real key in place of the proxy token.
function upstreamHeaders(request, config) {
  const headers = new Headers();
  for (const name of FORWARDED_HEADERS[config.mode]) {
    const value = request.headers.get(name);
    if (value !== null) {
      headers.set(name, value);
    }
  }
  if (config.mode === 'key') {
    headers.set('authorization', `Bearer ${config.apiKey}`);
  }
  return headers;
}

// readConfig validates the Worker's bindings once per request (they are
// cheap to read) and returns either {ok: true, mode, ...} or {ok: false, error}.
function readConfig(env) {
  const proxyToken = nonEmpty(env.PROXY_TOKEN);
  const apiKey = nonEmpty(env.OPENAI_API_KEY);
  if ((proxyToken === null) !== (apiKey === null)) {
    const set = proxyToken !== null ? 'PROXY_TOKEN' : 'OPENAI_API_KEY';
    const unset = proxyToken !== null ? 'OPENAI_API_KEY' : 'PROXY_TOKEN';
    return {
      ok: false,
      error: `Proxy misconfigured: the secret ${set} is set but ${unset} is not. Set both ` +
        '(key-in-Worker mode) or neither (pass-through mode) with "wrangler secret put".',
    };
  }

  const rawUpstream = nonEmpty(env.UPSTREAM) ?? DEFAULT_UPSTREAM;
  let upstream;
  try {
    upstream = new URL(rawUpstream);
  } catch {
    upstream = null;
  }
  if (upstream === null || (upstream.protocol !== 'https:' && upstream.protocol !== 'http:') ||
      upstream.search !== '' || upstream.hash !== '') {
    return {
      ok: false,
      error: 'Proxy misconfigured: UPSTREAM must be an http(s) URL without query, ' +
        'such as https://api.openai.com.',
    };
  }

  const mode = proxyToken !== null ? 'key' : 'pass';
  // Unset or empty means the mode's default; "none" turns CORS off.
  let origins = nonEmpty(env.ALLOWED_ORIGINS) ?? (mode === 'pass' ? '*' : '');
  if (origins.toLowerCase() === 'none') {
    origins = '';
  }
  return {
    ok: true,
    mode,
    proxyToken,
    apiKey,
    // Drop trailing slashes so a prefix like https://host/openai/ joins cleanly.
    upstream: upstream.origin + upstream.pathname.replace(/\/+$/, ''),
    allowedOrigins: origins.split(',').map((s) => s.trim().replace(/\/+$/, '')).filter((s) => s !== ''),
  };
}

function nonEmpty(value) {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

// isUnsafePath reports whether the path as the caller sent it (workerd does
// not normalise request.url) holds an encoded slash or backslash, a
// backslash, or a dot segment ("." or "..", also percent-encoded): URL() or
// upstream would turn those into another path than the one checked here.
function isUnsafePath(rawUrl) {
  const path = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/i.exec(rawUrl)?.[1] ?? '';
  if (/%2f|%5c|\\/i.test(path)) {
    return true;
  }
  return path.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment));
}

// tokenMatches checks "Authorization: Bearer <token>" against the proxy token
// in constant time: both sides are hashed with SHA-256 first, so the compared
// values always have the same length and reveal nothing about the secret's.
async function tokenMatches(authorization, proxyToken) {
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization || '');
  const presented = match ? match[1] : '';
  const encoder = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest('SHA-256', encoder.encode(presented)),
    crypto.subtle.digest('SHA-256', encoder.encode(proxyToken)),
  ]);
  let equal;
  if (typeof crypto.subtle.timingSafeEqual === 'function') {
    equal = crypto.subtle.timingSafeEqual(a, b);
  } else {
    const x = new Uint8Array(a);
    const y = new Uint8Array(b);
    let diff = 0;
    for (let i = 0; i < x.length; i++) {
      diff |= x[i] ^ y[i];
    }
    equal = diff === 0;
  }
  // Evaluated after the comparison so that a missing token costs the same.
  return equal && presented !== '';
}

function isPreflight(request) {
  return request.method === 'OPTIONS' &&
    request.headers.has('origin') &&
    request.headers.has('access-control-request-method');
}

// corsOrigin returns the value for Access-Control-Allow-Origin (the request's
// own Origin, echoed) or null when the origin is missing or not allowed.
function corsOrigin(config, origin) {
  if (!origin) {
    return null;
  }
  const list = config.allowedOrigins;
  return list.includes('*') || list.includes(origin) ? origin : null;
}

function preflight(request, config, allowOrigin) {
  const headers = new Headers();
  if (allowOrigin !== null) {
    // The fixed list, plus the x-stainless-* telemetry headers that OpenAI's
    // own SDKs send from a browser, when the preflight asks for them (so the
    // browser sends the request; they are not forwarded upstream).
    const requested = (request.headers.get('access-control-request-headers') || '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s.startsWith('x-stainless-'));
    headers.set('access-control-allow-methods', [...METHODS[config.mode], 'OPTIONS'].join(', '));
    headers.set('access-control-allow-headers', [...CORS_ALLOW_HEADERS, ...requested].join(', '));
    headers.set('access-control-max-age', CORS_MAX_AGE);
  }
  return new Response(null, { status: 204, headers });
}

// decorate adds the proxy marker and the CORS response headers to any
// response, whether made here or forwarded from upstream.
function decorate(response, allowOrigin) {
  const headers = response.headers;
  headers.set(PROXY_HEADER, PROXY_NAME);
  if (allowOrigin !== null) {
    headers.set('access-control-allow-origin', allowOrigin);
  }
  const vary = headers.get('vary');
  if (!vary) {
    headers.set('vary', 'Origin');
  } else if (!vary.split(',').some((v) => ['origin', '*'].includes(v.trim().toLowerCase()))) {
    headers.set('vary', `${vary}, Origin`);
  }
  return response;
}

function notFound(request, url) {
  return errorResponse(
    404,
    `Invalid URL (${request.method} ${url.pathname}): this proxy only forwards paths under /v1/.`,
    'invalid_request_error',
    'not_found',
  );
}

// methodNotAllowed answers 405 with the methods the path does take in Allow.
function methodNotAllowed(request, url, allowed) {
  return errorResponse(
    405,
    `Method ${request.method} is not allowed for ${url.pathname} on this proxy; use ${allowed.join(' or ')}.`,
    'invalid_request_error',
    'method_not_allowed',
    { allow: allowed.join(', ') },
  );
}

// errorResponse builds an error in the shape the OpenAI API uses, so OpenAI
// client libraries parse and report it like one of the API's own.
function errorResponse(status, message, type, code, headers = {}) {
  const body = JSON.stringify({ error: { message, type, param: null, code } });
  return new Response(body, {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

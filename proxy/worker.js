// chatbot's OpenAI proxy: a Cloudflare Worker that forwards /v1/* to the
// OpenAI API (or any compatible UPSTREAM) and streams the answer back.
//
// Two modes, chosen by the Worker's secrets:
//   - pass-through (no PROXY_TOKEN, no OPENAI_API_KEY): the caller's own
//     Authorization header (its OpenAI key) goes upstream unchanged;
//   - key-in-Worker (both set): the caller authenticates with
//     "Authorization: Bearer <PROXY_TOKEN>" and the Worker sends
//     "Authorization: Bearer <OPENAI_API_KEY>" upstream, so the real key
//     never leaves Cloudflare.
// Exactly one of the two set is a misconfiguration: every request gets a 500.
//
// Vars: UPSTREAM (default https://api.openai.com; may carry a path prefix),
// ALLOWED_ORIGINS (comma-separated origins, "*" or "none"; unset or empty means
// "*" in pass-through mode and "none" in key-in-Worker mode).

const DEFAULT_UPSTREAM = 'https://api.openai.com';

// Marks every response this Worker makes or forwards, so a client (for
// example `chatbot check`) can tell it went through the proxy.
const PROXY_HEADER = 'x-proxy';
const PROXY_NAME = 'chatbot-worker';

// Request headers that identify the caller, its network or the page it runs
// on. They are removed before the request goes upstream. Any other header
// starting with "cf-" or "x-forwarded-" is removed as well (see isStripped).
const STRIPPED_HEADERS = new Set([
  'cf-connecting-ip',
  'cf-connecting-ipv6',
  'cf-ipcountry',
  'cf-ray',
  'cf-visitor',
  'cf-worker',
  'cf-ew-via',
  'cdn-loop',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'forwarded',
  'via',
  'origin',
  'referer',
  'cookie',
  // fetch() sets Host from the upstream URL; a caller's Host must not leak.
  'host',
]);

const CORS_ALLOW_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
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
  async fetch(request, env, ctx) {
    const config = readConfig(env || {});
    const origin = request.headers.get('origin');
    const allowOrigin = config.ok ? corsOrigin(config, origin) : null;
    const finish = (response) => decorate(response, allowOrigin);

    if (!config.ok) {
      return finish(errorResponse(500, config.error, 'server_error', 'proxy_misconfigured'));
    }

    const url = new URL(request.url);
    // URL() has already resolved dot segments (also percent-encoded ones), so
    // this check cannot be bypassed with /v1/../something.
    const forwarded = url.pathname === '/v1' || url.pathname.startsWith('/v1/');

    if (isPreflight(request)) {
      if (!forwarded) {
        return finish(notFound(request, url));
      }
      return finish(preflight(request, allowOrigin));
    }
    if (!forwarded) {
      return finish(notFound(request, url));
    }

    const headers = new Headers();
    for (const [name, value] of request.headers) {
      if (!isStripped(name)) {
        headers.append(name, value);
      }
    }

    if (config.mode === 'key') {
      if (!(await tokenMatches(request.headers.get('authorization'), config.proxyToken))) {
        return finish(errorResponse(
          401,
          'Incorrect proxy token: send "Authorization: Bearer <PROXY_TOKEN>" with the token set ' +
            'on this Worker (wrangler secret put PROXY_TOKEN), not an OpenAI API key.',
          'invalid_request_error',
          'invalid_proxy_token',
        ));
      }
      headers.set('authorization', `Bearer ${config.apiKey}`);
    }

    const target = config.upstream + url.pathname + url.search;
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
    let upstream;
    try {
      upstream = await fetch(target, {
        method: request.method,
        headers,
        // Streamed, never buffered: workerd accepts a ReadableStream body
        // without the `duplex: 'half'` option that Node's fetch requires.
        body: hasBody ? request.body : null,
        // Hand redirects to the caller instead of following them here.
        redirect: 'manual',
      });
    } catch (err) {
      console.error(`upstream fetch failed: ${err && err.message}`);
      return finish(errorResponse(
        502,
        'The proxy could not reach the upstream API. Check the UPSTREAM variable and try again.',
        'server_error',
        'upstream_unreachable',
      ));
    }

    // Status, body and headers pass through unchanged (errors included); the
    // body is the upstream stream itself, so SSE chunks flow as they arrive.
    return finish(new Response(NULL_BODY_STATUSES.has(upstream.status) ? null : upstream.body, {
      status: upstream.status,
      statusText: upstream.statusText,
      headers: new Headers(upstream.headers),
    }));
  },
};

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

function isStripped(name) {
  const lower = name.toLowerCase();
  return STRIPPED_HEADERS.has(lower) || lower.startsWith('cf-') || lower.startsWith('x-forwarded-');
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

function preflight(request, allowOrigin) {
  const headers = new Headers();
  if (allowOrigin !== null) {
    // The fixed list, plus the x-stainless-* telemetry headers that OpenAI's
    // own SDKs send from a browser, when the preflight asks for them.
    const requested = (request.headers.get('access-control-request-headers') || '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s.startsWith('x-stainless-'));
    headers.set('access-control-allow-methods', CORS_ALLOW_METHODS);
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

// errorResponse builds an error in the shape the OpenAI API uses, so OpenAI
// client libraries parse and report it like one of the API's own.
function errorResponse(status, message, type, code) {
  const body = JSON.stringify({ error: { message, type, param: null, code } });
  return new Response(body, {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

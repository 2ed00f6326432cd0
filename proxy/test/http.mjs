// A minimal HTTP client for the tests, on node:http rather than fetch():
// it sends headers exactly as given (fetch adds its own and refuses some),
// records when each body chunk arrives, and never waits forever.

import http from 'node:http';

/**
 * Sends one request.
 * @param {string} url
 * @param {{method?: string, headers?: Record<string,string>, body?: string|Buffer,
 *   rawPath?: string, timeoutMs?: number}} [opts] rawPath replaces the URL's
 *   path and query, unnormalised.
 * @returns {Promise<{status: number, headers: http.IncomingHttpHeaders,
 *   raw: Buffer, body: string, json: () => any, started: number,
 *   chunks: {at: number, text: string}[]}>}
 *   body is raw as UTF-8 (nothing is decompressed); started: performance.now()
 *   when the request was sent; chunks: the body as it arrived, with ms since
 *   started.
 */
export function request(url, { method = 'GET', headers = {}, body, rawPath, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const { hostname, port, pathname, search } = new URL(url);
    // new URL() resolves dot segments; rawPath is sent exactly as written.
    const path = rawPath ?? pathname + search;
    const req = http.request({ hostname, port, path, method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (data) => chunks.push({ at: performance.now() - started, data }));
      res.on('end', () => {
        clearTimeout(timer);
        const raw = Buffer.concat(chunks.map((c) => c.data));
        const text = raw.toString('utf8');
        resolve({
          status: res.statusCode,
          headers: res.headers,
          raw,
          body: text,
          json: () => JSON.parse(text),
          started,
          chunks: chunks.map(({ at, data }) => ({ at, text: data.toString('utf8') })),
        });
      });
      res.on('error', fail);
    });
    const timer = setTimeout(() => fail(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)), timeoutMs);
    function fail(err) {
      clearTimeout(timer);
      req.destroy();
      reject(err);
    }
    req.on('error', fail);
    req.end(body);
  });
}

#!/usr/bin/env node
// Runs the real Worker (worker.js in workerd) on a loopback port, for tests
// in other languages that want the proxy in front of their own fake OpenAI.
//
//   UPSTREAM=http://127.0.0.1:8080 [PROXY_TOKEN=... OPENAI_API_KEY=...] \
//   [ALLOWED_ORIGINS=...] node proxy/test/serve.mjs [--port N]
//
// The Worker's bindings are taken from the variables above (unset = unset
// binding). The port is --port N, else $PORT, else a free one. Once the
// Worker accepts requests it prints exactly one line to stdout:
//
//   listening on http://127.0.0.1:PORT
//
// and then runs until its stdin closes (give it a pipe: with stdin at
// /dev/null it stops at once), or until SIGTERM, SIGINT or SIGHUP. workerd
// is stopped too, even if this process is killed with SIGKILL. The Worker's
// logs and errors go to stderr. Exit status: 0 after a requested stop, 1 if
// workerd failed to start or died.

import process from 'node:process';
import { BINDING_NAMES, startWorker } from './workerd.mjs';

function parsePort(argv) {
  let raw = process.env.PORT || '0';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port' && i + 1 < argv.length) {
      raw = argv[++i];
    } else if (argv[i].startsWith('--port=')) {
      raw = argv[i].slice('--port='.length);
    } else {
      throw new Error(`unknown argument ${JSON.stringify(argv[i])} (usage: serve.mjs [--port N])`);
    }
  }
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad port ${JSON.stringify(raw)}`);
  }
  return port;
}

async function main() {
  const port = parsePort(process.argv.slice(2));
  const bindings = {};
  for (const name of BINDING_NAMES) {
    if (process.env[name] !== undefined) {
      bindings[name] = process.env[name];
    }
  }

  let stopping = false;
  let worker = null;
  const stop = async (code) => {
    if (stopping) {
      return;
    }
    stopping = true;
    if (worker) {
      await worker.stop();
    }
    process.exit(code);
  };

  // Watch stdin from the start, so a parent that dies while workerd is still
  // starting does not leave it behind.
  process.stdin.on('end', () => stop(0));
  process.stdin.on('close', () => stop(0));
  process.stdin.on('error', () => stop(0));
  process.stdin.resume();
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(signal, () => stop(0));
  }

  worker = await startWorker({ bindings, port, onLog: (chunk) => process.stderr.write(chunk) });
  if (stopping) {
    await worker.stop();
    return;
  }
  worker.exited.then((code) => {
    if (!stopping) {
      process.stderr.write(`serve.mjs: workerd exited unexpectedly (${code})\n`);
      stop(1);
    }
  });
  process.stdout.write(`listening on ${worker.url}\n`);
}

main().catch((err) => {
  process.stderr.write(`serve.mjs: ${err.message}\n`);
  process.exit(1);
});

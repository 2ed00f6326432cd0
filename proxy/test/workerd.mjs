// Runs worker.js in workerd, the open-source Workers runtime (the `workerd`
// npm package ships its binary), on a loopback port. Used by the tests and
// by serve.mjs.
//
// Traps this handles:
//   - the Worker's default outbound ("internet") refuses private and local
//     addresses, so the fake upstream on 127.0.0.1 would be unreachable: the
//     worker's globalOutbound is a network service that allows only "local",
//     which also guarantees the tests never leave the machine;
//   - the port: the socket binds 127.0.0.1:0 and workerd reports the port it
//     got as a JSON line on --control-fd (here fd 3);
//   - bindings come from the environment of the workerd process
//     (`fromEnvironment`), so secrets are never written to disk and an unset
//     variable is a null binding, exactly like a missing secret;
//   - workerd does not notice its parent dying: on Unix it runs under a small
//     sh watchdog that kills it when the pipe from this process closes, even
//     if this process is killed with SIGKILL.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const proxyDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workerPath = path.join(proxyDir, 'worker.js');

/** Names of the Worker's bindings (vars and secrets); all optional. */
export const BINDING_NAMES = ['UPSTREAM', 'PROXY_TOKEN', 'OPENAI_API_KEY', 'ALLOWED_ORIGINS'];

// $@ is the workerd command line. fd 4 keeps our stdin pipe: a background
// subshell blocks reading it and kills workerd on EOF, that is when we close
// it or die. A TERM/INT/HUP to the shell is passed on to workerd.
const WATCHDOG = `
exec 4<&0 0</dev/null
"$@" 4<&- &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
(trap - TERM INT HUP; read -r _ <&4; kill -TERM "$child" 2>/dev/null) &
watcher=$!
exec 4<&-
wait "$child"; status=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
kill "$watcher" 2>/dev/null
exit "$status"
`;

/** Path of the workerd binary inside node_modules. */
export function workerdBinary() {
  return createRequire(import.meta.url)('workerd').default;
}

/** compatibility_date from wrangler.toml, so tests run what users deploy. */
export async function compatibilityDate() {
  const toml = await readFile(path.join(proxyDir, 'wrangler.toml'), 'utf8');
  const match = /^\s*compatibility_date\s*=\s*"(\d{4}-\d{2}-\d{2})"/m.exec(toml);
  if (!match) {
    throw new Error('wrangler.toml has no compatibility_date');
  }
  return match[1];
}

function capnpString(s) {
  return JSON.stringify(s); // Cap'n Proto text strings use the same escapes.
}

function configText({ date, workerRelPath, port }) {
  const bindings = BINDING_NAMES
    .map((name) => `    (name = ${capnpString(name)}, fromEnvironment = ${capnpString(name)}),`)
    .join('\n');
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "proxy", worker = .proxyWorker),
    # Outbound network limited to loopback: the default "internet" service
    # refuses 127.0.0.1, and the tests must not reach anything else.
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [
    (name = "http", address = ${capnpString(`127.0.0.1:${port}`)}, http = (), service = "proxy"),
  ],
);

const proxyWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed ${capnpString(workerRelPath)}),
  ],
  compatibilityDate = ${capnpString(date)},
  globalOutbound = "loopback",
  bindings = [
${bindings}
  ],
);
`;
}

/**
 * Starts workerd running worker.js.
 *
 * @param {object} opts
 * @param {Record<string, string|undefined>} [opts.bindings] UPSTREAM, PROXY_TOKEN,
 *   OPENAI_API_KEY, ALLOWED_ORIGINS; undefined or missing means unset.
 * @param {number} [opts.port] loopback port, 0 (default) for a free one.
 * @param {(chunk: Buffer) => void} [opts.onLog] receives workerd's stdout and
 *   stderr (console output of the Worker, runtime errors); default: kept in
 *   memory, see logs().
 * @param {number} [opts.timeoutMs] how long to wait for the listening socket.
 * @returns {Promise<{url: string, port: number, logs: () => string,
 *   exited: Promise<number|null>, stop: () => Promise<void>}>}
 */
export async function startWorker({ bindings = {}, port = 0, onLog, timeoutMs = 15000 } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'chatbot-proxy-'));
  const configPath = path.join(dir, 'config.capnp');
  // embed paths are relative to the config file.
  const workerRelPath = path.relative(dir, workerPath).split(path.sep).join('/');
  await writeFile(configPath, configText({ date: await compatibilityDate(), workerRelPath, port }));

  // Only the bindings and what a process needs to run: the parent's own
  // PROXY_TOKEN or UPSTREAM must not leak into a test's Worker.
  const env = { PATH: process.env.PATH || '/usr/bin:/bin' };
  for (const name of BINDING_NAMES) {
    if (typeof bindings[name] === 'string') {
      env[name] = bindings[name];
    }
  }

  const workerdArgs = ['serve', configPath, '--control-fd=3'];
  const useWatchdog = process.platform !== 'win32';
  const child = useWatchdog
    ? spawn('/bin/sh', ['-c', WATCHDOG, 'workerd-watchdog', workerdBinary(), ...workerdArgs],
      { env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] })
    : spawn(workerdBinary(), workerdArgs, { env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });

  let logText = '';
  const log = onLog || ((chunk) => {
    logText = (logText + chunk.toString()).slice(-64 * 1024);
  });
  child.stdout.on('data', log);
  child.stderr.on('data', log);
  child.stdin.on('error', () => {}); // EPIPE if the child is already gone.

  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? null : 0)));
    child.once('error', () => resolve(null));
  });
  // workerd reads the config (and the embedded worker.js) only at startup.
  const removeDir = () => rm(dir, { recursive: true, force: true });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end(); // the watchdog kills workerd and exits
      if (!useWatchdog) {
        child.kill('SIGTERM');
      }
      for (const signal of ['SIGTERM', 'SIGKILL']) {
        if (await settlesWithin(exited, 3000)) {
          break;
        }
        child.kill(signal);
      }
      await settlesWithin(exited, 3000);
    }
  };

  let listenPort;
  try {
    listenPort = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`workerd did not start within ${timeoutMs} ms`)), timeoutMs);
      let buffered = '';
      child.stdio[3].on('data', (chunk) => {
        buffered += chunk.toString();
        let newline;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          let message;
          try {
            message = JSON.parse(line);
          } catch {
            continue;
          }
          if (message.event === 'listen' && message.socket === 'http') {
            clearTimeout(timer);
            resolve(message.port);
          }
        }
      });
      child.stdio[3].on('error', () => {});
      exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`workerd exited (${code}) before listening`));
      });
    });
  } catch (err) {
    await stop();
    await removeDir();
    const output = onLog ? '' : `\n${logText}`;
    throw new Error(`${err.message}${output}`);
  }

  await removeDir();
  return {
    url: `http://127.0.0.1:${listenPort}`,
    port: listenPort,
    logs: () => logText,
    exited,
    stop,
  };
}

function settlesWithin(promise, ms) {
  let timer;
  return Promise.race([
    promise.then(() => true, () => true),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

/** A sink script (`scripts/sink-mllp.ts`, `scripts/sink-http.ts`) running as a child process. */
export interface RunningSink {
  child: ChildProcess;
  port: number;
  stdout(): string;
  stderr(): string;
  /** SIGTERM; resolves with the exit code once the process is gone and its output read. */
  stop(): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Kills every sink still running (afterEach / afterAll). */
export function killSinks(): void {
  for (const child of running) {
    child.kill('SIGKILL');
  }
}

/** A free TCP port on 127.0.0.1 (to restart a sink on the port a destination names). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** Starts `scripts/<script>` with `--port <port>` (0: ephemeral) and waits until it listens. */
export async function startSink(script: string, args: string[], port = 0): Promise<RunningSink> {
  const child = spawn(
    process.execPath,
    [
      require.resolve('ts-node/dist/bin.js'),
      '--transpile-only',
      '-r',
      'tsconfig-paths/register',
      join('scripts', script),
      '--port',
      String(port),
      ...args,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((resolveExit) =>
    // 'close', not 'exit': stdout and stderr are fully read by then
    child.once('close', (code) => {
      running.delete(child);
      resolveExit(code);
    }),
  );
  const listening = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${err}`)), 45_000);
    const check = (): void => {
      const m = /^sink-(?:mllp|http) listening on 127\.0\.0\.1:(\d+)\n/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before listening: ${err}`));
    });
  });
  return {
    child,
    port: listening,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The JSON lines a sink's `--record FILE` wrote so far. */
export function readRecords<T>(file: string): T[] {
  if (!existsSync(file)) {
    return [];
  }
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

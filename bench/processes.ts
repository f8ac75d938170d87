/**
 * Child processes of the benchmark: this project's (`node dist/bench/child.js`) and the PyTorch peer's
 * (`/usr/bin/python3 bench/peer.py`), each printing one `@@result {json}` line; and the peer's
 * prerequisites (Debian's python3-torch with libopenblas0-pthread), installed with apt-get when missing and
 * the harness runs as root, otherwise named with the command that installs them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const RESULT_MARK = '@@result ';

/** The peer's interpreter: Debian's, where python3-torch installs (the first `python3` on PATH may be another). */
export const PEER_PYTHON = '/usr/bin/python3';
export const PEER_PACKAGES = ['python3-torch', 'libopenblas0-pthread'] as const;

export interface ChildOutput {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command to completion (no shell), collecting its output; a timeout kills it (SIGKILL). */
export function runProcess(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The parsed `@@result` line of a child, or an error with the end of its stderr. */
export function parseResult<T>(what: string, out: ChildOutput): T {
  const line = out.stdout.split('\n').reverse().find((l) => l.startsWith(RESULT_MARK));
  if (out.code !== 0 || line === undefined) {
    const tail = out.stderr.trim().split('\n').slice(-8).join('\n');
    throw new Error(`${what} failed (exit ${out.code ?? 'killed'}):\n${tail || '(no output on stderr)'}`);
  }
  return JSON.parse(line.slice(RESULT_MARK.length)) as T;
}

function debInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function peerImports(): boolean {
  return existsSync(PEER_PYTHON) && spawnSync(PEER_PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
}

/**
 * Make sure the peer can run: python3-torch and libopenblas0-pthread installed (Debian packages) and
 * `/usr/bin/python3 -c "import torch, numpy"` working. Missing pieces are installed with apt-get when this
 * process is root; otherwise the answer says what is missing and the command that installs it.
 */
export function ensurePeer(log: (line: string) => void): { ok: true } | { ok: false; why: string } {
  const missing = PEER_PACKAGES.filter((p) => !debInstalled(p));
  if (missing.length === 0 && peerImports()) return { ok: true };
  const pkgs = missing.length > 0 ? missing : [...PEER_PACKAGES];
  const command = `apt-get install -y ${pkgs.join(' ')}`;
  if (process.getuid?.() !== 0) {
    return { ok: false, why: `the PyTorch peer needs ${pkgs.join(', ')} (Debian packages) and ${PEER_PYTHON}; install them with: sudo ${command}` };
  }
  log(`[bench] installing the peer's packages: ${command}`);
  const r = spawnSync('apt-get', ['install', '-y', ...pkgs], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !peerImports()) return { ok: false, why: `\`${command}\` did not make \`${PEER_PYTHON} -c "import torch, numpy"\` work` };
  return { ok: true };
}

/**
 * Thread settings of the peer's process: torch's intra-op pool and the BLAS pools alike, and OpenMP threads that
 * sleep when idle. With the default (spinning) wait policy torch's idle OpenMP threads and OpenBLAS's pthreads
 * fight for the same two cores: on this project's VM that made the peer's expert epoch 2.4× slower (6.32 s against
 * 2.67 s) and its TESLA iteration 1.7× slower, flattering us. A caller's own OMP_WAIT_POLICY wins.
 */
export function peerEnv(threads: number): NodeJS.ProcessEnv {
  const n = String(threads);
  return { OMP_WAIT_POLICY: 'PASSIVE', ...process.env, OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n };
}

/**
 * Shared plumbing of every command: backend choice, progress (bars on a terminal, plain lines otherwise),
 * wall time and peak memory, the `--json PATH` summary, and one handler that turns errors into one line and
 * an exit code.
 */
import { ready } from '../backend';
import { exitCodeOf } from '../errors';
import { writeJsonAtomic } from '../store/atomic';
import type { ProgressSink } from '../util/progress';
import { progressLines } from '../util/progress-lines';
import { type Bars, progressBars } from './progress';

export interface CommandContext {
  readonly progress: ProgressSink;
  /** a line for the user (stderr, so stdout stays for results) */
  readonly log: (line: string) => void;
}

export interface CommonOptions {
  json?: string;
  progress?: boolean;
}

/** Run a command body; write its summary to `--json` if asked; print errors as one line. */
export async function runCommand<T extends object>(
  name: string,
  options: CommonOptions,
  body: (ctx: CommandContext) => Promise<T>,
): Promise<void> {
  const t0 = performance.now();
  const log = (line: string) => process.stderr.write(line + '\n');
  const bars = progressOutput(options.progress !== false, log);
  try {
    const backend = await ready(log);
    const result = await body({ progress: bars.sink, log });
    bars.stop();
    const summary = {
      command: name,
      backend,
      wallSeconds: (performance.now() - t0) / 1000,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      ...result,
    };
    log(`[ptmst] ${name}: done in ${summary.wallSeconds.toFixed(1)} s, peak RSS ${summary.peakRssMiB.toFixed(0)} MiB`);
    if (options.json) await writeJsonAtomic(options.json, summary);
  } catch (e) {
    bars.stop();
    process.exitCode = exitCodeOf(e);
    log(`ptmst ${name}: error: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.PTMST_DEBUG && e instanceof Error) log(e.stack ?? '');
  }
}

/** Bars on a terminal; where stderr goes to a file or a pipe, lines every 30 s (`ptmst repro > log 2>&1`). */
function progressOutput(enabled: boolean, log: (line: string) => void): Bars {
  if (enabled && process.stderr.isTTY !== true) return progressLines(log);
  return progressBars(enabled);
}

export { exitCodeOf };

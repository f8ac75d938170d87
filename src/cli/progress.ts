/** Progress bars for the CLI (cli-progress), one bar per label; for a terminal (run.ts picks lines otherwise). */
import cliProgress from 'cli-progress';
import { type ProgressSink, formatInfo } from '../util/progress';

export interface Bars {
  readonly sink: ProgressSink;
  stop(): void;
}

export function progressBars(enabled: boolean): Bars {
  if (!enabled) return { sink: () => undefined, stop: () => undefined };
  const multi = new cliProgress.MultiBar(
    {
      format: ' {label} [{bar}] {value}/{total} {percentage}% | {duration_formatted} elapsed, eta {eta_formatted} {info}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  return {
    sink(e) {
      let bar = bars.get(e.label);
      if (bar === undefined) {
        bar = multi.create(e.total, e.done, { label: e.label, info: formatInfo(e.info) });
        bars.set(e.label, bar);
      }
      bar.setTotal(e.total);
      bar.update(e.done, { label: e.label, info: formatInfo(e.info) });
    },
    stop: () => multi.stop(),
  };
}

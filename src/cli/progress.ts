/** Progress bars for the CLI (cli-progress), one bar per label; silent when stderr is not a terminal. */
import cliProgress from 'cli-progress';
import type { ProgressEvent, ProgressSink } from '../util/progress';

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
  const info = (e: ProgressEvent) =>
    e.info ? Object.entries(e.info).map(([k, v]) => `${k} ${typeof v === 'number' ? v.toPrecision(4) : v}`).join(' ') : '';
  return {
    sink(e) {
      let bar = bars.get(e.label);
      if (bar === undefined) {
        bar = multi.create(e.total, e.done, { label: e.label, info: info(e) });
        bars.set(e.label, bar);
      }
      bar.setTotal(e.total);
      bar.update(e.done, { label: e.label, info: info(e) });
    },
    stop: () => multi.stop(),
  };
}

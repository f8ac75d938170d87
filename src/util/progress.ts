/**
 * Progress reporting. Library verbs never print: they call a `ProgressSink`, and the CLI turns the events
 * into progress bars (cli-progress) on a terminal, or into plain lines (./progress-lines) in a log file;
 * notebooks and tests pass their own sink or none.
 */
export interface ProgressEvent {
  /** what is being counted, e.g. `flickr8k/train images` */
  readonly label: string;
  readonly done: number;
  readonly total: number;
  /** optional key figures to show beside the bar (loss, epoch, ...) */
  readonly info?: Readonly<Record<string, string | number>>;
}

export type ProgressSink = (event: ProgressEvent) => void;

/** One sink that passes every event to each of `sinks` in turn (undefined ones are skipped). */
export function teeProgress(...sinks: readonly (ProgressSink | undefined)[]): ProgressSink {
  const present = sinks.filter((s): s is ProgressSink => s !== undefined);
  return (event) => {
    for (const s of present) s(event);
  };
}

/** An event's `info` as text, `loss 0.1234 epoch 3` (numbers to 4 significant digits); '' when none. */
export function formatInfo(info: ProgressEvent['info']): string {
  return info ? Object.entries(info).map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : v}`).join(' ') : '';
}

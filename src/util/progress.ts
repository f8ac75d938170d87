/**
 * Progress reporting. Library verbs never print: they call a `ProgressSink`, and the CLI turns the events
 * into progress bars (cli-progress); notebooks and tests pass their own sink or none.
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

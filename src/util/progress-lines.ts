/**
 * Progress as plain lines, for where no one watches a terminal (`ptmst repro > log 2>&1`, CI logs):
 * a line when a label starts, one when it finishes, and every `every` seconds one line per label still
 * running with its rate and an estimate of the time left. Pure: no timers, no I/O besides `write`.
 */
import { type ProgressEvent, type ProgressSink, formatInfo } from './progress';

export interface ProgressLinesOptions {
  /** seconds between the periodic lines (default 30); checked when an event arrives */
  readonly every?: number;
  /** the clock, in milliseconds (default `performance.now`); tests pass a fake one */
  readonly now?: () => number;
}

export interface ProgressLines {
  readonly sink: ProgressSink;
  /** later events are ignored; prints nothing */
  stop(): void;
}

/** One label's run, from its first event (or its last restart). */
interface Track {
  readonly total: number;
  /** `done` at the first event: work resumed from an earlier run does not count toward the rate */
  readonly startDone: number;
  readonly t0: number;
  done: number;
  info: ProgressEvent['info'];
  finished: boolean;
}

/** `42 s`, `3 min 05 s`, `1 h 02 min` (rounded to the second; `?` when not finite). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${two(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${two(Math.floor((s % 3600) / 60))} min`;
}

/** Items per second with about three significant digits, never in exponent form. */
function formatRate(r: number): string {
  if (r >= 100) return r.toFixed(0);
  if (r >= 10) return r.toFixed(1);
  if (r >= 0.1) return r.toFixed(2);
  return r.toPrecision(2);
}

/** Turn progress events into lines passed to `write` (one line per call, no newline). */
export function progressLines(write: (line: string) => void, options: ProgressLinesOptions = {}): ProgressLines {
  const every = (options.every ?? 30) * 1000;
  const now = options.now ?? (() => performance.now());
  const tracks = new Map<string, Track>();
  let lastPeriodic = now();
  let stopped = false;

  const withInfo = (line: string, info: ProgressEvent['info']) => {
    const text = formatInfo(info);
    return text === '' ? line : `${line} ${text}`;
  };

  const periodic = (label: string, t: Track, at: number): string => {
    const pct = t.total > 0 ? Math.floor((100 * t.done) / t.total) : 0;
    let line = `… ${label} ${t.done}/${t.total} (${pct}%)`;
    const seconds = (at - t.t0) / 1000;
    const rate = seconds > 0 ? (t.done - t.startDone) / seconds : 0;
    // no rate until something was counted: a first estimate from nothing would be noise
    if (rate > 0) line += ` ${formatRate(rate)}/s, eta ${formatDuration((t.total - t.done) / rate)}`;
    return withInfo(line, t.info);
  };

  const sink: ProgressSink = (e) => {
    if (stopped) return;
    const at = now();
    let t = tracks.get(e.label);
    const fresh = t === undefined || e.done < t.done || e.total !== t.total;
    if (t === undefined || fresh) {
      t = { total: e.total, startDone: e.done, t0: at, done: e.done, info: e.info, finished: false };
      tracks.set(e.label, t);
      // a label first seen complete (work done before its only event) gets just its ✓ line, without a time
      if (e.done < e.total) write(`▶ ${e.label} ${e.done}/${e.total}`);
      else {
        t.finished = true;
        write(`✓ ${e.label} ${e.done}/${e.total}`);
      }
    }
    t.done = e.done;
    t.info = e.info;
    if (!t.finished && t.done >= t.total) {
      t.finished = true;
      write(`✓ ${e.label} ${t.done}/${t.total} in ${formatDuration((at - t.t0) / 1000)}`);
    }
    if (at - lastPeriodic >= every) {
      lastPeriodic = at;
      // a label that starts with this event has just had its ▶ line
      for (const [label, track] of tracks) if (!track.finished && track.t0 !== at) write(periodic(label, track, at));
    }
  };

  return {
    sink,
    stop() {
      stopped = true;
    },
  };
}

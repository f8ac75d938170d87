/**
 * One tuning protocol for every distilled method (issue 26): a small grid over each registry method's own step
 * sizes (or any DistillConfig field, and `iterations`), each point distilled once (one distillation seed) at one
 * budget and scored on the **validation** split; the best point is then used by every row of that method, at
 * every budget. The grid runs as an ordinary `repro` of its own (figures/<results>-tuning.json: every point's
 * rows, scores, wall times and provenance), so it is cached, resumable and recorded like any table.
 *
 * The score a point is chosen by is its validation curve's best mean (the best checkpoint of the students'
 * mean validation r_mean): `validationScore` reads the curve's `val` entries and nothing else, so no test
 * number can move a choice. Ties go to the earlier point in grid order.
 */
import { z } from 'zod';
import { ConfigError } from '../errors';
import { DISTILL_METHOD_NAMES } from '../distill/methods';

const GridValue = z.union([z.number(), z.string(), z.boolean()]);

export const TuningConfig = z
  .object({
    /** the budget (synthetic pairs) every grid point is distilled at */
    budget: z.number().int().positive().default(100),
    /** the one distillation seed of every grid point */
    seed: z.number().int().nonnegative().default(0),
    /**
     * per registry method, the candidate values of each field it tunes (DistillConfig fields, or `iterations`):
     * the grid is their cartesian product, in the order written
     */
    grids: z
      .partialRecord(z.enum(DISTILL_METHOD_NAMES), z.record(z.string(), z.array(GridValue).min(1)))
      .refine((g) => Object.keys(g).length > 0, 'name at least one method'),
    /** DistillConfig fields (or `iterations`) every grid point is distilled with besides its own, e.g. the rows' iterations */
    overrides: z.record(z.string(), z.unknown()).default({}),
    /** changes to the evaluation protocol for the grid's students (any `eval` field; absent: the config's) */
    eval: z.record(z.string(), z.unknown()).optional(),
    /** the tuning's results file (figures/<name>.json); default `<results>-tuning` */
    results: z.string().min(1).optional(),
  })
  .strict();
export type TuningConfig = z.infer<typeof TuningConfig>;

export type GridPoint = Readonly<Record<string, z.infer<typeof GridValue>>>;

/** The cartesian product of a method's grid, the first field varying slowest. */
export function gridPoints(grid: Readonly<Record<string, readonly z.infer<typeof GridValue>[]>>): GridPoint[] {
  let points: GridPoint[] = [{}];
  for (const [field, values] of Object.entries(grid)) points = points.flatMap((p) => values.map((v) => ({ ...p, [field]: v })));
  return points;
}

type Grid = Readonly<Record<string, readonly z.infer<typeof GridValue>[]>>;

/** The methods' grids, in the order written. */
const gridsOf = (t: TuningConfig): [string, Grid][] => Object.entries(t.grids).flatMap(([m, g]): [string, Grid][] => (g === undefined ? [] : [[m, g]]));

/** The repro row of grid point `index` of `method` (its name says which; a '+' of a registry name is '_', as row names allow). */
export const tuningRowName = (method: string, index: number) => `tune.${method.replace(/[^A-Za-z0-9_.-]/g, '_')}.${index}`;

/** The rows of the tuning run: every grid point of every method at the tuning budget, one distillation seed. */
export function tuningRows(t: TuningConfig): { name: string; kind: 'method'; method: string; budget: number; overrides: Record<string, unknown>; seeds: number[] }[] {
  return gridsOf(t).flatMap(([method, grid]) => {
    for (const field of Object.keys(grid)) {
      if (Object.hasOwn(t.overrides, field)) throw new ConfigError(`tuning.overrides.${field}: tuning.grids.${method} tunes it; remove one of the two`);
    }
    return gridPoints(grid).map((point, i) => ({ name: tuningRowName(method, i), kind: 'method' as const, method, budget: t.budget, overrides: { ...t.overrides, ...point }, seeds: [t.seed] }));
  });
}

/** What a choice may read of a row's result: its validation curve only. */
export interface ValidationCurve {
  readonly curve: readonly { readonly val: { readonly mean: number } }[];
}

/** The best checkpoint of the students' mean validation r_mean. */
export function validationScore(r: ValidationCurve): number {
  if (r.curve.length === 0) throw new Error('validationScore: the row has no checkpoints');
  return Math.max(...r.curve.map((c) => c.val.mean));
}

const PointScore = z
  .object({
    row: z.string(),
    values: z.record(z.string(), GridValue),
    /** validationScore of the point's row */
    validation: z.number(),
    wallSeconds: z.number().nullable(),
  })
  .strict();
export type PointScore = z.infer<typeof PointScore>;

/** What a results file records of its tuning (`tuning`), checked when it is read. */
export const TuningRecord = z
  .object({
    budget: z.number().int().positive(),
    seed: z.number().int().nonnegative(),
    /** the tuning's results file name (figures/<results>.json) */
    results: z.string(),
    /** per method, every point in grid order with its score, and the chosen values */
    methods: z.record(z.string(), z.object({ points: z.array(PointScore).min(1), chosen: z.record(z.string(), GridValue) }).strict()),
    /** the grid's wall time: the sum of its rows' (null when a row's was not recorded) */
    wallSeconds: z.number().nullable(),
  })
  .strict();
export type TuningOutcome = z.infer<typeof TuningRecord>;

/**
 * Choose each method's point on validation: the highest validationScore (ties → the earlier point). `rows`
 * are the tuning run's results by row name; only their validation curves are read.
 */
export function chooseOnValidation(
  t: TuningConfig,
  rows: ReadonlyMap<string, ValidationCurve & { readonly wallSeconds: number | null }>,
  results: string,
): TuningOutcome {
  let total: number | null = 0;
  const methods = Object.fromEntries(
    gridsOf(t).map(([method, grid]) => {
      const points = gridPoints(grid).map((values, i): PointScore => {
        const row = rows.get(tuningRowName(method, i));
        if (row === undefined) throw new Error(`tuning: no result for grid point ${tuningRowName(method, i)}`);
        total = total === null || row.wallSeconds === null ? null : total + row.wallSeconds;
        return { row: tuningRowName(method, i), values, validation: validationScore(row), wallSeconds: row.wallSeconds };
      });
      let best = points[0]!;
      for (const p of points) if (p.validation > best.validation) best = p;
      return [method, { points, chosen: best.values }];
    }),
  );
  return { budget: t.budget, seed: t.seed, results, methods, wallSeconds: total };
}

/** Each method's chosen point (a TuningOutcome is one). */
export interface Choices {
  readonly methods: Readonly<Record<string, { readonly chosen: GridPoint }>>;
}

/** The first point of every grid as if chosen: a row resolves with the same fields whichever point is chosen (checks before the grid runs). */
export const anyChoice = (t: TuningConfig): Choices => ({ methods: Object.fromEntries(gridsOf(t).map(([m, g]) => [m, { chosen: gridPoints(g)[0]! }])) });

/**
 * A row's overrides with its method's chosen values: the chosen values set the tuned fields, the row's own
 * overrides the rest. A row that sets a tuned field itself is an error naming both (one of them must go).
 */
export function withChosen(rowName: string, method: string, overrides: Readonly<Record<string, unknown>>, outcome: Choices | undefined): Record<string, unknown> {
  const tuned = outcome?.methods[method];
  if (tuned === undefined) return { ...overrides };
  for (const field of Object.keys(tuned.chosen)) {
    if (Object.hasOwn(overrides, field)) {
      throw new ConfigError(`methods.${rowName}.overrides.${field}: tuning.grids.${method} tunes it; remove one of the two`);
    }
  }
  return { ...overrides, ...tuned.chosen };
}

/** One provenance line: the budget, seed, each method's chosen values and the grid's cost. */
export function tuningLine(o: TuningOutcome): string {
  const chosen = Object.entries(o.methods)
    .map(([m, { chosen, points }]) => `${m} ${Object.entries(chosen).map(([k, v]) => `${k}=${v}`).join(', ')} (of ${points.length})`)
    .join('; ');
  const cost = o.wallSeconds === null ? '' : `, ${Math.round(o.wallSeconds)} s`;
  return `tuning: each method's grid distilled at ${o.budget} pairs (distillation seed ${o.seed}) and chosen on validation (figures/${o.results}${cost}): ${chosen}`;
}

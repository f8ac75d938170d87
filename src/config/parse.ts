import type { z } from 'zod';
import { ConfigError } from '../errors';

export { ConfigError };

/** Parse with a zod schema; the first problem becomes one error naming the field. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((issue) => {
    const field = issue.path.join('.') || '(root)';
    if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`;
    return `field ${field}: ${issue.message}`;
  });
  throw new ConfigError(`invalid ${what}: ${lines.join('; ')}`);
}

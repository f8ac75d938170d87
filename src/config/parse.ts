import type { z } from 'zod';

/** A config or option that fails its schema: names the field and what was wrong. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

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

/** Config files for the CLI: flag overrides merged into a config file (read by config/file.ts). */
import { ConfigError } from '../config/parse';
export { PACKAGE_ROOT, readConfigFile } from '../config/file';

/** Deep-merge plain objects; `undefined` in `over` leaves `base` as it is. */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && b !== null && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** A numeric flag: undefined when absent, an error naming the flag when not a number. */
export function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`option ${flag}: "${v}" is not a number`);
  return n;
}

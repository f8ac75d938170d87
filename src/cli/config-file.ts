/** Config files for the CLI: JSON read with errors naming the file, and flag overrides merged in. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../config/parse';

/** The package root (configs/ ships there). */
export const PACKAGE_ROOT = resolve(__dirname, '..', '..', '..');

/** Read a JSON config; a bare name like `flickr8k-ptmst` is looked up in the package's configs/. */
export function readConfigFile(path: string): Record<string, unknown> {
  const candidates = [path, join(PACKAGE_ROOT, 'configs', path), join(PACKAGE_ROOT, 'configs', `${path}.json`)];
  const file = candidates.find((c) => existsSync(c));
  if (file === undefined) throw new ConfigError(`config file ${path} not found (also looked in ${join(PACKAGE_ROOT, 'configs')})`);
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`config file ${file}: ${(e as Error).message}`);
  }
}

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

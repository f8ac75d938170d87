/** Config files: JSON read with errors naming the file; a bare name is one of the package's configs/. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from './parse';

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


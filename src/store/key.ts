/**
 * The one key function for artefacts: what a stored result depends on, hashed with a stable key order, so
 * a rerun recognises its own output (and ignores one made under another configuration).
 */
import { sha256 } from './atomic';
import { canonicalJson } from './safetensors';

/** sha256 of the canonical JSON (object keys sorted, `undefined` fields dropped) of `parts`. */
export function artefactKey(parts: Readonly<Record<string, unknown>>): string {
  return sha256(canonicalJson(JSON.parse(JSON.stringify(parts)) as unknown));
}

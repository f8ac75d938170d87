/**
 * `tf.setBackend` with the reason when a backend does not come up: tfjs answers false and only warns on the console
 * (not at all in prod mode), so the backend factory's own error is caught here, through tfjs-core's registry of
 * factories (an engine internal of the pinned tfjs 4.22; the factory is restored afterwards).
 */
import * as tf from '@tensorflow/tfjs';

interface FactoryRegistry {
  readonly registryFactory: Record<string, { factory: () => unknown } | undefined>;
}

/** An error, or the `{ message }` object Emscripten's glue rejects with, as one line. */
export function describeError(e: unknown): string {
  const message = e instanceof Error ? e.message : (e as { message?: unknown } | null | undefined)?.message;
  return String(message ?? e).split('\n')[0]!;
}

const isPromise = (v: unknown): v is Promise<unknown> => typeof (v as { then?: unknown } | null)?.then === 'function';

/** Make `name` the current backend: undefined when it is, else why not (the factory's error). */
export async function setBackendOrReason(name: string): Promise<string | undefined> {
  const entry = (tf.engine() as unknown as FactoryRegistry).registryFactory[name];
  if (entry === undefined) return `no backend ${name} is registered`;
  const factory = entry.factory;
  let failure: unknown;
  const caught = (e: unknown): never => {
    failure = e;
    throw e;
  };
  entry.factory = () => {
    try {
      const backend = factory();
      return isPromise(backend) ? backend.catch(caught) : backend;
    } catch (e) {
      return caught(e);
    }
  };
  try {
    return (await tf.setBackend(name)) ? undefined : describeError(failure ?? 'tf.setBackend answered false');
  } catch (e) {
    return describeError(failure ?? e);
  } finally {
    entry.factory = factory;
  }
}

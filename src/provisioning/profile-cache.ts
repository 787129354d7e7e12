import type { ProfileRow, ProfileSecretValues } from '../store/provisioning/profile.ts';
import type { Store } from '../store/store.ts';

/** How long a profile read is reused: a change reaches new jobs within this time. */
const TTL_MS = 1000;

export interface CachedProfile {
  readonly row: ProfileRow;
  readonly secrets: ProfileSecretValues;
}

/**
 * Profiles (settings and opened secrets) for jobs, read at most once per second per name: a
 * burst of hundreds of hellos then costs a handful of reads and unseals, not hundreds.
 * SCS_PROFILE_NOT_FOUND is not cached.
 */
export class ProfileCache {
  readonly #store: Store;
  readonly #entries = new Map<string, { readonly at: number; readonly value: Promise<CachedProfile> }>();

  constructor(store: Store) {
    this.#store = store;
  }

  get(name: string): Promise<CachedProfile> {
    const now = performance.now();
    const hit = this.#entries.get(name);
    if (hit !== undefined && now - hit.at < TTL_MS) return hit.value;
    const value = (async () => ({
      row: await this.#store.profiles.require(name),
      secrets: await this.#store.profiles.secrets(name),
    }))();
    this.#entries.set(name, { at: now, value });
    value.catch(() => this.#entries.delete(name));
    return value;
  }
}

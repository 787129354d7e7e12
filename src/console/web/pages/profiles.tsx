import { useState } from 'preact/hooks';
import { messageOf } from '../api.ts';
import { when } from '../format.ts';
import { Problem } from '../parts/problem.tsx';
import type { Profile } from '../resources.ts';
import { href } from '../route.ts';
import { useSession } from '../session-context.ts';
import { useLoad } from '../use-load.ts';
import { ProfileEditor } from './profile-editor.tsx';

/** Provisioning profiles: the list, and the selected one in the editor (read-only without profile.write). */
export function ProfilesPage({ selected }: { readonly selected: string | undefined }) {
  const { client, can } = useSession();
  const [changed, setChanged] = useState(0);
  const list = useLoad((s) => client.get<{ items: Profile[] }>('/profiles', s), [changed]);
  const [newName, setNewName] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const name = selected ?? list.value?.items[0]?.name;

  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    try {
      const p = await client.json<Profile>('POST', '/profiles', { body: { name: newName.trim() } });
      setNewName('');
      setChanged((c) => c + 1);
      location.hash = href('profiles', p.name);
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <div class="page">
      <h1>Profiles</h1>
      <div class="split">
        <section class="card" aria-labelledby="plist-title">
          <h2 id="plist-title">All profiles</h2>
          <Problem message={list.error} />
          <ul class="picker">
            {list.value?.items.map((p) => (
              <li key={p.name}>
                <a href={href('profiles', p.name)} aria-current={p.name === name ? 'true' : undefined}>
                  <strong>{p.name}</strong>
                  <span class="muted small">
                    v{p.version} · {when(p.updatedAt)}
                  </span>
                </a>
              </li>
            ))}
          </ul>
          {can('profile.write') ? (
            <form onSubmit={(e) => void create(e)} class="stacked">
              <div class="field">
                <label for="new-profile">New profile</label>
                <input
                  id="new-profile"
                  required
                  pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}"
                  title="letters, digits and . _ - (up to 64)"
                  placeholder="e.g. branch-offices"
                  value={newName}
                  onInput={(e) => setNewName(e.currentTarget.value)}
                />
              </div>
              <button type="submit" class="secondary">
                Create with defaults
              </button>
              <Problem message={error} />
            </form>
          ) : null}
        </section>
        {name === undefined ? null : (
          <ProfileEditor key={name} name={name} onChanged={() => setChanged((c) => c + 1)} />
        )}
      </div>
    </div>
  );
}

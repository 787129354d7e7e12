import { useEffect, useState } from 'preact/hooks';
import { ApiError, messageOf } from '../api.ts';
import { when } from '../format.ts';
import { describedBy, Field } from '../parts/field.tsx';
import { Problem } from '../parts/problem.tsx';
import { SECRET_NAMES, type Profile, type ProfileSettings, type SecretName } from '../resources.ts';
import { href } from '../route.ts';
import { useSession } from '../session-context.ts';

const SECRET_LABEL: Readonly<Record<SecretName, string>> = {
  currentMebxPassword: 'Current MEBx password (what the machines have now)',
  adminPassword: 'Fixed admin password',
  newMebxPassword: 'New MEBx password (fixed mode)',
};

/** What the browser can check before sending; the server checks everything again (docs/api.md). */
function localProblems(
  s: ProfileSettings,
  secrets: Readonly<Record<SecretName, string>>,
  set: Profile['secretsSet'],
): Map<string, string> {
  const out = new Map<string, string>();
  if (!/^[\x21-\x7e]{1,16}$/.test(s.adminUser)) out.set('adminUser', '1 to 16 printable ASCII characters, no spaces');
  if (!Number.isInteger(s.certificateValidityDays) || s.certificateValidityDays < 1 || s.certificateValidityDays > 3650)
    out.set('certificateValidityDays', 'a whole number of days, 1 to 3650');
  if (s.hostNamePattern.trim() === '') out.set('hostNamePattern', 'needed, e.g. amt-{uuid8}');
  if (s.adminPassword === 'fixed' && !set.adminPassword && secrets.adminPassword === '')
    out.set('adminPassword', 'fixed mode needs the password below');
  if (s.mebxPassword === 'fixed' && !set.newMebxPassword && secrets.newMebxPassword === '')
    out.set('mebxPassword', 'fixed mode needs the new MEBx password below');
  return out;
}

/**
 * One profile's settings and write-only secrets. Saves with If-Match: the ETag read with the
 * profile, so a change someone else made in between is refused (412) instead of overwritten.
 */
export function ProfileEditor({ name, onChanged }: { readonly name: string; readonly onChanged: () => void }) {
  const { client, can } = useSession();
  const editable = can('profile.write');
  const [profile, setProfile] = useState<Profile | undefined>(undefined);
  const [etag, setEtag] = useState('');
  const [settings, setSettings] = useState<ProfileSettings | undefined>(undefined);
  const [secrets, setSecrets] = useState<Record<SecretName, string>>({
    currentMebxPassword: '',
    adminPassword: '',
    newMebxPassword: '',
  });
  const [remove, setRemove] = useState<ReadonlySet<SecretName>>(new Set());
  const [error, setError] = useState<ApiError | string | undefined>(undefined);
  const [saved, setSaved] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [tried, setTried] = useState(false);

  const load = async (): Promise<void> => {
    const r = await client.withEtag<Profile>('GET', `/profiles/${encodeURIComponent(name)}`);
    setProfile(r.value);
    setEtag(r.etag);
    setSettings({ ...r.value.settings });
    setSecrets({ currentMebxPassword: '', adminPassword: '', newMebxPassword: '' });
    setRemove(new Set());
  };
  useEffect(() => {
    load().catch((e: unknown) => setError(messageOf(e)));
  }, [name]);

  if (settings === undefined || profile === undefined) {
    return (
      <section class="card">
        <h2>{name}</h2>
        <Problem message={typeof error === 'string' || error === undefined ? error : messageOf(error)} />
      </section>
    );
  }
  const local = localProblems(settings, secrets, profile.secretsSet);
  const fieldError = (f: string): string | undefined =>
    (tried ? local.get(f) : undefined) ?? (error instanceof ApiError ? error.fieldMessage(f) : undefined);
  const set = <K extends keyof ProfileSettings>(k: K, v: ProfileSettings[K]): void => {
    setSettings({ ...settings, [k]: v });
    setSaved(undefined);
  };

  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setTried(true);
    setSaved(undefined);
    if (local.size > 0) {
      setError('Some fields need attention.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const changedSettings = Object.fromEntries(
        (Object.keys(settings) as (keyof ProfileSettings)[])
          .filter((k) => settings[k] !== profile.settings[k])
          .map((k) => [k, settings[k]]),
      );
      const newSecrets = Object.fromEntries(SECRET_NAMES.filter((k) => secrets[k] !== '').map((k) => [k, secrets[k]]));
      const r = await client.withEtag<Profile>('PATCH', `/profiles/${encodeURIComponent(name)}`, {
        headers: { 'if-match': etag },
        body: {
          settings: changedSettings,
          ...(Object.keys(newSecrets).length === 0 ? {} : { secrets: newSecrets }),
          ...(remove.size === 0 ? {} : { removeSecrets: [...remove] }),
        },
      });
      setProfile(r.value);
      setEtag(r.etag);
      setSettings({ ...r.value.settings });
      setSecrets({ currentMebxPassword: '', adminPassword: '', newMebxPassword: '' });
      setRemove(new Set());
      setTried(false);
      setSaved(`Saved: version ${r.value.version}.`);
      onChanged();
    } catch (err) {
      setError(err instanceof ApiError || typeof err === 'string' ? err : messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const del = async (): Promise<void> => {
    if (!confirm(`Delete profile "${name}"?`)) return;
    try {
      await client.json('DELETE', `/profiles/${encodeURIComponent(name)}`, { headers: { 'if-match': etag } });
      location.hash = href('profiles');
      onChanged();
    } catch (err) {
      setError(err instanceof ApiError ? err : messageOf(err));
    }
  };

  const stale = error instanceof ApiError && error.code === 'SCS_PRECONDITION_FAILED';
  const text = (k: 'adminUser' | 'hostNamePattern' | 'domainName', label: string, hint?: string) => (
    <Field id={`p-${k}`} label={label} error={fieldError(k)} {...(hint === undefined ? {} : { hint })}>
      <input
        id={`p-${k}`}
        value={settings[k]}
        onInput={(e) => set(k, e.currentTarget.value)}
        aria-invalid={fieldError(k) !== undefined}
        aria-describedby={describedBy(`p-${k}`, hint !== undefined, fieldError(k))}
      />
    </Field>
  );
  const check = (k: 'timeSync' | 'tls' | 'renewPsk', label: string) => (
    <label class="check">
      <input type="checkbox" checked={settings[k]} onChange={(e) => set(k, e.currentTarget.checked)} /> {label}
    </label>
  );
  return (
    <section class="card editor" aria-labelledby="editor-title">
      <h2 id="editor-title">
        {profile.name}{' '}
        <span class="muted small">
          version {profile.version} · changed {when(profile.updatedAt)}
        </span>
      </h2>
      <form onSubmit={(e) => void save(e)} noValidate>
        <fieldset disabled={!editable || busy}>
          <legend class="sr-only">Settings</legend>
          <div class="grid two tight">
            {text('adminUser', 'Admin user', 'account set on each device')}
            <Field id="p-adminPassword" label="Admin password" error={fieldError('adminPassword')}>
              <select
                id="p-adminPassword"
                value={settings.adminPassword}
                onChange={(e) => set('adminPassword', e.currentTarget.value as ProfileSettings['adminPassword'])}
              >
                <option value="random">random per device (escrowed)</option>
                <option value="fixed">fixed (secret below)</option>
              </select>
            </Field>
            <Field id="p-mebxPassword" label="MEBx password" error={fieldError('mebxPassword')}>
              <select
                id="p-mebxPassword"
                value={settings.mebxPassword}
                onChange={(e) => set('mebxPassword', e.currentTarget.value as ProfileSettings['mebxPassword'])}
              >
                <option value="keep">keep the current one</option>
                <option value="random">random per device (escrowed)</option>
                <option value="fixed">fixed (secret below)</option>
              </select>
            </Field>
            {text('hostNamePattern', 'Host name pattern', 'placeholders {uuid}, {uuid8}, {hostname}')}
            {text('domainName', 'Domain name', 'empty keeps the device’s own')}
            <Field
              id="p-certificateValidityDays"
              label="Certificate validity (days)"
              error={fieldError('certificateValidityDays')}
            >
              <input
                id="p-certificateValidityDays"
                type="number"
                min={1}
                max={3650}
                value={settings.certificateValidityDays}
                onInput={(e) => set('certificateValidityDays', Number(e.currentTarget.value))}
                aria-invalid={fieldError('certificateValidityDays') !== undefined}
              />
            </Field>
            <Field id="p-onNoRenewalPsk" label="No renewal PSK left" error={fieldError('onNoRenewalPsk')}>
              <select
                id="p-onNoRenewalPsk"
                value={settings.onNoRenewalPsk}
                onChange={(e) => set('onNoRenewalPsk', e.currentTarget.value as ProfileSettings['onNoRenewalPsk'])}
              >
                <option value="fail">fail the job</option>
                <option value="skip">skip the renewal</option>
              </select>
            </Field>
            <div class="checks">
              {check('timeSync', 'Set the device clock')}
              {check('tls', 'TLS with a certificate from the SCS CA')}
              {check('renewPsk', 'Give the device a new PSK')}
            </div>
          </div>
          <h3>Secrets</h3>
          <p class="muted small">Write-only: the server never sends them back. Leave empty to keep.</p>
          <div class="grid three tight">
            {SECRET_NAMES.map((k) => (
              <Field key={k} id={`s-${k}`} label={SECRET_LABEL[k]} error={fieldError(k)}>
                <input
                  id={`s-${k}`}
                  type="password"
                  autoComplete="new-password"
                  placeholder={profile.secretsSet[k] ? '•••••• (set)' : 'not set'}
                  value={secrets[k]}
                  onInput={(e) => setSecrets({ ...secrets, [k]: e.currentTarget.value })}
                />
                {profile.secretsSet[k] && editable ? (
                  <label class="check small">
                    <input
                      type="checkbox"
                      checked={remove.has(k)}
                      onChange={(e) => {
                        const next = new Set(remove);
                        if (e.currentTarget.checked) next.add(k);
                        else next.delete(k);
                        setRemove(next);
                      }}
                    />{' '}
                    remove it
                  </label>
                ) : null}
              </Field>
            ))}
          </div>
        </fieldset>
        <Problem message={typeof error === 'string' || error === undefined ? error : messageOf(error)} />
        {stale ? (
          <button type="button" class="secondary" onClick={() => void load().then(() => setError(undefined))}>
            Reload the current version (your edits are lost)
          </button>
        ) : null}
        {saved === undefined ? null : (
          <p class="ok" role="status">
            {saved}
          </p>
        )}
        {editable ? (
          <div class="actions">
            <button type="submit" disabled={busy}>
              {busy ? 'Saving…' : 'Save changes'}
            </button>
            {profile.name === 'default' ? null : (
              <button type="button" class="danger" onClick={() => void del()}>
                Delete profile
              </button>
            )}
          </div>
        ) : (
          <p class="muted">Your role can read profiles but not change them.</p>
        )}
      </form>
    </section>
  );
}

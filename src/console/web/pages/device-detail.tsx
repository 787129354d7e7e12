import { useState } from 'preact/hooks';
import { messageOf, query } from '../api.ts';
import { when } from '../format.ts';
import { AuditDetail } from '../parts/audit-detail.tsx';
import { DeviceActions } from '../parts/device-actions.tsx';
import { Problem } from '../parts/problem.tsx';
import { StateBadge } from '../parts/state-badge.tsx';
import { StepTrack } from '../parts/step-track.tsx';
import type { DeviceDetail, Job, Page } from '../resources.ts';
import { href } from '../route.ts';
import { useLiveEvent, useSession } from '../session-context.ts';
import { useLoad } from '../use-load.ts';

/**
 * One device: what the server knows, its TLS certificate, its jobs, its history (roles with
 * history.read), its admin password on request (secret.reveal; audited by the server), and the
 * actions after provisioning (device.write).
 */
export function DeviceDetailPage({ uuid }: { readonly uuid: string }) {
  const { client, can } = useSession();
  const path = `/devices/${encodeURIComponent(uuid)}`;
  const device = useLoad((s) => client.get<DeviceDetail>(`${path}${query({ historyLimit: 50 })}`, s), [uuid]);
  const jobs = useLoad((s) => client.get<Page<Job, number>>(`/jobs${query({ device: uuid, limit: 10 })}`, s), [uuid]);
  useLiveEvent('job', (d) => {
    if ((d as Job).deviceUuid === uuid) jobs.reload();
  });
  useLiveEvent('device', (d) => {
    if ((d as { deviceUuid: string }).deviceUuid === uuid) device.reload();
  });
  const d = device.value;
  return (
    <div class="page">
      <p>
        <a href={href('devices')}>← All devices</a>
      </p>
      <h1 class="mono wrap">{uuid}</h1>
      <Problem message={device.error} />
      {d === undefined ? null : (
        <>
          <div class="grid two">
            <section class="card" aria-labelledby="dev-facts">
              <h2 id="dev-facts">
                Device <StateBadge state={d.state} />
              </h2>
              <dl class="facts">
                <dt>host name</dt>
                <dd>{d.hostName === null ? '—' : `${d.hostName}${d.domainName ? `.${d.domainName}` : ''}`}</dd>
                <dt>address</dt>
                <dd class="mono">{d.address ?? '—'}</dd>
                <dt>AMT version</dt>
                <dd>{d.amtVersion ?? '—'}</dd>
                <dt>profile</dt>
                <dd>{d.profile === null ? '—' : <a href={href('profiles', d.profile)}>{d.profile}</a>}</dd>
                <dt>PSK held now</dt>
                <dd class="mono">{d.pid ?? '—'}</dd>
                <dt>provisioned</dt>
                <dd>{when(d.provisionedAt)}</dd>
                <dt>first seen</dt>
                <dd>{when(d.createdAt)}</dd>
              </dl>
              <AdminPassword
                // A rotation rewrites the device record: a password revealed before is stale, so it is hidden again.
                key={d.updatedAt}
                uuid={uuid}
                user={d.adminUser}
                escrowed={d.adminPasswordEscrowed}
                canReveal={can('secret.reveal')}
              />
            </section>
            <section class="card" aria-labelledby="dev-cert">
              <h2 id="dev-cert">TLS certificate</h2>
              {d.certificate === null ? (
                <p class="empty-note">No certificate: the profile does not turn TLS on, or it was not issued yet.</p>
              ) : (
                <>
                  <dl class="facts">
                    <dt>valid until</dt>
                    <dd>{when(d.certificate.notAfter)}</dd>
                    <dt>SHA-256</dt>
                    <dd class="mono wrap small">{d.certificate.fingerprint ?? '—'}</dd>
                  </dl>
                  {d.certificate.pem === undefined ? null : (
                    <details>
                      <summary>PEM</summary>
                      <pre class="pem">{d.certificate.pem}</pre>
                    </details>
                  )}
                </>
              )}
            </section>
          </div>
          {can('device.write') ? (
            <DeviceActions
              uuid={uuid}
              provisioned={d.state === 'provisioned'}
              hasCertificate={d.certificate !== null}
              holdsPsk={d.pid !== null}
              post={(p, body) => client.json('POST', p, { body })}
              onDone={() => (device.reload(), jobs.reload())}
            />
          ) : null}
          <section class="card" aria-labelledby="dev-jobs">
            <h2 id="dev-jobs">Provisioning jobs</h2>
            <Problem message={jobs.error} />
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Job</th>
                    <th scope="col">State</th>
                    <th scope="col">Steps</th>
                    <th scope="col">Error</th>
                    <th scope="col">Started</th>
                    <th scope="col">Finished</th>
                  </tr>
                </thead>
                <tbody>
                  {jobs.value?.items.map((j) => (
                    <tr key={j.id}>
                      <td>#{j.id}</td>
                      <td>
                        <StateBadge state={j.state} />
                      </td>
                      <td>
                        <StepTrack step={j.step} state={j.state} />
                      </td>
                      <td>
                        {j.errorCode === null ? (
                          '—'
                        ) : (
                          <span class="reason">{`${j.errorCode}: ${j.errorMessage ?? ''}`}</span>
                        )}
                      </td>
                      <td class="muted">{when(j.createdAt)}</td>
                      <td class="muted">{when(j.finishedAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
          {d.history === undefined ? null : (
            <section class="card" aria-labelledby="dev-history">
              <h2 id="dev-history">History</h2>
              {d.history.length === 0 ? <p class="empty-note">Nothing recorded.</p> : null}
              <ol class="timeline">
                {d.history.map((h) => (
                  <li key={h.seq}>
                    <span class="muted small">{when(h.at)}</span> <strong>{h.action}</strong>{' '}
                    <span class="muted">by {h.actor}</span>
                    <AuditDetail detail={h.detail} />
                  </li>
                ))}
              </ol>
            </section>
          )}
        </>
      )}
    </div>
  );
}

function AdminPassword({
  uuid,
  user,
  escrowed,
  canReveal,
}: {
  readonly uuid: string;
  readonly user: string | null;
  readonly escrowed: boolean;
  readonly canReveal: boolean;
}) {
  const { client } = useSession();
  const [password, setPassword] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  if (!escrowed) return <p class="muted small">The server holds no admin password for this device.</p>;
  if (!canReveal) return <p class="muted small">Admin user {user ?? '—'}; this token may not reveal the password.</p>;
  const reveal = async (): Promise<void> => {
    try {
      const r = await client.json<{ password: string }>(
        'POST',
        `/devices/${encodeURIComponent(uuid)}/reveal-password`,
        {
          body: { reason: 'console' },
        },
      );
      setPassword(r.password);
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <div class="reveal">
      <p>
        Admin user <strong>{user ?? '—'}</strong>
      </p>
      {password === undefined ? (
        <button type="button" class="secondary" onClick={() => void reveal()}>
          Reveal admin password (audited)
        </button>
      ) : (
        <p>
          <code class="secret" data-testid="admin-password">
            {password}
          </code>{' '}
          <button type="button" class="secondary small" onClick={() => setPassword(undefined)}>
            Hide
          </button>
        </p>
      )}
      <Problem message={error} />
    </div>
  );
}

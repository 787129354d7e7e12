import { useState } from 'preact/hooks';
import { query } from '../api.ts';
import { label, when } from '../format.ts';
import { Pager } from '../parts/pager.tsx';
import { Problem } from '../parts/problem.tsx';
import { StateBadge } from '../parts/state-badge.tsx';
import { DEVICE_STATES, type Device, type DeviceState, type Page } from '../resources.ts';
import { href } from '../route.ts';
import { useLiveEvent, useSession } from '../session-context.ts';
import { useLoad } from '../use-load.ts';
import { usePages } from '../use-pages.ts';

const PAGE = 50;

/** Devices by UUID with a state filter; a row opens the device. Refreshes when a job ends. */
export function DevicesPage() {
  const { client } = useSession();
  const [state, setState] = useState<DeviceState | ''>('');
  const pages = usePages<string>();
  const list = useLoad(
    (s) =>
      client.get<Page<Device, string>>(
        `/devices${query({ state: state === '' ? undefined : state, after: pages.cursor, limit: PAGE })}`,
        s,
      ),
    [state, pages.cursor],
  );
  useLiveEvent('device', () => list.reload());
  return (
    <div class="page">
      <h1>Devices</h1>
      <section class="card">
        <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter devices">
          <div class="field">
            <label for="d-state">State</label>
            <select
              id="d-state"
              value={state}
              onChange={(e) => (setState(e.currentTarget.value as DeviceState | ''), pages.reset())}
            >
              <option value="">any state</option>
              {DEVICE_STATES.map((s) => (
                <option key={s} value={s}>
                  {label(s)}
                </option>
              ))}
            </select>
          </div>
        </form>
        <Problem message={list.error} />
        <div class="table-wrap">
          <table data-testid="device-list">
            <thead>
              <tr>
                <th scope="col">Device UUID</th>
                <th scope="col">State</th>
                <th scope="col">Host name</th>
                <th scope="col">Address</th>
                <th scope="col">AMT</th>
                <th scope="col">Provisioned</th>
              </tr>
            </thead>
            <tbody>
              {list.value?.items.map((d) => (
                <tr key={d.uuid} data-device={d.uuid}>
                  <td>
                    <a class="mono" href={href('devices', d.uuid)}>
                      {d.uuid}
                    </a>
                  </td>
                  <td>
                    <StateBadge state={d.state} />
                  </td>
                  <td>{d.hostName === null ? '—' : `${d.hostName}${d.domainName ? `.${d.domainName}` : ''}`}</td>
                  <td class="mono">{d.address ?? '—'}</td>
                  <td>{d.amtVersion ?? '—'}</td>
                  <td class="muted">{when(d.provisionedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {list.value?.items.length === 0 ? (
          <p class="empty-note">No device yet: devices appear after their first hello.</p>
        ) : null}
        <Pager
          label="Device"
          page={pages.page}
          hasNext={list.value?.next != null}
          onPrev={pages.prev}
          onNext={() => list.value?.next != null && pages.next(list.value.next)}
        />
      </section>
    </div>
  );
}

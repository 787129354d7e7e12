import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { startFleet, type Fleet } from '../../simulator/fleet/fleet.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { BundleDecoder } from '../../src/psk/formats/bundle.ts';
import { formatPid, parsePid } from '../../src/psk/pid.ts';
import { parsePps } from '../../src/psk/pps.ts';
import { Secret } from '../../src/secret.ts';
import { MEBX, randomAddressBase, randomPort } from '../e2e/harness.ts';
import {
  buildConsole,
  externalRequests,
  launchBrowser,
  OUTPUT,
  screenshot,
  skipReason,
  startConsoleServer,
  type Browser,
  type ConsoleServer,
} from './harness.ts';

const DEVICES = 5;
const GENERATED = DEVICES * 2 + 4;
const PASSPHRASE = 'correct horse battery staple';
const skip = skipReason();
if (skip !== undefined) console.log(`# browser tests skipped: ${skip}`);

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
}

/** Runs a test body; when it fails, a screenshot of the page as it was (test-output/browser/FAILED-*.png). */
function onFailure(page: () => Page | undefined, body: () => Promise<void>): (t: { name: string }) => Promise<void> {
  return async (t) => {
    try {
      await body();
    } catch (e) {
      const p = page();
      if (p !== undefined)
        await screenshot(p, `FAILED-${t.name.replace(/\W+/g, '-').slice(0, 60)}`).catch(() => undefined);
      throw e;
    }
  };
}

function parseCsv(text: string): PskPair[] {
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  assert.equal(lines[0], 'PID,PPS');
  return lines.slice(1).map((l) => {
    const [pid = '', pps = ''] = l.split(',');
    return { pid: parsePid(pid), pps: new Secret(parsePps(pps)) };
  });
}

/**
 * The journey of issue #5 in real Chromium against a real server: sign in, set the profile,
 * generate PSKs, export them for the devices, start a simulated fleet holding them, watch every
 * device reach "provisioned" live on the dashboard, open a device, export an encrypted bundle;
 * then what other roles see, and that the page never reached another host.
 */
describe('web console in Chromium', { skip: skip ?? false, timeout: 600_000 }, () => {
  let build: string;
  let scs: ConsoleServer;
  let browser: Browser;
  let page: Page;
  let fleet: Fleet | undefined;
  let adminToken: string;
  const amtTlsPort = randomPort();

  before(async () => {
    build = await buildConsole();
    scs = await startConsoleServer(build, amtTlsPort);
    adminToken = await scs.token('alice', 'admin');
    browser = await launchBrowser();
    page = await browser.newPage();
  });
  after(async () => {
    await fleet?.stop();
    await browser?.close();
    await scs?.close();
    if (build !== undefined) rmSync(build, { recursive: true, force: true });
  });

  it(
    'signs in with a token and shows the dashboard for its role',
    onFailure(
      () => page,
      async () => {
        await page.goto(`${scs.url}/`);
        await page.getByLabel('API token').fill('scs_not-a-real-token');
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('alert').filter({ hasText: 'SCS_UNAUTHENTICATED' }).waitFor();
        await screenshot(page, '01-sign-in-refused');
        await page.getByLabel('API token').fill(adminToken);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
        assert.match(await page.getByTestId('who').innerText(), /alice\s+admin/);
        await page.getByTestId('live-state').filter({ hasText: 'live' }).waitFor();
        assert.equal(await page.getByRole('link', { name: 'Audit log' }).count(), 1);
        // A reload keeps the tab's session (sessionStorage).
        await page.reload();
        await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
        await screenshot(page, '02-dashboard-empty');
      },
    ),
  );

  it(
    'saves the default profile with If-Match and shows validation errors per field',
    onFailure(
      () => page,
      async () => {
        await page.getByRole('link', { name: 'Profiles' }).click();
        await page.getByRole('heading', { name: /^default/ }).waitFor();
        await page.getByLabel('Certificate validity (days)').fill('0');
        await page.getByRole('button', { name: 'Save changes' }).click();
        await page.getByText('a whole number of days, 1 to 3650').waitFor();
        await page.getByLabel('Certificate validity (days)').fill('365');
        // The server's own rules: a domain name with a space is refused, said next to the field.
        await page.getByLabel('Domain name').fill('not a domain');
        await page.getByRole('button', { name: 'Save changes' }).click();
        await page.locator('#p-domainName-error').waitFor();
        await screenshot(page, '03-profile-invalid');
        await page.getByLabel('Domain name').fill('lab.example');
        await page.getByLabel(/^Current MEBx password/).fill(MEBX);
        await page.getByRole('button', { name: 'Save changes' }).click();
        await page.getByText(/^Saved: version \d+\.$/).waitFor();
        const profile = await scs.server.store.profiles.get('default');
        assert.equal(profile?.settings.domainName, 'lab.example');
        assert.equal(profile?.settings.certificateValidityDays, 365);
        assert.equal(profile?.secretsSet.currentMebxPassword, true);

        // Someone else changes the profile: the console's ETag is stale and the save is refused.
        await scs.server.store.profiles.update(
          'default',
          { settings: { timeSync: !profile.settings.timeSync } },
          { actor: 'test' },
        );
        await page.getByLabel('Host name pattern').fill('pc-{uuid8}');
        await page.getByRole('button', { name: 'Save changes' }).click();
        await page.getByRole('alert').filter({ hasText: 'SCS_PRECONDITION_FAILED' }).waitFor();
        await screenshot(page, '04-profile-stale');
        assert.notEqual((await scs.server.store.profiles.get('default'))?.settings.hostNamePattern, 'pc-{uuid8}');
        await page.getByRole('button', { name: /Reload the current version/ }).click();
        await page.getByRole('alert').waitFor({ state: 'detached' });
      },
    ),
  );

  let devicePsks: PskPair[] = [];

  it(
    'generates PSKs with progress and exports a CSV for the devices',
    onFailure(
      () => page,
      async () => {
        await page.getByRole('link', { name: 'PSKs' }).click();
        // Devices, their renewal PSKs, spares for the bundle, one to revoke, one renewal after a partial unprovision.
        await page.getByLabel('How many').fill(String(GENERATED));
        await page.locator('#gen-batch').fill('floor-1');
        await page.getByRole('button', { name: 'Generate PSKs' }).click();
        await page.locator('[data-testid="generate-task"][data-state="succeeded"]').waitFor();
        assert.match(
          await page.getByTestId('generate-task').innerText(),
          new RegExp(`${GENERATED} PSKs generated into batch floor-1`),
        );
        // The list shows them, never a PPS.
        await page.locator('#f-batch').selectOption('floor-1');
        await page
          .locator('[data-testid="psk-list"] tbody tr')
          .nth(GENERATED - 1)
          .waitFor();

        await page.locator('#exp-format').selectOption('csv');
        await page.locator('#exp-batch').selectOption('floor-1');
        await page.locator('#exp-count').fill(String(DEVICES));
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.getByRole('button', { name: 'Export and download' }).click(),
        ]);
        assert.match(download.suggestedFilename(), /^psks-floor-1-.*\.csv$/);
        const file = path.join(OUTPUT, 'floor-1.csv');
        await download.saveAs(file);
        devicePsks = parseCsv(readFileSync(file, 'utf8'));
        rmSync(file);
        assert.equal(devicePsks.length, DEVICES);
        await page.getByTestId('export-result').waitFor();
        await screenshot(page, '05-psks-generated-exported');
      },
    ),
  );

  it(
    'shows every device of a simulated fleet reach "provisioned" live on the dashboard',
    onFailure(
      () => page,
      async () => {
        await page.getByRole('link', { name: 'Dashboard' }).click();
        await page.getByTestId('live-state').filter({ hasText: 'live' }).waitFor();
        fleet = await startFleet({
          devices: DEVICES,
          psks: devicePsks,
          scs: `127.0.0.1:${scs.server.helloAddress.port}`,
          tlsPort: amtTlsPort,
          httpPort: amtTlsPort + 1,
          addressBase: randomAddressBase(),
          workers: 'inline',
          keyPoolSize: 4,
          mebxPassword: MEBX,
          timeFactor: 1,
        });
        const rows = page.locator('[data-testid="live-jobs"] tbody tr[data-state="provisioned"]');
        // Provisioning is real work (TLS-PSK, WS-Man, certificates) on a loaded machine: be patient.
        const deadline = Date.now() + 240_000;
        while ((await rows.count()) < DEVICES) {
          if (Date.now() > deadline)
            throw new Error(`only ${await rows.count()} of ${DEVICES} devices provisioned in 240 s`);
          await page.waitForTimeout(250);
        }
        assert.equal(await rows.count(), DEVICES);
        const uuids: (string | null)[] = [];
        for (let i = 0; i < DEVICES; i++) uuids.push(await rows.nth(i).getAttribute('data-device'));
        assert.deepEqual(new Set(uuids), new Set(fleet.devices.map((d) => d.uuid)));
        await page.locator('[data-testid="device-counts-provisioned"]', { hasText: String(DEVICES) }).waitFor();
        await page.locator('[data-testid="psk-counts-consumed"]', { hasText: String(DEVICES) }).waitFor();
        await screenshot(page, '06-dashboard-provisioned');
      },
    ),
  );

  it(
    'opens a provisioned device with its certificate and history, and reveals its password',
    onFailure(
      () => page,
      async () => {
        await page.getByRole('link', { name: 'Devices' }).click();
        await page
          .locator('[data-testid="device-list"] tbody tr')
          .nth(DEVICES - 1)
          .waitFor();
        await page.locator('[data-testid="device-list"] tbody tr a').first().click();
        await page.getByRole('heading', { name: 'TLS certificate' }).waitFor();
        await page.getByRole('heading', { name: 'History' }).waitFor();
        await page.getByRole('button', { name: /Reveal admin password/ }).click();
        const password = await page.getByTestId('admin-password').innerText();
        assert.ok(password.length >= 8, 'a revealed password is shown');
        await screenshot(page, '07-device-detail');
        assert.ok(!scs.logs.some((l) => l.includes(password)), 'the revealed password is in no log line');
      },
    ),
  );

  it(
    'exports an encrypted bundle that opens with its passphrase and holds the batch',
    onFailure(
      () => page,
      async () => {
        await page.getByRole('link', { name: 'PSKs' }).click();
        await page.locator('#exp-format').selectOption('bundle');
        await page.locator('#exp-batch').selectOption('floor-1');
        await page.getByLabel(/^Passphrase/).fill(PASSPHRASE);
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.getByRole('button', { name: 'Export and download' }).click(),
        ]);
        assert.match(download.suggestedFilename(), /^psks-floor-1-.*\.scsbundle$/);
        const file = path.join(OUTPUT, 'floor-1.scsbundle');
        await download.saveAs(file);
        const bytes = readFileSync(file);
        const decoder = new BundleDecoder({ passphrase: new Secret(PASSPHRASE) });
        const records = [...decoder.push(bytes), ...decoder.finish()];
        // A bundle holds the batch's available and exported PSKs (docs/transfer.md).
        const expected = (
          await scs.server.store.psks.list({ batch: 'floor-1', state: ['available', 'exported'], limit: 100 })
        ).map((p) => formatPid(p.pid));
        assert.ok(records.length > 0, 'the bundle is not empty');
        assert.deepEqual(records.map((r) => formatPid(r.pid)).sort(), expected.sort());
        assert.ok(records.every((r) => r.batch === 'floor-1'));
        await page.getByTestId('export-result').filter({ hasText: '.scsbundle' }).waitFor();

        // The same file uploaded back: the import form asks for the passphrase and says nothing is new.
        await page.locator('#imp-file').setInputFiles(file);
        await page.getByLabel('Bundle passphrase').fill(PASSPHRASE);
        await page.getByRole('button', { name: 'Import file' }).click();
        const result = page.getByTestId('import-result');
        await result.waitFor();
        rmSync(file);
        assert.match(await result.innerText(), /Nothing new|imported before/);
        assert.match(await result.innerText(), new RegExp(`records in the file\\s+${records.length}\\b`));
        await screenshot(page, '08-bundle-exported-and-reimported');
      },
    ),
  );

  it(
    'shows the audit log with an intact chain',
    onFailure(
      () => page,
      async () => {
        await page.getByRole('link', { name: 'Audit log' }).click();
        await page.locator('[data-testid="audit-verify"][data-ok="true"]').waitFor();
        await page.locator('[data-testid="audit-list"] tbody tr').first().waitFor();
        assert.ok((await page.getByRole('cell', { name: 'api:alice' }).count()) > 0, 'actions by the token are listed');
        await screenshot(page, '09-audit');
      },
    ),
  );

  it(
    'creates a viewer token, and hides from the viewer what the role cannot do',
    onFailure(
      () => page,
      async () => {
        // The admin makes the viewer's token on the Tokens page (shown once).
        await page.getByRole('link', { name: 'Tokens' }).click();
        await page.getByLabel('Name').fill('vic');
        await page.getByLabel('Role').selectOption('viewer');
        await page.getByRole('button', { name: 'Create token' }).click();
        const token = await page.getByTestId('new-token').inputValue();
        assert.match(token, /^scs_[A-Za-z0-9_-]{43}$/);
        await page.locator('[data-testid="token-list"] tr', { hasText: 'vic' }).waitFor();
        await screenshot(page, '10-token-created');
        const viewer = await browser.newPage();
        try {
          await signIn(viewer, scs.url, token);
          assert.equal(await viewer.getByRole('link', { name: 'Tokens' }).count(), 0);
          assert.equal(await viewer.getByRole('link', { name: 'Audit log' }).count(), 0);
          await viewer.getByRole('link', { name: 'PSKs' }).click();
          await viewer.getByRole('heading', { name: 'Inventory' }).waitFor();
          await viewer.locator('[data-testid="psk-list"] tbody tr').first().waitFor();
          for (const name of ['Generate PSKs', 'Import file', 'Export and download', /^Revoke/])
            assert.equal(await viewer.getByRole('button', { name }).count(), 0, `no "${String(name)}" for a viewer`);
          await viewer.getByRole('link', { name: 'Profiles' }).click();
          await viewer.getByText('Your role can read profiles but not change them.').waitFor();
          await viewer.getByRole('link', { name: 'Devices' }).click();
          await viewer.locator('[data-testid="device-list"] tbody tr a').first().click();
          await viewer.getByRole('heading', { name: 'TLS certificate' }).waitFor();
          assert.equal(await viewer.getByRole('button', { name: /Reveal admin password/ }).count(), 0);
          assert.equal(await viewer.getByRole('heading', { name: 'History' }).count(), 0);
          assert.equal(await viewer.getByTestId('device-actions').count(), 0, 'no device actions for a viewer');
          await screenshot(viewer, '11-viewer-device');
        } finally {
          await viewer.close();
        }
      },
    ),
  );

  let actedOn = '';

  it(
    "rotates a device's admin password, re-syncs its time and renews its certificate from the device page",
    onFailure(
      () => page,
      async () => {
        actedOn = fleet?.devices[0]?.uuid ?? '';
        assert.notEqual(actedOn, '', 'the fleet has a device');
        await page.goto(`${scs.url}/#/devices/${actedOn}`);
        const actions = page.getByTestId('device-actions');
        await actions.waitFor();
        const before = await scs.server.store.devices.get(actedOn);
        await page.getByRole('button', { name: /Reveal admin password/ }).click();
        const oldPassword = await page.getByTestId('admin-password').innerText();

        await actions.getByRole('button', { name: 'Rotate admin password' }).click();
        const result = page.getByTestId('device-action-result');
        await result.and(page.locator('[data-action="rotate-password"]')).waitFor({ timeout: 120_000 });
        assert.match(await result.innerText(), /New admin password set, checked with a login and escrowed/);
        const rotated = await scs.server.store.devices.get(actedOn);
        assert.notEqual(rotated?.adminEscrowId, before?.adminEscrowId, 'the device points at a new escrow row');
        // The page reloaded the device: the old password is hidden, a reveal shows the new one.
        await page.getByRole('button', { name: /Reveal admin password/ }).click();
        const newPassword = await page.getByTestId('admin-password').innerText();
        assert.notEqual(newPassword, oldPassword);
        assert.ok(!scs.logs.some((l) => l.includes(newPassword)), 'the new password is in no log line');

        await actions.getByRole('button', { name: 'Re-sync time' }).click();
        await result.and(page.locator('[data-action="sync-time"]')).waitFor({ timeout: 120_000 });
        assert.match(await result.innerText(), /Clock set from the server; it was (on time|\d+ s (ahead|behind))\./);
        // Both actions are in the device's history, which the page reloaded after each.
        const history = page.locator('section[aria-labelledby="dev-history"]');
        await history.getByText('device.time_sync', { exact: true }).waitFor();
        await history.getByText('device.rotate_password', { exact: true }).waitFor();
        await screenshot(page, '12-device-password-rotated-time-synced');

        // Renewal: not while the certificate is valid beyond the days given, then at once.
        const fingerprint = async (): Promise<string> =>
          (await scs.server.store.devices.get(actedOn))?.certFingerprint ?? '';
        const oldFingerprint = await fingerprint();
        await actions.getByLabel(/^Only if it expires within/).fill('30');
        await actions.getByRole('button', { name: 'Renew TLS certificate' }).click();
        await result.and(page.locator('[data-action="renew-certificate"]')).waitFor({ timeout: 120_000 });
        assert.match(await result.innerText(), /^Not renewed: the certificate is valid until .+, beyond 30 days\.$/);
        assert.equal(await fingerprint(), oldFingerprint);
        await actions.getByLabel(/^Only if it expires within/).fill('');
        await actions.getByRole('button', { name: 'Renew TLS certificate' }).click();
        await result.filter({ hasText: /^New certificate issued/ }).waitFor({ timeout: 120_000 });
        const newFingerprint = await fingerprint();
        assert.notEqual(newFingerprint, oldFingerprint);
        // The page shows the new certificate (it reloaded the device).
        await page.locator('section[aria-labelledby="dev-cert"]').getByText(newFingerprint).waitFor();
      },
    ),
  );

  it(
    'revokes an unused PSK from the inventory after a confirmation',
    onFailure(
      () => page,
      async () => {
        await page.getByRole('link', { name: 'PSKs' }).click();
        await page.locator('#f-batch').selectOption('floor-1');
        await page.locator('#f-state').selectOption('available');
        const row = page.locator('[data-testid="psk-list"] tbody tr:has(.state-available)').first();
        await row.waitFor();
        const pid = (await row.locator('td').first().innerText()).trim();
        // A cancelled confirmation changes nothing.
        await row.getByRole('button', { name: `Revoke ${pid}` }).click();
        await page.getByTestId('psk-revoke').getByRole('button', { name: 'Cancel' }).click();
        await page.getByTestId('psk-revoke').waitFor({ state: 'detached' });
        assert.equal((await scs.server.store.psks.get(parsePid(pid)))?.state, 'available');

        await row.getByRole('button', { name: `Revoke ${pid}` }).click();
        const confirm = page.getByTestId('psk-revoke');
        await confirm.getByText('A revoked PSK cannot be restored.').waitFor();
        await confirm.getByLabel(/^Reason/).fill('browser test: spare');
        await confirm.getByRole('button', { name: `Yes, revoke ${pid}` }).click();
        await page
          .getByTestId('psk-revoke-result')
          .filter({ hasText: `PSK ${pid} revoked` })
          .waitFor();
        assert.equal((await scs.server.store.psks.get(parsePid(pid)))?.state, 'revoked');
        // The list (filtered on available) was reloaded and no longer holds it.
        await page.getByTestId('psk-list').getByRole('cell', { name: pid, exact: true }).waitFor({ state: 'detached' });
        await page.locator('#f-state').selectOption('revoked');
        await page.getByTestId('psk-list').getByRole('cell', { name: pid, exact: true }).waitFor();
        await screenshot(page, '13-psk-revoked');
      },
    ),
  );

  it(
    'partially unprovisions a device after a confirmation, and sees it provisioned again from its next hello',
    onFailure(
      () => page,
      async () => {
        await page.goto(`${scs.url}/#/devices/${actedOn}`);
        const actions = page.getByTestId('device-actions');
        await actions.waitFor();
        const succeeded = page.locator('section[aria-labelledby="dev-jobs"] tbody tr:has(.badge.state-succeeded)');
        await succeeded.first().waitFor();
        const jobsBefore = await succeeded.count();
        await actions.getByRole('button', { name: 'Partial unprovision…' }).click();
        const dialog = page.getByRole('alertdialog');
        await dialog.getByText(/back to setup mode with its renewed PSK/).waitFor();
        await dialog.getByRole('button', { name: 'Yes, partial unprovision' }).click();
        const result = page.getByTestId('device-action-result');
        await result.and(page.locator('[data-action="unprovision-partial"]')).waitFor({ timeout: 120_000 });
        // The simulated device sends hellos again; the job list updates live as it is provisioned again.
        await succeeded.nth(jobsBefore).waitFor({ timeout: 240_000 });
        assert.equal((await scs.server.store.devices.get(actedOn))?.state, 'provisioned');
        await screenshot(page, '14-device-partially-unprovisioned-and-reprovisioned');
      },
    ),
  );

  it(
    'made no request to any host but this server',
    onFailure(
      () => page,
      async () => {
        // Every page once more at a phone's width, then the whole session's requests.
        await page.setViewportSize({ width: 390, height: 844 });
        await page.emulateMedia({ colorScheme: 'dark' });
        for (const [name, heading] of [
          ['PSKs', 'Inventory'],
          ['Profiles', 'All profiles'],
          ['Devices', 'Devices'],
          ['Audit log', 'Chain verification'],
          ['Tokens', 'New token'],
        ] as const) {
          await page.getByRole('link', { name }).click();
          await page.getByRole('heading', { name: heading, exact: true }).waitFor();
        }
        await page.getByRole('link', { name: 'Dashboard' }).click();
        await page.getByTestId('device-counts').waitFor();
        await screenshot(page, '15-dashboard-phone-dark');
        assert.ok(browser.requests.length > 20, `requests were recorded (${browser.requests.length})`);
        assert.deepEqual(externalRequests(browser.requests), []);
        assert.ok(
          browser.requests.every((u) => !u.includes(adminToken)),
          'the token never appears in a URL',
        );
      },
    ),
  );
});

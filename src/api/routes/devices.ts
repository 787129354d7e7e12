import { Type, type FastifyPluginCallbackTypebox, type Static } from '@fastify/type-provider-typebox';
import { ScsError } from '../../errors.ts';
import { formatPid } from '../../psk/pid.ts';
import { DEVICE_STATES, type DeviceRow } from '../../store/provisioning/types.ts';
import { can } from '../access.ts';
import { emptyBodyIsObject, principalOf, type RouteOptions } from '../context.ts';
import { AuditEntrySchema, Nullable, problemResponse, ref, StringEnum } from '../schemas.ts';
import { auditBody } from './audit.ts';

export const DEVICE_PAGE_MAX = 1000;
const UUID = '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$';
const UuidParam = Type.Object({
  uuid: Type.String({ pattern: UUID, description: 'device UUID (text form, protocol.md §1c)' }),
});
export const DeviceStateSchema = StringEnum(DEVICE_STATES, {
  $id: 'DeviceState',
  description: 'provisioning | provisioned | failed | unverified',
});
const DateTime = Type.String({ format: 'date-time' });

export const DeviceSchema = Type.Object(
  {
    uuid: Type.String(),
    state: ref(DeviceStateSchema),
    address: Nullable(Type.String({ description: 'source address of its last hello' })),
    amtVersion: Nullable(Type.String()),
    hostName: Nullable(Type.String()),
    domainName: Nullable(Type.String()),
    profile: Nullable(Type.String()),
    adminUser: Nullable(Type.String()),
    adminPasswordEscrowed: Type.Boolean({ description: 'the server holds the admin password (reveal-password)' }),
    pid: Nullable(Type.String({ description: 'the PSK the device holds now (display form)' })),
    certificate: Nullable(
      Type.Object({
        fingerprint: Nullable(Type.String({ description: 'SHA-256 of the DER, lowercase hex' })),
        notAfter: Nullable(DateTime),
        pem: Type.Optional(Type.String({ description: 'only on GET /devices/{uuid}' })),
      }),
    ),
    lastJobId: Nullable(Type.Integer()),
    provisionedAt: Nullable(DateTime),
    createdAt: DateTime,
    updatedAt: DateTime,
  },
  { $id: 'Device' },
);

export const DeviceDetailSchema = Type.Intersect(
  [
    ref(DeviceSchema),
    Type.Object({
      history: Type.Optional(
        Type.Array(ref(AuditEntrySchema), {
          description: 'audit entries naming the device, newest first (not for viewers)',
        }),
      ),
    }),
  ],
  { $id: 'DeviceDetail' },
);

function deviceBody(d: DeviceRow, withPem: boolean): Static<typeof DeviceSchema> {
  const hasCert = d.certPem !== null || d.certFingerprint !== null;
  return {
    uuid: d.uuid,
    state: d.state,
    address: d.address,
    amtVersion: d.amtVersion,
    hostName: d.hostName,
    domainName: d.domainName,
    profile: d.profile,
    adminUser: d.adminUser,
    adminPasswordEscrowed: d.adminEscrowId !== null,
    pid: d.pid === null ? null : formatPid(d.pid),
    certificate: hasCert
      ? {
          fingerprint: d.certFingerprint,
          notAfter: d.certNotAfter?.toISOString() ?? null,
          ...(withPem && d.certPem !== null ? { pem: d.certPem } : {}),
        }
      : null,
    lastJobId: d.lastJobId,
    provisionedAt: d.provisionedAt?.toISOString() ?? null,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}

/** Devices: list, detail with history, counts; reveal the admin password (audited). */
export const deviceRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  const { store } = ctx;
  const require = async (uuid: string): Promise<DeviceRow> => {
    const d = await store.devices.get(uuid.toLowerCase());
    if (d === undefined) throw new ScsError('SCS_DEVICE_NOT_FOUND', `no device ${uuid}`, { details: { uuid } });
    return d;
  };

  app.get(
    '/devices',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['devices'],
        summary: 'Devices in UUID order, with keyset paging (pass `next` as `after`)',
        querystring: Type.Object(
          {
            state: Type.Optional(ref(DeviceStateSchema)),
            after: Type.Optional(Type.String({ pattern: UUID })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: DEVICE_PAGE_MAX, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(ref(DeviceSchema)), next: Nullable(Type.String()) }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      // The validator fills defaults in; the types cannot know.
      const limit = q.limit ?? 100;
      const rows = await store.devices.list({
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.after === undefined ? {} : { afterUuid: q.after.toLowerCase() }),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        items: page.map((d) => deviceBody(d, false)),
        next: rows.length > limit && last !== undefined ? last.uuid : null,
      };
    },
  );

  app.get(
    '/devices/stats',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['devices'],
        summary: 'Device counts by state',
        response: {
          200: Type.Object({
            counts: Type.Object(
              Object.fromEntries(DEVICE_STATES.map((s) => [s, Type.Integer()])) as Record<
                (typeof DEVICE_STATES)[number],
                ReturnType<typeof Type.Integer>
              >,
            ),
            total: Type.Integer(),
          }),
        },
      },
    },
    async () => {
      const counts = await store.devices.countByState();
      return { counts, total: Object.values(counts).reduce((a, n) => a + n, 0) };
    },
  );

  app.get(
    '/devices/:uuid',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['devices'],
        summary: 'One device with its certificate and history (history: not for viewers)',
        params: UuidParam,
        querystring: Type.Object(
          { historyLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) },
          { additionalProperties: false },
        ),
        response: { 200: ref(DeviceDetailSchema), 404: problemResponse('SCS_DEVICE_NOT_FOUND') },
      },
    },
    async (request) => {
      const d = await require(request.params.uuid);
      const body = deviceBody(d, true);
      // The history is audit data: roles without history.read (viewers) get the device alone.
      if (!can(principalOf(request), 'history.read')) return body;
      const history = await store.devices.history(d.uuid, request.query.historyLimit ?? 100);
      return { ...body, history: history.map(auditBody) };
    },
  );

  app.post(
    '/devices/:uuid/reveal-password',
    {
      config: { permission: 'secret.reveal' },
      preValidation: emptyBodyIsObject,
      schema: {
        tags: ['devices'],
        summary: 'Reveal the admin user and password the device uses (audited device.reveal_password)',
        params: UuidParam,
        body: Type.Object(
          {
            reason: Type.Optional(
              Type.String({ minLength: 1, maxLength: 200, description: 'recorded in the audit entry' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ uuid: Type.String(), username: Type.String(), password: Type.String() }),
          404: problemResponse('SCS_DEVICE_NOT_FOUND (or no escrowed password)'),
        },
      },
    },
    async (request) => {
      const { actor } = principalOf(request);
      const d = await require(request.params.uuid);
      const reason = request.body.reason;
      const r = await store.devices.revealAdminPassword(d.uuid, { actor, ...(reason === undefined ? {} : { reason }) });
      return { uuid: r.uuid, username: r.username, password: r.password.reveal() };
    },
  );
  done();
};

export const DEVICE_SCHEMAS = [DeviceStateSchema, DeviceSchema, DeviceDetailSchema];

import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import { createCaMaterial, loadCa } from '../../crypto/ca.ts';
import {
  renewCertificate,
  rotatePassword,
  syncTime,
  unprovisionDevice,
  type DeviceOpsDeps,
} from '../../maintenance/device-ops.ts';
import { createDeviceCertificateIssuer } from '../../provisioning/device-certificate.ts';
import { ScsError } from '../../errors.ts';
import { emptyBodyIsObject, principalOf, type RouteOptions } from '../context.ts';
import { problemResponse } from '../schemas.ts';

const UUID = '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$';
const UuidParam = Type.Object({ uuid: Type.String({ pattern: UUID, description: 'device UUID' }) });

const ERRORS = {
  404: problemResponse('SCS_DEVICE_NOT_FOUND'),
  409: problemResponse('SCS_DEVICE_STATE_INVALID: not provisioned, or no way to reach it'),
  502: problemResponse('SCS_TLS_* / SCS_AMT_*: the device could not be reached or refused'),
};

/**
 * Device actions after provisioning (docs/pki.md, "After provisioning"): unprovision, rotate the
 * admin password, renew the TLS certificate, re-sync the clock. Each needs `device.write` and
 * is audited by the service (src/maintenance/device-ops.ts) under the token's name.
 */
export const deviceActionRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  const { store, log } = ctx;
  const amt = ctx.config;
  const deps = async (actor: string, uuid: string): Promise<DeviceOpsDeps> => {
    // An unknown device is a 404 before anything else happens (no CA is made for it).
    if ((await store.devices.get(uuid)) === undefined) {
      throw new ScsError('SCS_DEVICE_NOT_FOUND', `no device ${uuid}`, { details: { uuid } });
    }
    const stored = await store.ca.get();
    const material = stored ?? (await store.ca.create(await createCaMaterial(), { actor })).material;
    return {
      store,
      ca: await loadCa(material),
      issuer: createDeviceCertificateIssuer(material),
      config: amt,
      log,
      actor,
    };
  };

  app.post(
    '/devices/:uuid/unprovision',
    {
      config: { permission: 'device.write' },
      preValidation: emptyBodyIsObject,
      schema: {
        tags: ['devices'],
        summary:
          'Unprovision a device: full, or partial (back to setup mode with its renewed PSK; re-provisioned from its next hello). Audited device.unprovision',
        params: UuidParam,
        body: Type.Object({ partial: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 200: Type.Object({ uuid: Type.String(), partial: Type.Boolean() }), ...ERRORS },
      },
    },
    async (request) => {
      const { actor } = principalOf(request);
      const uuid = request.params.uuid.toLowerCase();
      const partial = request.body.partial === true;
      await unprovisionDevice(await deps(actor, uuid), uuid, { partial });
      return { uuid, partial };
    },
  );

  app.post(
    '/devices/:uuid/rotate-password',
    {
      config: { permission: 'device.write' },
      schema: {
        tags: ['devices'],
        summary: 'Set a new random admin password (escrowed first, checked). Audited device.rotate_password',
        params: UuidParam,
        response: { 200: Type.Object({ uuid: Type.String(), escrowId: Type.Integer() }), ...ERRORS },
      },
    },
    async (request) => {
      const { actor } = principalOf(request);
      const uuid = request.params.uuid.toLowerCase();
      const r = await rotatePassword(await deps(actor, uuid), uuid);
      return { uuid, escrowId: r.escrowId };
    },
  );

  app.post(
    '/devices/:uuid/renew-certificate',
    {
      config: { permission: 'device.write' },
      preValidation: emptyBodyIsObject,
      schema: {
        tags: ['devices'],
        summary: 'Issue a new TLS certificate for a new device key and switch to it. Audited device.renew_certificate',
        params: UuidParam,
        body: Type.Object(
          {
            withinDays: Type.Optional(
              Type.Integer({ minimum: 0, maximum: 3650, description: 'only if it expires within this many days' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            uuid: Type.String(),
            renewed: Type.Boolean(),
            notAfter: Type.Union([Type.String(), Type.Null()]),
          }),
          ...ERRORS,
        },
      },
    },
    async (request) => {
      const { actor } = principalOf(request);
      const uuid = request.params.uuid.toLowerCase();
      const r = await renewCertificate(await deps(actor, uuid), uuid, { withinDays: request.body.withinDays ?? 0 });
      return { uuid, renewed: r.renewed, notAfter: r.notAfter?.toISOString() ?? null };
    },
  );

  app.post(
    '/devices/:uuid/sync-time',
    {
      config: { permission: 'device.write' },
      schema: {
        tags: ['devices'],
        summary: 'Set the device clock from the server. Audited device.time_sync',
        params: UuidParam,
        response: { 200: Type.Object({ uuid: Type.String(), offsetSeconds: Type.Integer() }), ...ERRORS },
      },
    },
    async (request) => {
      const { actor } = principalOf(request);
      const uuid = request.params.uuid.toLowerCase();
      const r = await syncTime(await deps(actor, uuid), uuid);
      return { uuid, offsetSeconds: r.offsetSeconds };
    },
  );
  done();
};

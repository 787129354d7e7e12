import {
  Type,
  type FastifyPluginCallbackTypebox,
  type Static,
  type TBoolean,
  type TOptional,
} from '@fastify/type-provider-typebox';
import { isScsError, ScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import {
  PROFILE_SECRET_NAMES,
  type ProfileInput,
  type ProfileRow,
  type ProfileSecretName,
} from '../../store/provisioning/profile.ts';
import { principalOf, type RouteOptions } from '../context.ts';
import { checkIfMatch, etagOf, noneMatch } from '../etag.ts';
import { BatchSchema, problemResponse, ref, StringEnum } from '../schemas.ts';
import { batchBody } from './batches.ts';

const ProfileName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' });

/** Field by field, as src/store/provisioning/profile.ts validates them (it checks again, deeper). */
const settingsFields = {
  adminUser: Type.String({
    minLength: 1,
    maxLength: 16,
    pattern: '^[\\x21-\\x7e]{1,16}$',
    description: 'admin account set with SetAdminAclEntryEx: 1-16 printable ASCII, no spaces',
  }),
  adminPassword: StringEnum(['random', 'fixed'], {
    description: 'random: a strong password per device, escrowed; fixed: secrets.adminPassword',
  }),
  mebxPassword: StringEnum(['keep', 'random', 'fixed'], {
    description: 'keep: no SetMEBxPassword; random per device (escrowed); fixed: secrets.newMebxPassword',
  }),
  hostNamePattern: Type.String({
    minLength: 1,
    maxLength: 255,
    description: 'DNS label with placeholders {uuid}, {uuid8}, {hostname}; e.g. amt-{uuid8}',
  }),
  domainName: Type.String({ maxLength: 255, description: 'DNS domain to set; empty keeps the device one' }),
  timeSync: Type.Boolean(),
  tls: Type.Boolean({ description: 'device TLS certificate from the SCS CA, TLS on' }),
  certificateValidityDays: Type.Integer({ minimum: 1, maximum: 3650 }),
  renewPsk: Type.Boolean({ description: 'SetTLSPSK with a new PSK from the store' }),
  onNoRenewalPsk: StringEnum(['fail', 'skip']),
};

export const ProfileSettingsSchema = Type.Object(settingsFields, {
  $id: 'ProfileSettings',
  additionalProperties: false,
});
const SettingsChanges = Type.Partial(Type.Object(settingsFields, { additionalProperties: false }));

const SecretValue = Type.String({ minLength: 1, maxLength: 32, writeOnly: true });
const secretDescriptions: Record<ProfileSecretName, string> = {
  currentMebxPassword: 'the MEBx password the devices have now (the Digest password in setup mode)',
  adminPassword: 'the fixed admin password (adminPassword: fixed); strong AMT password',
  newMebxPassword: 'the fixed new MEBx password (mebxPassword: fixed); strong AMT password',
};
const SecretsCreate = Type.Object(
  Object.fromEntries(
    PROFILE_SECRET_NAMES.map((n) => [n, Type.Optional({ ...SecretValue, description: secretDescriptions[n] })]),
  ) as Record<ProfileSecretName, TOptional<typeof SecretValue>>,
  { additionalProperties: false, description: 'write-only: responses only say which are set; absent keeps a secret' },
);
/**
 * Removing a secret is its own list rather than `null`: the validator coerces types for query
 * strings, and would read "" or false as null (a removal nobody asked for).
 */
const RemoveSecrets = Type.Array(StringEnum(PROFILE_SECRET_NAMES), {
  uniqueItems: true,
  maxItems: PROFILE_SECRET_NAMES.length,
  description: 'secrets to remove',
});

export const ProfileSchema = Type.Object(
  {
    name: Type.String(),
    settings: ref(ProfileSettingsSchema),
    secretsSet: Type.Object(
      Object.fromEntries(PROFILE_SECRET_NAMES.map((n) => [n, Type.Boolean()])) as Record<ProfileSecretName, TBoolean>,
    ),
    version: Type.Integer({ description: 'also the ETag ("<version>")' }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Profile' },
);

function profileBody(p: ProfileRow): Static<typeof ProfileSchema> {
  return {
    name: p.name,
    settings: { ...p.settings },
    secretsSet: { ...p.secretsSet },
    version: p.version,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

function profileInput(
  settings: Readonly<Record<string, unknown>> | undefined,
  secrets: Partial<Record<ProfileSecretName, string>> | undefined,
  remove: readonly ProfileSecretName[] = [],
): ProfileInput {
  const sealed: Partial<Record<ProfileSecretName, Secret<string> | null>> = {};
  for (const name of PROFILE_SECRET_NAMES) {
    const v = secrets?.[name];
    if (v !== undefined && remove.includes(name)) {
      throw new ScsError('SCS_ARGUMENT_INVALID', `secret ${name} is both set and removed`, {
        details: { field: `body/removeSecrets` },
      });
    }
    if (v !== undefined) sealed[name] = new Secret(v);
    else if (remove.includes(name)) sealed[name] = null;
  }
  return { ...(settings === undefined ? {} : { settings }), secrets: sealed };
}

const IfMatch = Type.Object({
  'if-match': Type.Optional(Type.String({ description: 'the ETag from GET: "<version>"' })),
});
const etagHeader = { ETag: { type: 'string', description: '"<version>"' } };

/** Provisioning profiles: CRUD with field validation and ETag / If-Match; batches bound to them. */
export const profileRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  const { store } = ctx;

  app.get(
    '/profiles',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['profiles'],
        summary: 'Every provisioning profile (secrets only as set / not set)',
        response: { 200: Type.Object({ items: Type.Array(ref(ProfileSchema)) }) },
      },
    },
    async () => ({ items: (await store.profiles.list()).map(profileBody) }),
  );

  app.get(
    '/profiles/:name',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['profiles'],
        summary: 'One profile, with its ETag (send it back in If-Match to change the profile)',
        params: Type.Object({ name: ProfileName }),
        headers: Type.Object({ 'if-none-match': Type.Optional(Type.String()) }),
        response: {
          200: { ...ref(ProfileSchema), headers: etagHeader },
          304: { type: 'null', description: 'If-None-Match matched the current ETag' },
          404: problemResponse('SCS_PROFILE_NOT_FOUND'),
        },
      },
    },
    async (request, reply) => {
      const p = await store.profiles.require(request.params.name);
      reply.header('etag', etagOf(p.version));
      if (noneMatch(request.headers['if-none-match'], p.version)) return reply.code(304).send();
      return profileBody(p);
    },
  );

  app.post(
    '/profiles',
    {
      config: { permission: 'profile.write' },
      schema: {
        tags: ['profiles'],
        summary: 'Create a profile: unset settings take the defaults (audited profile.create)',
        body: Type.Object(
          { name: ProfileName, settings: Type.Optional(SettingsChanges), secrets: Type.Optional(SecretsCreate) },
          { additionalProperties: false },
        ),
        response: {
          201: { ...ref(ProfileSchema), headers: etagHeader },
          409: problemResponse('SCS_PROFILE_CONFLICT: the name exists'),
        },
      },
    },
    async (request, reply) => {
      const { actor } = principalOf(request);
      const { name, settings, secrets } = request.body;
      const p = await store.profiles.create(name, profileInput(settings, secrets), { actor });
      return reply
        .code(201)
        .header('etag', etagOf(p.version))
        .header('location', `/api/v1/profiles/${encodeURIComponent(p.name)}`)
        .send(profileBody(p));
    },
  );

  app.patch(
    '/profiles/:name',
    {
      config: { permission: 'profile.write' },
      schema: {
        tags: ['profiles'],
        summary: 'Change some settings and/or secrets; needs If-Match (audited profile.update)',
        description: 'Without If-Match: 428. With an ETag that is not current (someone changed it): 412.',
        params: Type.Object({ name: ProfileName }),
        headers: IfMatch,
        body: Type.Object(
          {
            settings: Type.Optional(SettingsChanges),
            secrets: Type.Optional(SecretsCreate),
            removeSecrets: Type.Optional(RemoveSecrets),
          },
          { additionalProperties: false },
        ),
        response: {
          200: { ...ref(ProfileSchema), headers: etagHeader },
          404: problemResponse('SCS_PROFILE_NOT_FOUND'),
          412: problemResponse('SCS_PRECONDITION_FAILED'),
          428: problemResponse('SCS_PRECONDITION_REQUIRED'),
        },
      },
    },
    async (request, reply) => {
      const { actor } = principalOf(request);
      const { name } = request.params;
      const current = await store.profiles.require(name);
      const expectedVersion = checkIfMatch(request.headers['if-match'], current.version, `profile "${name}"`);
      let p: ProfileRow;
      try {
        p = await store.profiles.update(
          name,
          profileInput(request.body.settings, request.body.secrets, request.body.removeSecrets),
          {
            actor,
            expectedVersion,
          },
        );
      } catch (e) {
        // Changed between our read and the update: the same answer as a stale If-Match.
        if (isScsError(e, 'SCS_PROFILE_CONFLICT')) {
          throw new ScsError('SCS_PRECONDITION_FAILED', `profile "${name}" changed since it was read`, { cause: e });
        }
        throw e;
      }
      return reply.header('etag', etagOf(p.version)).send(profileBody(p));
    },
  );

  app.delete(
    '/profiles/:name',
    {
      config: { permission: 'profile.write' },
      schema: {
        tags: ['profiles'],
        summary: 'Delete a profile; needs If-Match. The default profile and profiles bound to a batch stay.',
        params: Type.Object({ name: ProfileName }),
        headers: IfMatch,
        response: {
          204: { type: 'null', description: 'deleted' },
          404: problemResponse('SCS_PROFILE_NOT_FOUND'),
          412: problemResponse('SCS_PRECONDITION_FAILED'),
          428: problemResponse('SCS_PRECONDITION_REQUIRED'),
        },
      },
    },
    async (request, reply) => {
      const { actor } = principalOf(request);
      const { name } = request.params;
      const current = await store.profiles.require(name);
      checkIfMatch(request.headers['if-match'], current.version, `profile "${name}"`);
      await store.profiles.delete(name, { actor });
      return reply.code(204).send();
    },
  );

  app.put(
    '/batches/:name/profile',
    {
      config: { permission: 'profile.write' },
      schema: {
        tags: ['batches'],
        summary: 'Bind a PSK batch to a profile (null: the server default) (audited profile.bind)',
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }),
        body: Type.Object({ profile: Type.Union([ProfileName, Type.Null()]) }, { additionalProperties: false }),
        response: { 200: ref(BatchSchema), 404: problemResponse('SCS_BATCH_NOT_FOUND or SCS_PROFILE_NOT_FOUND') },
      },
    },
    async (request) => {
      const { actor } = principalOf(request);
      const { name } = request.params;
      await store.profiles.bindBatch(name, request.body.profile, { actor });
      const b = (await store.batches.list()).find((x) => x.name === name);
      if (b === undefined) throw new ScsError('SCS_BATCH_NOT_FOUND', `no batch named "${name}"`);
      return batchBody(b);
    },
  );
  done();
};

export const PROFILE_SCHEMAS = [ProfileSettingsSchema, ProfileSchema];

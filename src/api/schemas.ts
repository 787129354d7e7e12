import { Type, type SchemaOptions, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { PSK_STATES } from '../store/lifecycle.ts';
import { API_GRANTS, API_ROLES } from '../store/tokens/tokens.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';

/** Shared TypeBox schemas: the OpenAPI components the console and other clients code against. */

/** A string enum as `{ type: string, enum: [...] }`: plainer in OpenAPI (and generated clients) than anyOf of consts. */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: SchemaOptions = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}

/** A `$ref` to a shared schema (added with app.addSchema), typed as the schema it names. */
export function ref<T extends TSchema>(schema: T): TUnsafe<Static<T>> {
  const id = schema.$id;
  if (id === undefined) throw new Error('ref() needs a schema with an $id');
  return Type.Unsafe<Static<T>>(Type.Ref(id));
}

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'urn:amt-scs:error:<code>' }),
    title: Type.String({ description: 'meaning of the code (docs/errors.md)' }),
    status: Type.Integer(),
    detail: Type.String({ description: 'what went wrong this time; never a secret' }),
    code: Type.String({ description: 'stable error code, docs/errors.md' }),
    details: Type.Optional(
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])),
    ),
    errors: Type.Optional(
      Type.Array(Type.Object({ field: Type.String({ description: 'e.g. body/count' }), message: Type.String() })),
    ),
    requestId: Type.Optional(Type.String()),
  },
  { $id: 'Problem', title: 'Problem (RFC 9457)' },
);

/** A response documented as application/problem+json (the serializer is problem.ts's). */
export function problemResponse(description: string) {
  return {
    description,
    content: { [PROBLEM_CONTENT_TYPE]: { schema: ref(ProblemSchema) } },
  };
}

export const PskStateSchema = StringEnum(PSK_STATES, {
  $id: 'PskState',
  description: 'available | exported | in_use | consumed | revoked | transferred',
});

export const PskCountsSchema = Type.Object(
  Object.fromEntries(PSK_STATES.map((s) => [s, Type.Integer({ minimum: 0 })])) as Record<
    (typeof PSK_STATES)[number],
    ReturnType<typeof Type.Integer>
  >,
  { $id: 'PskCounts', additionalProperties: false },
);

/** PID as typed by people: 8 characters, or XXXX-XXXX, any case, surrounding spaces trimmed by the parser. */
export const PidInput = Type.String({ minLength: 8, maxLength: 20, description: 'PID, XXXX-XXXX or 8 characters' });

export const DateTime = Type.String({ format: 'date-time' });
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const PskSchema = Type.Object(
  {
    id: Type.Integer({ description: 'insertion order; the paging cursor' }),
    pid: Type.String({ description: 'display form XXXX-XXXX' }),
    batch: Type.String(),
    state: ref(PskStateSchema),
    priorState: Nullable(ref(PskStateSchema)),
    deviceUuid: Nullable(Type.String()),
    createdAt: DateTime,
    updatedAt: DateTime,
  },
  { $id: 'Psk', description: 'A PSK without its passphrase' },
);
export type PskBody = Static<typeof PskSchema>;

export const BatchSchema = Type.Object(
  {
    name: Type.String(),
    createdAt: DateTime,
    profile: Nullable(Type.String({ description: 'bound provisioning profile; null = the server default' })),
    counts: ref(PskCountsSchema),
    total: Type.Integer(),
  },
  { $id: 'Batch' },
);

export const AuditEntrySchema = Type.Object(
  {
    seq: Type.Integer(),
    at: DateTime,
    actor: Type.String({ description: 'cli:<user>, api:<token name>, bootstrap, or a server component' }),
    action: Type.String(),
    pids: Type.Array(Type.String(), { description: 'display forms' }),
    detail: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])),
    hash: Type.String(),
  },
  { $id: 'AuditEntry' },
);

export const TokenSchema = Type.Object(
  {
    name: Type.String(),
    role: StringEnum(API_ROLES),
    grants: Type.Array(StringEnum(API_GRANTS)),
    createdAt: DateTime,
    createdBy: Type.String(),
    lastUsedAt: Nullable(DateTime),
    revokedAt: Nullable(DateTime),
  },
  { $id: 'Token', description: 'An API token without the token itself' },
);

export const TaskSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.String({ description: 'psk.generate, ...' }),
    state: StringEnum(['running', 'succeeded', 'failed', 'cancelled']),
    actor: Type.String(),
    done: Type.Integer(),
    total: Type.Integer(),
    startedAt: DateTime,
    finishedAt: Nullable(DateTime),
    result: Nullable(
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])),
    ),
    error: Nullable(Type.Object({ code: Type.String(), detail: Type.String() })),
  },
  { $id: 'Task' },
);

/** Registered with app.addSchema so routes and the OpenAPI document share one definition. */
export const SHARED_SCHEMAS: readonly TSchema[] = [
  ProblemSchema,
  PskStateSchema,
  PskCountsSchema,
  PskSchema,
  BatchSchema,
  AuditEntrySchema,
  TokenSchema,
  TaskSchema,
];

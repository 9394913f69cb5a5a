import { DataKindSchema, ERROR_KINDS, type Static, Type } from '@nvisy/provider-core'
import {
  ConnectionSpecSchema,
  JsonObject,
  NodeIdSchema,
  PipelineIdSchema,
  PipelineSchema,
  ProviderIdSchema,
} from './pipeline.js'
import { RUN_ID_PATTERN } from './subjects.js'

// Messages the runtime receives are strict (an unknown property is refused, which catches
// typos on the sender's side). Messages the runtime sends allow unknown properties, so a
// field added in v1 does not break a reader built against an older copy of the schemas.
const strict = { additionalProperties: false } as const
const open = { additionalProperties: true } as const

export const RunIdSchema = Type.String({
  pattern: RUN_ID_PATTERN,
  description: 'run id: a UUID or [A-Za-z0-9_-]{1,128}',
})

/** The id of one check or discover request: what its sealed credentials are bound to. */
export const RequestIdSchema = Type.String({
  pattern: RUN_ID_PATTERN,
  description:
    'request id, unique per request: a UUID or [A-Za-z0-9_-]{1,128}; required when the connection carries sealedCredentials (they are bound to it)',
})

/** `validation` (a message that does not match its schema) and provider-core's error kinds. */
export const PROTOCOL_ERROR_KINDS = ['validation', ...ERROR_KINDS] as const
export type ProtocolErrorKind = (typeof PROTOCOL_ERROR_KINDS)[number]

export const ErrorKindSchema = Type.Union(PROTOCOL_ERROR_KINDS.map((kind) => Type.Literal(kind)))

export const ValidationIssueSchema = Type.Object(
  {
    path: Type.String({ description: 'JSON pointer to the failing field' }),
    rule: Type.String({ description: 'the JSON Schema keyword that failed' }),
    message: Type.String(),
  },
  open,
)

/** A ProviderError as JSON (provider-core `SerializedProviderError`), or a protocol error. */
export const SerializedErrorSchema = Type.Object(
  {
    kind: ErrorKindSchema,
    message: Type.String(),
    providerId: Type.Optional(Type.String()),
    operation: Type.Optional(Type.String()),
    stream: Type.Optional(Type.String()),
    cursor: Type.Optional(Type.Unknown()),
    retryAfterMs: Type.Optional(Type.Number({ minimum: 0 })),
    code: Type.Optional(Type.String()),
    issues: Type.Optional(Type.Array(ValidationIssueSchema)),
  },
  open,
)
export type SerializedError = Static<typeof SerializedErrorSchema>

/** The reply to any request that failed. */
export const ErrorReplySchema = Type.Object({ error: SerializedErrorSchema }, open)
export type ErrorReply = Static<typeof ErrorReplySchema>

// providers ---------------------------------------------------------------------------

export const ProvidersRequestSchema = Type.Object({}, strict)
export type ProvidersRequest = Static<typeof ProvidersRequestSchema>

export const CapabilitiesSchema = Type.Object(
  {
    read: Type.Boolean(),
    write: Type.Boolean(),
    discover: Type.Boolean(),
    incremental: Type.Boolean(),
    delete: Type.Boolean(),
    partition: Type.Optional(
      Type.Boolean({
        description:
          'the source splits a stream into disjoint partitions (provider-core `partition`); absent from runtimes that predate it',
      }),
    ),
    sourceData: Type.Array(DataKindSchema),
    sinkData: Type.Array(DataKindSchema),
  },
  open,
)

const JsonSchemaObject = JsonObject({ description: 'a JSON Schema', maxProperties: 10_000 })

/** provider-core `provider.describe()` as JSON. */
export const ProviderDescriptionSchema = Type.Object(
  {
    id: ProviderIdSchema,
    version: Type.String({ minLength: 1 }),
    specificationVersion: Type.String({ minLength: 1 }),
    displayName: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    capabilities: CapabilitiesSchema,
    ordering: Type.Optional(Type.String()),
    idempotentBy: Type.Optional(Type.String()),
    schemas: Type.Object(
      {
        credentials: JsonSchemaObject,
        params: JsonSchemaObject,
        sourceStream: Type.Optional(JsonSchemaObject),
        context: Type.Optional(JsonSchemaObject),
        sinkStream: Type.Optional(JsonSchemaObject),
      },
      open,
    ),
  },
  open,
)

export const ProvidersReplySchema = Type.Object(
  {
    runtime: Type.Object(
      {
        id: Type.String({ minLength: 1, description: 'the runtime instance id' }),
        version: Type.String({ minLength: 1 }),
        publicKey: Type.String({
          pattern: '^X[A-Z2-7]{55}$',
          description: 'the runtime xkey (curve) public key that credentials are sealed to',
        }),
      },
      open,
    ),
    providers: Type.Array(ProviderDescriptionSchema),
  },
  open,
)
export type ProvidersReply = Static<typeof ProvidersReplySchema>

// check / discover --------------------------------------------------------------------

export const CheckRequestSchema = Type.Object(
  {
    requestId: Type.Optional(RequestIdSchema),
    provider: ProviderIdSchema,
    connection: ConnectionSpecSchema,
  },
  strict,
)
export type CheckRequest = Static<typeof CheckRequestSchema>

export const CheckReplySchema = Type.Object(
  { ok: Type.Literal(true), latencyMs: Type.Number({ minimum: 0 }) },
  open,
)
export type CheckReply = Static<typeof CheckReplySchema>

export const DiscoverRequestSchema = Type.Object(
  {
    requestId: Type.Optional(RequestIdSchema),
    provider: ProviderIdSchema,
    connection: ConnectionSpecSchema,
  },
  strict,
)
export type DiscoverRequest = Static<typeof DiscoverRequestSchema>

export const StreamInfoSchema = Type.Object(
  {
    name: Type.String(),
    type: Type.String(),
    data: DataKindSchema,
    stream: JsonObject(),
    fields: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String(),
            type: Type.String(),
            nullable: Type.Optional(Type.Boolean()),
            primaryKey: Type.Optional(Type.Boolean()),
          },
          open,
        ),
      ),
    ),
    description: Type.Optional(Type.String()),
  },
  open,
)

export const DiscoverReplySchema = Type.Object({ streams: Type.Array(StreamInfoSchema) }, open)
export type DiscoverReply = Static<typeof DiscoverReplySchema>

// runs --------------------------------------------------------------------------------

export const RunsStartRequestSchema = Type.Object(
  {
    runId: RunIdSchema,
    pipeline: PipelineSchema,
    resume: Type.Optional(
      Type.Boolean({ description: 'start each source after its stored checkpoint; default true' }),
    ),
    partitions: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: 1024 }), Type.Literal('auto')], {
        description:
          'split the pipeline\'s single source into up to this many partitions ("auto": 16; the source may return fewer, and one when it cannot split), read across every instance of the queue group from a JetStream work queue, each with its own checkpoint; a resumed run resumes the stored plan',
      }),
    ),
  },
  strict,
)
export type RunsStartRequest = Static<typeof RunsStartRequestSchema>

export const RunsStartReplySchema = Type.Object(
  {
    accepted: Type.Literal(true),
    runId: RunIdSchema,
    instanceId: Type.String({ minLength: 1 }),
    plan: Type.Optional(
      Type.Object(
        {
          planId: Type.Optional(
            Type.String({
              pattern: '^[0-9a-f]{8}$',
              description: 'absent when the source cannot split: the run is read as one',
            }),
          ),
          requested: Type.Integer({ minimum: 1, maximum: 1024 }),
          count: Type.Integer({ minimum: 1, maximum: 1024 }),
          pending: Type.Integer({ minimum: 0, description: 'partitions put on the work queue' }),
          reason: Type.Optional(
            Type.String({ description: 'why fewer partitions than asked for' }),
          ),
          resumed: Type.Boolean({ description: 'a stored plan is resumed' }),
        },
        { additionalProperties: true, description: 'a partitioned run: the plan' },
      ),
    ),
  },
  open,
)
export type RunsStartReply = Static<typeof RunsStartReplySchema>

export const CancelRequestSchema = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 1024 })) },
  strict,
)
export type CancelRequest = Static<typeof CancelRequestSchema>

export const CancelReplySchema = Type.Object({ cancelled: Type.Literal(true) }, open)
export type CancelReply = Static<typeof CancelReplySchema>

// checkpoints -------------------------------------------------------------------------

/** The value stored under `<pipelineId>.<nodeId>` in the checkpoint bucket. */
export const CheckpointValueSchema = Type.Object(
  {
    context: Type.Unknown({ description: "the source's resume context: read after this item" }),
    runId: RunIdSchema,
    at: Type.String({ format: 'date-time' }),
  },
  open,
)
export type CheckpointValue = Static<typeof CheckpointValueSchema>

// sealed credentials (v2) ---------------------------------------------------------------

/** The version of the sealed plaintext; v1 (bare credentials JSON) is refused. */
export const SEALED_CREDENTIALS_VERSION = 2
/** The KV bucket where runtime instances record each opened nonce (replay protection). */
export const CREDENTIAL_NONCE_BUCKET = 'nvisy-credential-nonces'
/** Longest validity a runtime accepts by default: `expiresAt` at most this far ahead (plus skew). */
export const DEFAULT_CREDENTIAL_MAX_VALIDITY_MS = 15 * 60_000
/** Clock difference tolerated between the server and a runtime. */
export const CREDENTIAL_CLOCK_SKEW_MS = 60_000

const bindingCommon = {
  provider: ProviderIdSchema,
  destination: Type.String({
    pattern: '^[0-9a-f]{64}$',
    description:
      "hex SHA-256 of the canonical JSON of the connection's destination params (provider-core destinationDigest)",
  }),
  expiresAt: Type.Integer({
    minimum: 0,
    description: 'unix time in milliseconds after which the runtime refuses the blob',
  }),
  nonce: Type.String({
    pattern: '^[A-Za-z0-9+/]{22}==$',
    description: 'base64 of 16 random bytes, never reused: each nonce is opened once',
  }),
}

/** A blob sealed for one node of one run (runs.start). */
export const RunCredentialBindingSchema = Type.Object(
  { operation: Type.Literal('run'), runId: RunIdSchema, nodeId: NodeIdSchema, ...bindingCommon },
  strict,
)

/** A blob sealed for one check or discover request. */
export const RequestCredentialBindingSchema = Type.Object(
  {
    operation: Type.Union([Type.Literal('check'), Type.Literal('discover')]),
    requestId: RequestIdSchema,
    connectionId: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'present exactly when the request connection has a connectionId, equal to it',
      }),
    ),
    ...bindingCommon,
  },
  strict,
)

export const CredentialBindingSchema = Type.Union([
  RunCredentialBindingSchema,
  RequestCredentialBindingSchema,
])
export type CredentialBinding = Static<typeof CredentialBindingSchema>

/**
 * What the server seals (xkey, to the runtime's public key), as canonical JSON (keys sorted
 * at every level, no white space): the base64 of the sealed bytes is `sealedCredentials`.
 */
export const SealedCredentialsPlaintextSchema = Type.Object(
  {
    v: Type.Literal(SEALED_CREDENTIALS_VERSION),
    binding: CredentialBindingSchema,
    credentials: JsonObject({
      description: "the credentials, valid against the provider's schema",
    }),
  },
  strict,
)
export type SealedCredentialsPlaintext = Static<typeof SealedCredentialsPlaintextSchema>

export { NodeIdSchema, PipelineIdSchema }

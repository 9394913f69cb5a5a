import { type DataKind, Destination, Secret, type Static, Type } from '@nvisy/provider-core'

/** Redis ACL credentials. Both are optional: a server without auth takes none. */
export const RedisCredentialsSchema = Type.Object(
  {
    username: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'ACL user name (Redis 6+). Omit for the default user.',
      }),
    ),
    password: Type.Optional(
      Secret(Type.String({ minLength: 1, description: 'Password of the user' })),
    ),
  },
  { additionalProperties: false },
)
export type RedisCredentials = Static<typeof RedisCredentialsSchema>

const Port = Type.Integer({ minimum: 1, maximum: 65535 })

export const RedisTlsSchema = Type.Union([
  Type.Boolean({ description: 'true: TLS with the system trust store' }),
  Type.Object(
    {
      ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate(s) to trust' })),
      servername: Type.Optional(
        Type.String({ minLength: 1, description: 'SNI and certificate host name' }),
      ),
      rejectUnauthorized: Type.Optional(
        Type.Boolean({ default: true, description: 'Refuse a certificate that does not verify' }),
      ),
    },
    { additionalProperties: false },
  ),
])

export const RedisParamsSchema = Type.Object(
  {
    host: Destination(
      Type.String({
        minLength: 1,
        default: '127.0.0.1',
        description: 'Server host name or address',
      }),
    ),
    port: Destination(Type.Integer({ minimum: 1, maximum: 65535, default: 6379 })),
    db: Destination(
      Type.Integer({
        minimum: 0,
        default: 0,
        description: 'Logical database number (standalone only: a cluster has db 0 alone)',
      }),
    ),
    tls: Destination(Type.Optional(RedisTlsSchema)),
    cluster: Destination(
      Type.Optional(
        Type.Array(
          Type.Object(
            { host: Type.String({ minLength: 1 }), port: Port },
            { additionalProperties: false },
          ),
          {
            minItems: 1,
            description:
              'Seed nodes of a Redis Cluster; when set, host/port are ignored and ioredis Cluster is used',
          },
        ),
      ),
    ),
    connectTimeoutMs: Type.Integer({ minimum: 100, default: 10_000 }),
    commandTimeoutMs: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Fail a command that gets no reply in this time' }),
    ),
  },
  { additionalProperties: false },
)
export type RedisParams = Static<typeof RedisParamsSchema>

const Count = Type.Integer({
  minimum: 1,
  maximum: 100_000,
  description: 'Items fetched per round trip',
})
const StreamKey = Type.String({ minLength: 1, description: 'The Redis stream key' })
const Prefix = Type.String({
  minLength: 1,
  description: 'Key prefix; a document id is its key without it',
})

export const RedisMessageStreamSchema = Type.Object(
  { kind: Type.Literal('stream'), key: StreamKey, count: Type.Optional(Count) },
  { additionalProperties: false },
)
export const RedisDocumentStreamSchema = Type.Object(
  { kind: Type.Literal('document'), prefix: Prefix, count: Type.Optional(Count) },
  { additionalProperties: false },
)
/** Source stream settings: a Redis stream read as messages, or JSON string keys under a prefix. */
export const RedisStreamSchema = Type.Union([RedisMessageStreamSchema, RedisDocumentStreamSchema])
export type RedisStream = Static<typeof RedisStreamSchema>
export type RedisMessageStream = Static<typeof RedisMessageStreamSchema>
export type RedisDocumentStream = Static<typeof RedisDocumentStreamSchema>

export const DEFAULT_DEDUPE_TTL_SECONDS = 24 * 60 * 60

export const RedisMessageSinkSchema = Type.Object(
  {
    kind: Type.Literal('stream'),
    key: StreamKey,
    dedupeTtlSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: `How long a written message id is remembered for deduplication (default ${DEFAULT_DEDUPE_TTL_SECONDS}: 24 h)`,
      }),
    ),
    maxLen: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Trim the stream to about this many entries (XADD MAXLEN ~)',
      }),
    ),
  },
  { additionalProperties: false },
)
export const RedisDocumentSinkSchema = Type.Object(
  {
    kind: Type.Literal('document'),
    prefix: Prefix,
    ttlSeconds: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Expire written keys after this long' }),
    ),
  },
  { additionalProperties: false },
)
/** Sink stream settings. */
export const RedisSinkStreamSchema = Type.Union([RedisMessageSinkSchema, RedisDocumentSinkSchema])
export type RedisSinkStream = Static<typeof RedisSinkStreamSchema>
export type RedisMessageSink = Static<typeof RedisMessageSinkSchema>
export type RedisDocumentSink = Static<typeof RedisDocumentSinkSchema>

/** Resume after a stream entry. */
export const RedisMessageContextSchema = Type.Object(
  { id: Type.String({ pattern: '^[0-9]+-[0-9]+$', description: 'Stream entry id <ms>-<seq>' }) },
  { additionalProperties: false },
)
/**
 * Resume inside a SCAN: `cursor` is the SCAN cursor that produced the page the item came
 * from, `next` the cursor that page returned, `key` the item's key; in a cluster, `node` is
 * the master (host:port) being scanned.
 */
export const RedisDocumentContextSchema = Type.Object(
  {
    cursor: Type.String({ pattern: '^[0-9]+$' }),
    next: Type.String({ pattern: '^[0-9]+$' }),
    key: Type.String(),
    node: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
)
export const RedisContextSchema = Type.Union([
  RedisMessageContextSchema,
  RedisDocumentContextSchema,
])
export type RedisContext = Static<typeof RedisContextSchema>
export type RedisMessageContext = Static<typeof RedisMessageContextSchema>
export type RedisDocumentContext = Static<typeof RedisDocumentContextSchema>

export function dataKindOf(stream: { kind: 'stream' | 'document' }): DataKind {
  return stream.kind === 'stream' ? 'message' : 'document'
}

import { Destination, Secret, type Static, TlsSchema, Type } from '@nvisy/provider-core'

const NoCredentials = Type.Object({}, { additionalProperties: false, title: 'No authentication' })
const TokenCredentials = Type.Object(
  { token: Secret(Type.String({ minLength: 1, description: 'Server authorization token' })) },
  { additionalProperties: false, title: 'Token' },
)
const UserPasswordCredentials = Type.Object(
  {
    user: Secret(Type.String({ minLength: 1 })),
    password: Secret(Type.String({ description: 'May be empty for a user without a password' })),
  },
  { additionalProperties: false, title: 'User and password' },
)
const CredsFileCredentials = Type.Object(
  {
    creds: Secret(
      Type.String({
        minLength: 1,
        description: 'The content of a .creds file (user JWT and NKey seed)',
      }),
    ),
  },
  { additionalProperties: false, title: 'Creds file (JWT + NKey)' },
)

/** One of: nothing (a server without auth), a token, user and password, or a creds file's content. */
export const NatsCredentialsSchema = Type.Union(
  [NoCredentials, TokenCredentials, UserPasswordCredentials, CredsFileCredentials],
  { description: 'NATS credentials; every value is secret' },
)
export type NatsCredentials = Static<typeof NatsCredentialsSchema>

const ServerSchema = Type.String({ minLength: 1, description: 'host:port or nats://host:port' })

export const NatsTlsSchema = Type.Union(
  [
    Type.Literal('off', {
      description: 'Plain TCP (the client still upgrades when the server requires TLS)',
    }),
    Type.Literal('on', { description: 'Require TLS, verified against the system CAs' }),
    Type.Object(
      {
        ca: Type.String({
          minLength: 1,
          description: 'PEM certificate(s) of the CA that signed the server certificate',
        }),
      },
      { additionalProperties: false, description: 'Require TLS, verified against this CA' },
    ),
    // The TLS settings every provider shares (provider-core TlsSchema):
    // { mode: 'off' | 'require' | 'verify', ca?, servername? }.
    TlsSchema,
  ],
  { default: 'off' },
)
export type NatsTls = Static<typeof NatsTlsSchema>

export const NatsParamsSchema = Type.Object(
  {
    servers: Destination(
      Type.Union([ServerSchema, Type.Array(ServerSchema, { minItems: 1 })], {
        description: 'One server or a list of servers of one cluster',
      }),
    ),
    stream: Destination(
      Type.Optional(
        Type.String({
          minLength: 1,
          pattern: '^[^.*>\\s]+$',
          description: 'Default JetStream stream to read',
        }),
      ),
    ),
    subject: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Default subject filter for reads (wildcards allowed)',
      }),
    ),
    tls: Destination(Type.Optional(NatsTlsSchema)),
    name: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Connection name shown by the server (default "nvisy")',
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        maximum: 600_000,
        default: 10_000,
        description: 'Connect and request timeout',
      }),
    ),
  },
  { additionalProperties: false },
)
export type NatsParams = Static<typeof NatsParamsSchema>

/** Source stream settings; each field overrides the one in params. */
export const NatsStreamSchema = Type.Object(
  {
    stream: Type.Optional(
      Type.String({ minLength: 1, pattern: '^[^.*>\\s]+$', description: 'JetStream stream name' }),
    ),
    subject: Type.Optional(
      Type.String({ minLength: 1, description: 'Subject filter (wildcards allowed)' }),
    ),
  },
  { additionalProperties: false },
)
export type NatsStream = Static<typeof NatsStreamSchema>
/** @deprecated use NatsStream */
export type NatsStreamSettings = NatsStream

/** Resume context: the stream sequence of the last message read. */
export const NatsContextSchema = Type.Object(
  { seq: Type.Integer({ minimum: 0, description: 'Stream sequence of the last message read' }) },
  { additionalProperties: false },
)
export type NatsContext = Static<typeof NatsContextSchema>

export const DEFAULT_MAX_IN_FLIGHT = 256

export const NatsSinkStreamSchema = Type.Object(
  {
    subject: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^*>\\s]+$',
        description:
          'Publish every message to this subject; otherwise each message goes to its own `subject`',
      }),
    ),
    stream: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^.*>\\s]+$',
        description:
          'The stream that must store the messages; a publish captured by another stream fails',
      }),
    ),
    maxInFlight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65_536,
        description: 'Unacknowledged publishes at once (default 256)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type NatsSinkStream = Static<typeof NatsSinkStreamSchema>
/** @deprecated use NatsSinkStream */
export type NatsSinkSettings = NatsSinkStream

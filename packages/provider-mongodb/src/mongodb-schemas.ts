import { Destination, Secret, type Static, Type } from '@nvisy/provider-core'

/**
 * Credentials: a full connection string (it may carry user and password), or a user and
 * password used with the hosts or URL from the params. Both forms are secret-free in logs.
 */
export const MongoCredentialsSchema = Type.Object(
  {
    connectionString: Type.Optional(
      Secret(
        Type.String({
          pattern: '^mongodb(\\+srv)?://',
          description:
            'A mongodb:// or mongodb+srv:// connection string; it may hold the user and password. Params refine it.',
        }),
      ),
    ),
    username: Type.Optional(Type.String({ minLength: 1, description: 'User name' })),
    password: Type.Optional(
      Secret(Type.String({ minLength: 1, description: 'Password of the user' })),
    ),
  },
  { additionalProperties: false },
)
export type MongoCredentials = Static<typeof MongoCredentialsSchema>

export const READ_PREFERENCES = [
  'primary',
  'primaryPreferred',
  'secondary',
  'secondaryPreferred',
  'nearest',
] as const

export const MongoParamsSchema = Type.Object(
  {
    url: Destination(
      Type.Optional(
        Type.String({
          pattern: '^mongodb(\\+srv)?://',
          description:
            'Connection string without credentials (mongodb://host1,host2/?replicaSet=rs0 or mongodb+srv://cluster.example.net)',
        }),
      ),
    ),
    hosts: Destination(
      Type.Optional(
        Type.Array(Type.String({ pattern: '^[^/@,\\s]+$', description: 'host or host:port' }), {
          minItems: 1,
          description: 'Hosts to connect to when no url or connection string is given',
        }),
      ),
    ),
    database: Destination(
      Type.String({
        minLength: 1,
        maxLength: 63,
        pattern: '^[^/\\\\. "$*<>:|?]+$',
        description: 'Database to read and write',
      }),
    ),
    tls: Destination(
      Type.Optional(
        Type.Boolean({ description: 'Use TLS (mongodb+srv:// turns it on by default)' }),
      ),
    ),
    tlsCAFile: Destination(
      Type.Optional(
        Type.String({ minLength: 1, description: 'Path of a PEM file of CAs to trust' }),
      ),
    ),
    authSource: Destination(
      Type.Optional(
        Type.String({ minLength: 1, description: 'Database that holds the user (default admin)' }),
      ),
    ),
    authMechanism: Destination(
      Type.Optional(
        Type.Union([Type.Literal('SCRAM-SHA-256'), Type.Literal('SCRAM-SHA-1')], {
          description: 'SCRAM mechanism; negotiated with the server when omitted',
        }),
      ),
    ),
    readPreference: Type.Optional(
      Type.Union(
        READ_PREFERENCES.map((mode) => Type.Literal(mode)),
        { description: 'Which members reads go to' },
      ),
    ),
    replicaSet: Destination(Type.Optional(Type.String({ minLength: 1 }))),
    directConnection: Destination(
      Type.Optional(
        Type.Boolean({
          description: 'Talk to the one host given, without discovering a replica set',
        }),
      ),
    ),
    serverSelectionTimeoutMS: Type.Integer({
      minimum: 100,
      maximum: 300_000,
      default: 10_000,
      description: 'How long an operation waits for a suitable server before failing as transient',
    }),
    appName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
)
export type MongoParams = Static<typeof MongoParamsSchema>

const Collection = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[^$\\x00]+$',
  description: 'Collection name',
})
const Database = Type.Optional(
  Type.String({ minLength: 1, maxLength: 63, description: 'Database, when not the one in params' }),
)

/** Source stream settings. */
export const MongoStreamSchema = Type.Object(
  {
    collection: Collection,
    database: Database,
    filter: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'Query filter in Extended JSON (canonical or relaxed, e.g. {"status":"active","_id":{"$gt":{"$oid":"..."}}})',
      }),
    ),
    projection: Type.Optional(
      Type.Record(Type.String(), Type.Union([Type.Literal(0), Type.Literal(1), Type.Boolean()]), {
        description: 'Fields to include (1) or exclude (0); _id and cursorField are always kept',
      }),
    ),
    batchSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000,
        default: 1000,
        description: 'Documents per round trip',
      }),
    ),
    cursorField: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^$]',
        description:
          'A field that only grows (updatedAt, a sequence): reads sort by [field, _id] and resume after the last (field, _id) pair',
      }),
    ),
    range: Type.Optional(
      Type.Object(
        {
          after: Type.Optional(
            Type.Unknown({
              description:
                'Only documents whose _id sorts (in BSON order) after this one, in canonical Extended JSON: exclusive',
            }),
          ),
          through: Type.Optional(
            Type.Unknown({
              description: 'Only documents whose _id sorts at or before this one: inclusive',
            }),
          ),
        },
        {
          additionalProperties: false,
          description: 'A range of _id values, as `partition` returns it; a missing bound is open',
        },
      ),
    ),
  },
  { additionalProperties: false },
)
export type MongoStream = Static<typeof MongoStreamSchema>

/**
 * Resume after a document: its `_id` (and the cursor field's value, for a stream with
 * `cursorField`) in canonical Extended JSON, so an ObjectId or a Long survives the trip.
 */
export const MongoContextSchema = Type.Object(
  {
    _id: Type.Unknown({ description: 'The _id in canonical Extended JSON' }),
    cursor: Type.Optional(
      Type.Unknown({
        description: "The cursor field's value in canonical Extended JSON (null when missing)",
      }),
    ),
  },
  { additionalProperties: false, required: ['_id'] },
)
export type MongoContext = Static<typeof MongoContextSchema>

/** Sink stream settings. */
export const MongoSinkStreamSchema = Type.Object(
  {
    collection: Collection,
    database: Database,
    idMode: Type.Optional(
      Type.Union([Type.Literal('auto'), Type.Literal('string')], {
        default: 'auto',
        description:
          "How data.id becomes the _id when content has no _id: 'auto' (24 hex digits -> ObjectId, Extended JSON text -> its value, else the string) or 'string' (always the string)",
      }),
    ),
    create: Type.Optional(
      Type.Union([Type.Literal('never'), Type.Literal('ifMissing')], {
        default: 'ifMissing',
        description:
          "Before a run: 'ifMissing' creates the collection when it does not exist; 'never' requires it (a missing collection is not_found)",
      }),
    ),
    keyIndex: Type.Optional(
      Type.Boolean({
        default: true,
        description:
          "Before a run: create a unique index on the source's primary key columns when the document id is not that key (a key other than a single 'id' or '_id' column)",
      }),
    ),
  },
  { additionalProperties: false },
)
export type MongoSinkStream = Static<typeof MongoSinkStreamSchema>

import { Destination, Secret, type Static, TlsSchema, Type } from '@nvisy/provider-core'

const Identifier = Type.String({ minLength: 1, maxLength: 63 })

export const PostgresCredentialsSchema = Type.Object(
  {
    user: Type.Optional(Type.String({ minLength: 1, description: 'Role to log in as' })),
    password: Type.Optional(Secret(Type.String({ description: 'Password of the role' }))),
    url: Type.Optional(
      Secret(
        Type.String({
          pattern: '^postgres(ql)?://',
          description:
            'A postgres:// connection URL; replaces user, password, host, port and database',
        }),
      ),
    ),
  },
  { additionalProperties: false },
)
export type PostgresCredentials = Static<typeof PostgresCredentialsSchema>

export const PostgresParamsSchema = Type.Object(
  {
    host: Destination(
      Type.Optional(
        Type.String({
          minLength: 1,
          description: 'Server host; required unless credentials.url is set',
        }),
      ),
    ),
    port: Destination(
      Type.Optional(
        Type.Integer({ minimum: 1, maximum: 65535, description: 'Server port (default 5432)' }),
      ),
    ),
    database: Destination(
      Type.Optional(
        Type.String({
          minLength: 1,
          description: 'Database; required unless credentials.url is set',
        }),
      ),
    ),
    schema: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 63,
        default: 'public',
        description: 'Default schema for tables',
      }),
    ),
    tls: Destination(Type.Optional(TlsSchema)),
    poolSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        default: 4,
        description: 'Most connections open at once',
      }),
    ),
    statementTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'statement_timeout for every statement, in ms (0: none)',
      }),
    ),
    connectTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: 10_000,
        description: 'Give up connecting after this many ms',
      }),
    ),
    applicationName: Type.Optional(Type.String({ minLength: 1, maxLength: 63, default: 'nvisy' })),
  },
  { additionalProperties: false },
)
export type PostgresParams = Static<typeof PostgresParamsSchema>

export const FILTER_OPERATORS = [
  '=',
  '<>',
  '<',
  '>',
  '<=',
  '>=',
  'in',
  'is null',
  'is not null',
] as const
export type FilterOperator = (typeof FILTER_OPERATORS)[number]

const FilterValue = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])

export const PostgresFilterSchema = Type.Object(
  {
    column: Identifier,
    op: Type.Union(FILTER_OPERATORS.map((op) => Type.Literal(op))),
    value: Type.Optional(Type.Union([FilterValue, Type.Array(FilterValue)])),
  },
  { additionalProperties: false },
)
export type PostgresFilter = Static<typeof PostgresFilterSchema>

const CursorTuple = (description: string) =>
  Type.Array(Type.Union([Type.String(), Type.Number()]), { minItems: 1, description })

/** A key range of the stream's cursor: what `partition` gives each partition. */
export const PostgresRangeSchema = Type.Object(
  {
    after: Type.Optional(
      CursorTuple(
        'Only rows whose cursor values (in cursor order, as in a resume context) sort after these: exclusive',
      ),
    ),
    through: Type.Optional(
      CursorTuple('Only rows whose cursor values sort at or before these: inclusive'),
    ),
  },
  {
    additionalProperties: false,
    description:
      'A key range over the cursor columns (primary key appended), as `partition` returns it; a missing bound is open',
  },
)
export type PostgresRange = Static<typeof PostgresRangeSchema>

export const PostgresStreamSchema = Type.Object(
  {
    table: Identifier,
    schema: Type.Optional(Identifier),
    columns: Type.Optional(Type.Array(Identifier, { minItems: 1, uniqueItems: true })),
    cursor: Type.Optional(
      Type.Array(Identifier, {
        minItems: 1,
        uniqueItems: true,
        description:
          'Columns to order and resume by (default: the primary key); the primary key is appended as a tiebreaker',
      }),
    ),
    filter: Type.Optional(Type.Array(PostgresFilterSchema)),
    range: Type.Optional(PostgresRangeSchema),
    pageSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000,
        default: 2000,
        description: 'Rows fetched per round trip',
      }),
    ),
  },
  { additionalProperties: false },
)
export type PostgresStream = Static<typeof PostgresStreamSchema>

export const PostgresContextSchema = Type.Object(
  {
    cursor: Type.Array(Type.Union([Type.String(), Type.Number()]), {
      minItems: 1,
      description:
        'The cursor column values of the last row read, in cursor order, as text (int2/int4 as numbers)',
    }),
  },
  { additionalProperties: false },
)
export type PostgresContext = Static<typeof PostgresContextSchema>

export const PostgresSinkStreamSchema = Type.Object(
  {
    table: Identifier,
    schema: Type.Optional(Identifier),
    mode: Type.Optional(
      Type.Union([Type.Literal('upsert'), Type.Literal('append')], {
        default: 'upsert',
        description:
          'upsert: INSERT ... ON CONFLICT (keys) DO UPDATE; append: COPY FROM STDIN (not idempotent)',
      }),
    ),
    keys: Type.Optional(
      Type.Array(Identifier, {
        minItems: 1,
        uniqueItems: true,
        description: 'Conflict columns (default: the primary key)',
      }),
    ),
    create: Type.Optional(
      Type.Union([Type.Literal('never'), Type.Literal('ifMissing')], {
        default: 'never',
        description:
          'prepare: never (a missing table is a not_found error) or ifMissing (create it, with its primary key, from the source schema)',
      }),
    ),
    evolve: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('addColumns')], {
        default: 'none',
        description:
          'prepare: none (columns missing from the table are a config error) or addColumns (ALTER TABLE ADD COLUMN, nullable)',
      }),
    ),
    offsetsTable: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 63,
        default: '_nvisy_offsets',
        description:
          'Table (in the destination schema) where exactly-once offsets are committed with each batch; created when missing',
      }),
    ),
  },
  { additionalProperties: false },
)
export type PostgresSinkStream = Static<typeof PostgresSinkStreamSchema>

import { Destination, Secret, type Static, TlsSchema, Type } from '@nvisy/provider-core'

const PasswordCredentials = Type.Object(
  {
    user: Type.String({ minLength: 1, maxLength: 128, description: 'MySQL user name' }),
    password: Type.Optional(Secret(Type.String({ description: 'Password (may be empty)' }))),
  },
  { additionalProperties: false, title: 'User and password' },
)

const UrlCredentials = Type.Object(
  {
    url: Secret(
      Type.String({
        pattern: '^(mysql|mariadb)://',
        description:
          'mysql://user:password@host:port/database (host, port and database in params win)',
      }),
    ),
  },
  { additionalProperties: false, title: 'Connection URL' },
)

export const MysqlCredentialsSchema = Type.Union([PasswordCredentials, UrlCredentials])
export type MysqlCredentials = Static<typeof MysqlCredentialsSchema>

export const MysqlParamsSchema = Type.Object(
  {
    host: Destination(
      Type.Optional(
        Type.String({
          minLength: 1,
          description: 'Server host (required unless the URL gives it)',
        }),
      ),
    ),
    port: Destination(
      Type.Optional(
        Type.Integer({ minimum: 1, maximum: 65535, description: 'Server port, default 3306' }),
      ),
    ),
    database: Destination(
      Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 64,
          description: 'Default database (required unless the URL gives it)',
        }),
      ),
    ),
    tls: Destination(Type.Optional(TlsSchema)),
    poolSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        default: 10,
        description: 'Connections in the pool',
      }),
    ),
    statementTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Abort a statement after this long (max_statement_time / max_execution_time)',
      }),
    ),
    connectTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: 10_000,
        description: 'TCP and handshake timeout',
      }),
    ),
  },
  { additionalProperties: false },
)
export type MysqlParams = Static<typeof MysqlParamsSchema>

const Identifier = (description: string) =>
  Type.String({ minLength: 1, maxLength: 64, pattern: '^[^\\u0000]+$', description })

export const FILTER_OPERATORS = [
  '=',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  'in',
  'not in',
  'like',
  'not like',
  'is null',
  'is not null',
] as const
export type FilterOperator = (typeof FILTER_OPERATORS)[number]

const ScalarValue = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])

export const MysqlFilterSchema = Type.Object(
  {
    column: Identifier('Column to compare'),
    op: Type.Union(FILTER_OPERATORS.map((op) => Type.Literal(op))),
    value: Type.Optional(Type.Union([ScalarValue, Type.Array(ScalarValue, { minItems: 1 })])),
  },
  { additionalProperties: false },
)
export type MysqlFilter = Static<typeof MysqlFilterSchema>

const KeyValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()])
const KeyTuple = (description: string) => Type.Array(KeyValue, { minItems: 1, description })

/** A key range of the stream's cursor: what `partition` gives each partition. */
export const MysqlRangeSchema = Type.Object(
  {
    after: Type.Optional(
      KeyTuple(
        'Only rows whose cursor values (in cursor order, as in a resume context) sort after these: exclusive',
      ),
    ),
    through: Type.Optional(
      KeyTuple('Only rows whose cursor values sort at or before these: inclusive'),
    ),
  },
  {
    additionalProperties: false,
    description:
      'A key range over the cursor columns (primary key appended), as `partition` returns it; a missing bound is open',
  },
)
export type MysqlRange = Static<typeof MysqlRangeSchema>

export const MysqlStreamSchema = Type.Object(
  {
    table: Identifier('Table or view to read'),
    database: Type.Optional(Identifier('Database, when not the connection default')),
    columns: Type.Optional(
      Type.Array(Identifier('Column'), {
        minItems: 1,
        uniqueItems: true,
        description: 'Columns to read; default all',
      }),
    ),
    cursor: Type.Optional(
      Type.Array(Identifier('Column'), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Ordering columns for keyset pagination and resume; default the primary key (which is appended as tiebreaker)',
      }),
    ),
    filter: Type.Optional(
      Type.Array(MysqlFilterSchema, { description: 'Conditions, all of which must hold' }),
    ),
    range: Type.Optional(MysqlRangeSchema),
    pageSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000_000,
        default: 50_000,
        description:
          'Rows per statement: each is a streamed keyset query (memory holds a few rows whatever this is)',
      }),
    ),
    tinyint1AsBoolean: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Read TINYINT(1)/BOOLEAN 0 and 1 as false and true (other values stay numbers)',
      }),
    ),
    zeroDates: Type.Optional(
      Type.Union([Type.Literal('error'), Type.Literal('null')], {
        default: 'error',
        description:
          "A zero date ('0000-00-00', '2024-00-10'): error stops the read with a data error naming the column and row key; null reads it as null",
      }),
    ),
  },
  { additionalProperties: false },
)
export type MysqlStream = Static<typeof MysqlStreamSchema>

export const MysqlContextSchema = Type.Object(
  {
    columns: Type.Array(Type.String(), { minItems: 1, description: 'The cursor columns' }),
    values: Type.Array(ScalarValue, {
      minItems: 1,
      description: 'Cursor values of the last item read',
    }),
  },
  { additionalProperties: false },
)
export type MysqlContext = Static<typeof MysqlContextSchema>

export const MysqlSinkStreamSchema = Type.Object(
  {
    table: Identifier('Table to write'),
    database: Type.Optional(Identifier('Database, when not the connection default')),
    mode: Type.Optional(
      Type.Union([Type.Literal('upsert'), Type.Literal('append')], {
        default: 'upsert',
        description: 'upsert: INSERT ... ON DUPLICATE KEY UPDATE; append: plain multi-row INSERT',
      }),
    ),
    keys: Type.Optional(
      Type.Array(Identifier('Column'), {
        minItems: 1,
        uniqueItems: true,
        description: 'Key columns left untouched on update; default the primary key',
      }),
    ),
    create: Type.Optional(
      Type.Union([Type.Literal('never'), Type.Literal('ifMissing')], {
        default: 'never',
        description:
          'prepare: never (a missing table is a not_found error) or ifMissing (create it from the source schema)',
      }),
    ),
    evolve: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('addColumns')], {
        default: 'none',
        description:
          'prepare: none (a table lacking source columns is a config error) or addColumns (ALTER TABLE ADD the missing columns, nullable)',
      }),
    ),
    offsetsTable: Type.Optional(
      Identifier(
        'Table (in the destination database) where exactly-once offsets are committed with each batch; default _nvisy_offsets, created on first use',
      ),
    ),
  },
  { additionalProperties: false },
)
export type MysqlSinkStream = Static<typeof MysqlSinkStreamSchema>

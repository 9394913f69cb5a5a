import { Destination, EmptyObject, type Static, Type } from '@nvisy/provider-core'

const Identifier = Type.String({ minLength: 1, maxLength: 1024 })

/**
 * SQLite has no users or passwords: whoever can open the file can read it (and write it,
 * unless the file or `readOnly` forbids). Access control is the file's permissions.
 */
export const SqliteCredentialsSchema = EmptyObject
export type SqliteCredentials = Static<typeof SqliteCredentialsSchema>

export const SqliteParamsSchema = Type.Object(
  {
    path: Destination(
      Type.String({
        minLength: 1,
        // Each connection opens its own handle; an in-memory database would be private to
        // one of them, so a source and a sink on the "same" database would not share data.
        pattern: '^(?!:memory:$)',
        description:
          'Path of the database file. `:memory:` is refused: connections must share the data',
      }),
    ),
    readOnly: Type.Optional(
      Type.Boolean({ default: false, description: 'Open the file read-only (writes fail)' }),
    ),
    create: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Create the file when it does not exist (default: a missing file is an error)',
      }),
    ),
    busyTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 600_000,
        default: 5000,
        description: 'How long a statement waits for a lock held by another process',
      }),
    ),
  },
  { additionalProperties: false },
)
export type SqliteParams = Static<typeof SqliteParamsSchema>

export const SqliteStreamSchema = Type.Object(
  {
    table: Identifier,
    columns: Type.Optional(
      Type.Array(Identifier, {
        minItems: 1,
        uniqueItems: true,
        description: 'Columns in each record (default: all, in table order)',
      }),
    ),
    cursor: Type.Optional(
      Type.Array(Identifier, {
        minItems: 1,
        uniqueItems: true,
        description:
          'Columns to order and resume by (default: the primary key, else the rowid); the primary key (or rowid) is appended as a tiebreaker',
      }),
    ),
    pageSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000,
        default: 1000,
        description: 'Rows per query; the event loop is released between pages',
      }),
    ),
  },
  { additionalProperties: false },
)
export type SqliteStream = Static<typeof SqliteStreamSchema>

/** A cursor value: JSON-safe, and typed so it binds back as the same SQLite storage class. */
export const CursorValueSchema = Type.Union([
  Type.Number({ description: 'INTEGER in the safe range, or a finite REAL' }),
  Type.String({ description: 'TEXT' }),
  Type.Object(
    { int: Type.String({ pattern: '^-?[0-9]{1,19}$' }) },
    { additionalProperties: false, description: 'INTEGER outside the safe range, as decimal text' },
  ),
  Type.Object(
    { real: Type.Union([Type.Literal('Infinity'), Type.Literal('-Infinity')]) },
    { additionalProperties: false, description: 'An infinite REAL' },
  ),
  Type.Object(
    { blob: Type.String({ contentEncoding: 'base64' }) },
    { additionalProperties: false, description: 'BLOB, base64' },
  ),
])
export type CursorValue = Static<typeof CursorValueSchema>

export const SqliteContextSchema = Type.Object(
  {
    cursor: Type.Array(CursorValueSchema, {
      minItems: 1,
      description: 'The cursor column values of the last row read, in cursor order',
    }),
  },
  { additionalProperties: false },
)
export type SqliteContext = Static<typeof SqliteContextSchema>

export const SqliteSinkStreamSchema = Type.Object(
  {
    table: Identifier,
    keys: Type.Optional(
      Type.Array(Identifier, {
        minItems: 1,
        uniqueItems: true,
        description:
          'Conflict columns of the upsert (default: the primary key); they need a PRIMARY KEY or UNIQUE constraint',
      }),
    ),
  },
  { additionalProperties: false },
)
export type SqliteSinkStream = Static<typeof SqliteSinkStreamSchema>

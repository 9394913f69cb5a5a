import { defineProvider, SPECIFICATION_VERSION, throwIfAborted } from '@nvisy/provider-core'
import type Database from 'better-sqlite3'
import { SqliteConnection } from './sqlite-connection.js'
import { classifySqliteError } from './sqlite-errors.js'
import {
  SqliteContextSchema,
  SqliteCredentialsSchema,
  SqliteParamsSchema,
  SqliteSinkStreamSchema,
  SqliteStreamSchema,
} from './sqlite-schemas.js'
import { VERSION } from './version.js'

export interface SqliteProviderOptions {
  /**
   * An open better-sqlite3 database to use instead of opening `params.path` (which is then
   * ignored). The provider never closes it.
   */
  database?: Database.Database
}

/** @deprecated use SqliteProviderOptions */
export type SqliteProviderSettings = SqliteProviderOptions

/** The SQLite provider; pass `database` to use a better-sqlite3 handle you own. */
export function createSqliteProvider(options: SqliteProviderOptions = {}) {
  return defineProvider({
    id: 'sqlite',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'SQLite (example)',
    description:
      'Tables and views of a SQLite database file: keyset-paged reads, upsert writes (an example third-party provider)',
    credentials: SqliteCredentialsSchema,
    params: SqliteParamsSchema,
    source: {
      data: 'record',
      stream: SqliteStreamSchema,
      context: SqliteContextSchema,
      incremental: true,
      ordering:
        'cursor columns (default: the primary key, else the rowid), primary key or rowid appended as tiebreaker',
    },
    sink: {
      data: 'record',
      stream: SqliteSinkStreamSchema,
      idempotentBy: 'conflict keys (default: the primary key)',
    },
    discover: true,
    classifyError: classifySqliteError,
    async connect({ params }, { signal }) {
      throwIfAborted(signal)
      if (options.database) return new SqliteConnection(options.database, false)
      return SqliteConnection.open(params)
    },
  })
}

/** The SQLite provider opening `params.path` itself. */
export const sqliteProvider = createSqliteProvider()
export type SqliteProvider = typeof sqliteProvider

import {
  type Connection,
  type Data,
  defineProvider,
  errorMessage,
  ProviderError,
  SPECIFICATION_VERSION,
  type StreamInfo,
  throwIfAborted,
} from '@nvisy/provider-core'
import Database from 'better-sqlite3'
import { listTables, toStreamInfo } from './sqlite-catalog.js'
import { classifySqliteError } from './sqlite-errors.js'
import {
  type SqliteContext,
  SqliteContextSchema,
  SqliteCredentialsSchema,
  type SqliteParams,
  SqliteParamsSchema,
  type SqliteSinkStream,
  SqliteSinkStreamSchema,
  type SqliteStream,
  SqliteStreamSchema,
} from './sqlite-schemas.js'
import { writeBatch } from './sqlite-sink.js'
import { readTable } from './sqlite-source.js'
import { VERSION } from './version.js'

export interface SqliteProviderSettings {
  /**
   * An open better-sqlite3 database to use instead of opening `params.path` (which is then
   * ignored). The provider never closes it.
   */
  database?: Database.Database
}

/** Open the file the params name; every failure is a `config` error that names the path. */
export function openDatabase(params: SqliteParams): Database.Database {
  const readOnly = params.readOnly ?? false
  try {
    return new Database(params.path, {
      readonly: readOnly,
      fileMustExist: readOnly || !(params.create ?? false),
      timeout: params.busyTimeoutMs ?? 5000,
    })
  } catch (error) {
    const classified = classifySqliteError(error)
    const hint = readOnly || !params.create ? ' (it must exist unless params.create is true)' : ''
    throw new ProviderError({
      kind: classified?.kind === 'transient' ? 'transient' : 'config',
      message: `cannot open SQLite database ${JSON.stringify(params.path)}${hint}: ${errorMessage(error)}`,
      code: classified?.code,
      issues: [{ path: '/params/path', rule: 'openable', message: errorMessage(error) }],
      cause: error,
    })
  }
}

class SqliteConnection implements Connection<SqliteStream, SqliteContext, SqliteSinkStream> {
  constructor(
    readonly db: Database.Database,
    readonly owned: boolean,
  ) {}

  async check(): Promise<void> {
    // Opening a file does not read it: this does, so "file is not a database" shows here.
    this.db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get()
  }

  async discover(options: { signal: AbortSignal }): Promise<StreamInfo[]> {
    throwIfAborted(options.signal)
    return listTables(this.db).map(toStreamInfo)
  }

  read(stream: SqliteStream, options: { after?: SqliteContext | undefined; signal: AbortSignal }) {
    return readTable(this.db, stream, options.after, options.signal)
  }

  async write(stream: SqliteSinkStream, batch: readonly Data[], options: { signal: AbortSignal }) {
    return writeBatch(this.db, stream, batch, options.signal)
  }

  async close(): Promise<void> {
    if (this.owned && this.db.open) this.db.close()
  }
}

/** The SQLite provider; pass `database` to use a better-sqlite3 handle you own. */
export function createSqliteProvider(settings: SqliteProviderSettings = {}) {
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
      if (settings.database) return new SqliteConnection(settings.database, false)
      return new SqliteConnection(openDatabase(params), true)
    },
  })
}

export const sqliteProvider = createSqliteProvider()

import {
  type Connection,
  type Data,
  errorMessage,
  ProviderError,
  type StreamInfo,
  throwIfAborted,
} from '@nvisy/provider-core'
import Database from 'better-sqlite3'
import { listTables, toStreamInfo } from './sqlite-catalog.js'
import { classifySqliteError } from './sqlite-errors.js'
import type {
  SqliteContext,
  SqliteParams,
  SqliteSinkStream,
  SqliteStream,
} from './sqlite-schemas.js'
import { writeBatch } from './sqlite-sink.js'
import { readTable } from './sqlite-source.js'

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

/** A connection to one SQLite database: owns the handle it opened (a given one stays open). */
export class SqliteConnection implements Connection<SqliteStream, SqliteContext, SqliteSinkStream> {
  constructor(
    readonly db: Database.Database,
    readonly owned: boolean,
  ) {}

  /** A connection over the database file the params name, closed by `close()`. */
  static open(params: SqliteParams): SqliteConnection {
    return new SqliteConnection(openDatabase(params), true)
  }

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

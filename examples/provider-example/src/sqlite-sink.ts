import {
  type Data,
  errorMessage,
  ProviderError,
  throwIfAborted,
  type WriteFailure,
  type WriteResult,
} from '@nvisy/provider-core'
import type Database from 'better-sqlite3'
import { describeTable, quoteIdent, requireColumn, tableNotFound } from './sqlite-catalog.js'
import { classifySqliteError, isBindError } from './sqlite-errors.js'
import type { SqliteSinkStream } from './sqlite-schemas.js'
import { type BindValue, toSqlite } from './sqlite-values.js'

const ROW_SAVEPOINT = 'nvisy_row'
const BATCH_SAVEPOINT = 'nvisy_batch'

function configError(message: string, path?: string): ProviderError {
  return new ProviderError({
    kind: 'config',
    message,
    issues: path ? [{ path, rule: 'exists', message }] : undefined,
  })
}

/** `INSERT ... ON CONFLICT (keys) DO UPDATE SET <the other columns> = excluded.<column>`. */
export function upsertSql(table: string, columns: readonly string[], keys: readonly string[]) {
  const lowerKeys = new Set(keys.map((k) => k.toLowerCase()))
  const updated = columns.filter((c) => !lowerKeys.has(c.toLowerCase()))
  const action =
    updated.length === 0
      ? 'DO NOTHING'
      : `DO UPDATE SET ${updated.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}`
  return (
    `INSERT INTO ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) ` +
    `VALUES (${columns.map(() => '?').join(', ')}) ` +
    `ON CONFLICT (${keys.map(quoteIdent).join(', ')}) ${action}`
  )
}

/** A row's failure, when it is the row's own fault (constraint, type, range); otherwise undefined. */
function rowError(error: unknown, index: number): ProviderError | undefined {
  if (ProviderError.isInstance(error)) return error.kind === 'data' ? error : undefined
  if (isBindError(error)) {
    return new ProviderError({
      kind: 'data',
      message: `item ${index}: ${errorMessage(error)}`,
      cause: error,
    })
  }
  const classified = classifySqliteError(error)
  if (classified?.kind !== 'data') return undefined
  return new ProviderError({
    kind: 'data',
    message: `item ${index}: ${classified.message}`,
    code: classified.code,
    cause: error,
  })
}

/**
 * Upsert a batch in one transaction, each row under its own savepoint: a row the database
 * refuses is rolled back alone and reported as `data`, the rest commits. Any other error
 * (busy, read-only, missing table) rolls the whole batch back and is thrown.
 */
export function writeBatch(
  db: Database.Database,
  stream: SqliteSinkStream,
  batch: readonly Data[],
  signal: AbortSignal,
): WriteResult {
  throwIfAborted(signal)
  const table = describeTable(db, stream.table)
  if (!table) throw tableNotFound(stream.table)
  if (table.type !== 'table')
    throw configError(`${JSON.stringify(table.name)} is a ${table.type}: only tables take writes`)
  const keys = (stream.keys ?? table.primaryKey).map(
    (name, i) => requireColumn(table, name, `/stream/keys/${i}`).name,
  )
  if (keys.length === 0) {
    throw configError(
      `${JSON.stringify(table.name)} has no primary key: set stream.keys to columns with a UNIQUE constraint`,
      '/stream/keys',
    )
  }
  // Fields are checked for the whole batch first: an unknown field is a mapping mistake
  // that every row shares, so it fails the batch (config) instead of every row alone.
  for (const item of batch) {
    if (item.kind !== 'record') continue
    for (const field of Object.keys(item.values)) {
      if (!table.byName.has(field.toLowerCase()))
        throw configError(
          `field ${JSON.stringify(field)} is not a column of ${JSON.stringify(table.name)}`,
        )
    }
  }

  const statements = new Map<string, Database.Statement>()
  const statementFor = (columns: string[]) => {
    const signature = JSON.stringify(columns)
    let statement = statements.get(signature)
    if (!statement) {
      statement = db.prepare(upsertSql(table.name, columns, keys))
      statements.set(signature, statement)
    }
    return statement
  }

  // Inside a transaction the caller already opened (an injected database), nest in a savepoint.
  const nested = db.inTransaction
  db.exec(nested ? `SAVEPOINT ${BATCH_SAVEPOINT}` : 'BEGIN IMMEDIATE')
  const failed: WriteFailure[] = []
  let written = 0
  try {
    batch.forEach((item, index) => {
      if (item.kind !== 'record') {
        failed.push({
          index,
          error: new ProviderError({
            kind: 'data',
            message: `item ${index} is a ${item.kind}; this sink takes records`,
          }),
        })
        return
      }
      // Fields absent from a record are left out: the column default on insert, unchanged on update.
      const columns = Object.keys(item.values).map((f) => table.byName.get(f.toLowerCase())!.name)
      const lower = new Set(columns.map((c) => c.toLowerCase()))
      const missing = keys.filter((k) => !lower.has(k.toLowerCase()))
      if (missing.length > 0) {
        failed.push({
          index,
          error: new ProviderError({
            kind: 'data',
            message: `item ${index} has no value for key column(s) ${missing.map((k) => JSON.stringify(k)).join(', ')}`,
          }),
        })
        return
      }
      db.exec(`SAVEPOINT ${ROW_SAVEPOINT}`)
      try {
        const values: BindValue[] = Object.entries(item.values).map(([field, value]) =>
          toSqlite(value, field),
        )
        statementFor(columns).run(...values)
        db.exec(`RELEASE ${ROW_SAVEPOINT}`)
        written++
      } catch (error) {
        if (!db.inTransaction) {
          // A trigger's RAISE(ROLLBACK) or an I/O error ended the whole transaction.
          throw error
        }
        db.exec(`ROLLBACK TO ${ROW_SAVEPOINT}`)
        db.exec(`RELEASE ${ROW_SAVEPOINT}`)
        const refused = rowError(error, index)
        if (!refused) throw error
        failed.push({ index, error: refused })
      }
    })
    db.exec(nested ? `RELEASE ${BATCH_SAVEPOINT}` : 'COMMIT')
  } catch (error) {
    if (db.inTransaction) {
      if (nested) {
        db.exec(`ROLLBACK TO ${BATCH_SAVEPOINT}`)
        db.exec(`RELEASE ${BATCH_SAVEPOINT}`)
      } else {
        db.exec('ROLLBACK')
      }
    }
    throw error
  }
  return { written, failed }
}

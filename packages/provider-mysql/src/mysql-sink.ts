import {
  type Data,
  ProviderError,
  raceAbort,
  type SqlValue,
  throwIfAborted,
  type WriteFailure,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import type { PoolConnection } from 'mysql2/promise'
import { findColumn, type MysqlClient, type TableInfo } from './mysql-client.js'
import { classifyMysqlError, mysqlError } from './mysql-errors.js'
import { ensureOffsetsTable, offsetUpsertSql } from './mysql-prepare.js'
import type { MysqlSinkStream } from './mysql-schemas.js'
import { encodeFor } from './mysql-types.js'
import { type ColumnInfo, quoteId, quoteTable } from './mysql-values.js'

const MAX_ROWS_PER_STATEMENT = 1000

/** One encoded row: its index in the batch and its VALUES tuple. */
interface EncodedRow {
  index: number
  tuple: string
  /** Whether the row has a non-null value for the first key column. */
  keyPresent: boolean
}

/** Rows that share one column list, and so one INSERT statement shape. */
interface RowGroup {
  columns: ColumnInfo[]
  rows: EncodedRow[]
}

function dataFailure(index: number, message: string, cause?: unknown): WriteFailure {
  return { index, error: mysqlError('data', message, cause === undefined ? {} : { cause }) }
}

function statementHead(info: TableInfo, columns: readonly ColumnInfo[]): string {
  return `INSERT INTO ${quoteTable(info.database, info.table)} (${columns.map((c) => quoteId(c.name)).join(', ')}) VALUES `
}

/**
 * ON DUPLICATE KEY UPDATE fires on any unique key. So that a row colliding with a
 * different row on another unique key fails instead of overwriting it, the first
 * assignment sets the first key column to NULL (refused by a NOT NULL key: error 1048)
 * unless every key column matches.
 */
function statementTail(
  columns: readonly ColumnInfo[],
  keys: readonly ColumnInfo[],
  mode: 'upsert' | 'append',
): string {
  if (mode === 'append') return ''
  const keyNames = new Set(keys.map((k) => k.name))
  const assignments: string[] = []
  const guardColumn = keys[0]
  if (guardColumn && !guardColumn.nullable && keys.every((k) => columns.includes(k))) {
    const same = keys.map((k) => `${quoteId(k.name)} <=> VALUES(${quoteId(k.name)})`).join(' AND ')
    const id = quoteId(guardColumn.name)
    assignments.push(`${id} = IF(${same}, ${id}, NULL)`)
  }
  for (const column of columns) {
    if (!keyNames.has(column.name))
      assignments.push(`${quoteId(column.name)} = VALUES(${quoteId(column.name)})`)
  }
  // With every column a key there is nothing to update: a no-op assignment keeps the row.
  if (assignments.length === 0)
    assignments.push(`${quoteId(columns[0]!.name)} = ${quoteId(columns[0]!.name)}`)
  return ` ON DUPLICATE KEY UPDATE ${assignments.join(', ')}`
}

/** Group the batch by column set and encode every value; rows that cannot be encoded fail here. */
function encodeBatch(
  info: TableInfo,
  keys: readonly ColumnInfo[],
  batch: readonly Data[],
  failed: WriteFailure[],
): RowGroup[] {
  const groups = new Map<string, RowGroup>()
  batch.forEach((item, index) => {
    if (item.kind !== 'record') {
      failed.push(dataFailure(index, `item ${index} is a ${item.kind}; this sink takes records`))
      return
    }
    const names = Object.keys(item.values)
    if (names.length === 0) {
      failed.push(dataFailure(index, `item ${index} has no values`))
      return
    }
    const columns: ColumnInfo[] = []
    for (const name of names) {
      const column = findColumn(info, name)
      if (!column) {
        failed.push(
          dataFailure(
            index,
            `item ${index}: column ${JSON.stringify(name)} does not exist in ${JSON.stringify(`${info.database}.${info.table}`)}`,
          ),
        )
        return
      }
      columns.push(column)
    }
    const literals: string[] = new Array(names.length)
    for (let i = 0; i < names.length; i++) {
      try {
        literals[i] = encodeFor(columns[i]!, item.values[names[i]!] as SqlValue)
      } catch (error) {
        failed.push(
          dataFailure(
            index,
            `item ${index}: column ${JSON.stringify(names[i])} (${columns[i]!.columnType}): ${(error as Error).message}`,
            error,
          ),
        )
        return
      }
    }
    const signature = columns.map((c) => c.name).join('\u0000')
    let group = groups.get(signature)
    if (!group) {
      group = { columns, rows: [] }
      groups.set(signature, group)
    }
    const firstKey = keys[0] ? columns.indexOf(keys[0]) : -1
    group.rows.push({
      index,
      tuple: `(${literals.join(', ')})`,
      keyPresent: firstKey >= 0 && literals[firstKey] !== 'NULL',
    })
  })
  return [...groups.values()]
}

/** Multi-row INSERT statements, each under the row and byte limits. */
function buildStatements(
  group: RowGroup,
  head: string,
  tail: string,
  maxBytes: number,
): { sql: string; rows: EncodedRow[] }[] {
  const statements: { sql: string; rows: EncodedRow[] }[] = []
  let rows: EncodedRow[] = []
  let bytes = head.length + tail.length
  const flush = () => {
    if (rows.length === 0) return
    statements.push({ sql: `${head}${rows.map((r) => r.tuple).join(', ')}${tail}`, rows })
    rows = []
    bytes = head.length + tail.length
  }
  for (const row of group.rows) {
    // String length counts UTF-16 units; *3 bounds the UTF-8 size of any BMP text.
    const size = row.tuple.length * 3 + 2
    if (rows.length > 0 && (rows.length >= MAX_ROWS_PER_STATEMENT || bytes + size > maxBytes))
      flush()
    rows.push(row)
    bytes += size
  }
  flush()
  return statements
}

function isDataError(error: unknown): boolean {
  return classifyMysqlError(error)?.kind === 'data'
}

/** An offset the offsets table refuses on its values is a misconfigured table, not a bad row. */
function offsetError(error: unknown): unknown {
  const classified = classifyMysqlError(error)
  if (classified?.kind !== 'data') return error
  return mysqlError(
    'config',
    `the offsets table refused the batch's offset (${classified.message}); it must have the columns \`key\` VARCHAR(700), \`context\` LONGTEXT, \`updated_at\` DATETIME(6); nothing of the batch was committed`,
    { cause: error },
  )
}

async function rollbackQuietly(connection: PoolConnection): Promise<void> {
  try {
    await connection.query('ROLLBACK')
  } catch {
    // The connection is broken; the pool drops it on release below.
  }
}

/**
 * Write a batch in one transaction: multi-row INSERTs (upserts by key), committed
 * together. When a statement fails on a row's values, the transaction is rolled back and
 * the batch replayed row by row behind savepoints, so each bad row fails alone and the
 * good rows are committed.
 */
export async function writeTable(
  client: MysqlClient,
  stream: MysqlSinkStream,
  batch: readonly Data[],
  options: WriteOptions,
): Promise<WriteResult> {
  const { signal } = options
  throwIfAborted(signal)
  const database = client.database(stream.database)
  let info = await client.tableInfo(database, stream.table, signal)
  // A column the cached metadata does not know may have been added since: look again once.
  const unknownColumn = batch.some(
    (item) =>
      item.kind === 'record' && Object.keys(item.values).some((name) => !findColumn(info, name)),
  )
  if (unknownColumn) info = await client.tableInfo(database, stream.table, signal, true)
  if (info.type === 'view')
    throw mysqlError(
      'config',
      `${JSON.stringify(`${database}.${stream.table}`)} is a view; write to a table`,
    )
  const mode = stream.mode ?? 'upsert'
  const keys: ColumnInfo[] = []
  for (const [i, name] of (stream.keys ?? info.primaryKey).entries()) {
    const column = findColumn(info, name)
    if (!column)
      throw mysqlError(
        'config',
        `/stream/keys/${i}: column ${JSON.stringify(name)} does not exist in ${JSON.stringify(`${database}.${stream.table}`)}`,
      )
    keys.push(column)
  }
  if (mode === 'upsert' && keys.length === 0) {
    throw mysqlError(
      'config',
      `/stream/keys is required: table ${JSON.stringify(`${database}.${stream.table}`)} has no primary key; or use mode "append"`,
    )
  }

  const failed: WriteFailure[] = []
  const groups = encodeBatch(info, keys, batch, failed)
  const maxBytes = client.statementBytes()
  const plans = groups.map((group) => {
    const head = statementHead(info, group.columns)
    const tail = statementTail(group.columns, keys, mode)
    return { head, tail, statements: buildStatements(group, head, tail, maxBytes) }
  })
  const rowCount = groups.reduce((n, g) => n + g.rows.length, 0)
  const offset = options.offset
  if (rowCount === 0 && !offset)
    return { written: 0, failed: failed.sort((a, b) => a.index - b.index) }

  const connection = await client.acquire(signal)
  let broken = false
  try {
    // The offset row commits with the batch: DDL (which commits implicitly) comes first.
    const offsetSql = offset
      ? offsetUpsertSql(
          await ensureOffsetsTable(client, connection, stream),
          offset.key,
          offset.context,
        )
      : undefined
    // Fast path: every statement in one transaction.
    await connection.query('START TRANSACTION')
    try {
      for (const plan of plans) {
        for (const statement of plan.statements) {
          throwIfAborted(signal)
          await raceAbort(connection.query(statement.sql), signal)
        }
      }
      if (offsetSql) {
        throwIfAborted(signal)
        try {
          await raceAbort(connection.query(offsetSql), signal)
        } catch (error) {
          // Not a row's fault: the whole batch fails, rows and offset rolled back together.
          broken = true
          await rollbackQuietly(connection)
          throw offsetError(error)
        }
      }
      await connection.query('COMMIT')
      return { written: rowCount, failed: failed.sort((a, b) => a.index - b.index) }
    } catch (error) {
      if (broken) throw error
      await rollbackQuietly(connection)
      if (!isDataError(error)) {
        broken = true
        throw error
      }
    }

    // Slow path: row by row, each behind a savepoint.
    let written = 0
    await connection.query('START TRANSACTION')
    try {
      for (const plan of plans) {
        for (const statement of plan.statements) {
          for (const row of statement.rows) {
            throwIfAborted(signal)
            await connection.query('SAVEPOINT nvisy_row')
            try {
              await connection.query(`${plan.head}${row.tuple}${plan.tail}`)
              written++
            } catch (error) {
              if (!isDataError(error)) throw error
              await connection.query('ROLLBACK TO SAVEPOINT nvisy_row')
              const classified = classifyMysqlError(error)!
              const guardColumn = keys[0]
              const collided =
                mode === 'upsert' &&
                (error as { errno?: number }).errno === 1048 &&
                guardColumn !== undefined &&
                classified.message.includes(`'${guardColumn.name}'`) &&
                row.keyPresent
              failed.push({
                index: row.index,
                error: new ProviderError({
                  kind: 'data',
                  message: collided
                    ? `item ${row.index}: collides with another row on a unique key other than (${keys.map((k) => k.name).join(', ')}); not overwritten`
                    : `item ${row.index}: ${classified.message}`,
                  code: classified.code,
                  cause: error,
                }),
              })
            }
          }
        }
      }
      // The good rows and the offset commit together.
      if (offsetSql)
        await raceAbort(connection.query(offsetSql), signal).catch((error) => {
          throw offsetError(error)
        })
      await connection.query('COMMIT')
    } catch (error) {
      broken = true
      await rollbackQuietly(connection)
      throw error
    }
    return { written, failed: failed.sort((a, b) => a.index - b.index) }
  } finally {
    if (broken && signal.aborted) {
      // A statement may still be running on this connection: do not hand it to someone else.
      ;(connection as any).destroy?.()
    } else {
      connection.release()
    }
  }
}

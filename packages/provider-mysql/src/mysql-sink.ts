import {
  COLUMNS_WIRE,
  columnsRecord,
  columnValues,
  type Data,
  ItemRows,
  ProviderError,
  type RecordData,
  raceAbort,
  type SqlValue,
  throwIfAborted,
  type WireAnswer,
  type WireOffer,
  type WireRows,
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

/** One encoded row: its row number in the batch (see BatchRows) and its VALUES tuple. */
interface EncodedRow {
  index: number
  tuple: string
  /** Whether the row has a non-null value for the first key column. */
  keyPresent: boolean
}

/** One multi-row INSERT and the rows it writes. */
interface Statement {
  sql: string
  rows: EncodedRow[]
}

/** Rows that share one column list, and so one INSERT statement shape. */
interface RowGroup {
  columns: ColumnInfo[]
  rows: EncodedRow[]
}

/** A row that failed alone, by its row number in the batch (failures are reported in row order). */
interface RowFailure {
  row: number
  failure: WriteFailure
}

/**
 * Rows of a batch that name the same columns: `names` as the items give them, `columns` the
 * destination columns they resolve to, `cell(r, c)` the value of `names[c]` in row `r`.
 */
interface RowShape {
  names: readonly string[]
  columns: ColumnInfo[]
  rows: readonly number[]
  cell(r: number, c: number): SqlValue | undefined
}

/**
 * The rows of a batch to write: records (one item per row; records may name different
 * columns, one shape per column list), or `nvisy-columns` items (many rows each, values by
 * column, one shape), behind one accessor so both are encoded and written by the same code.
 * Rows are numbered across the batch: for records, row r is item r.
 */
interface BatchRows {
  readonly shapes: readonly RowShape[]
  /** How a message names row `r`: `item 3`, or `row 17 of item 0` in a column batch. */
  label(r: number): string
  /** Row `r` failed alone: its entry in `WriteResult.failed`. */
  failure(r: number, error: ProviderError): WriteFailure
}

function dataFailure(index: number, message: string, cause?: unknown): RowFailure {
  return {
    row: index,
    failure: { index, error: mysqlError('data', message, cause === undefined ? {} : { cause }) },
  }
}

function tableName(info: TableInfo): string {
  return JSON.stringify(`${info.database}.${info.table}`)
}

/**
 * The records of a batch, one shape per column list (in the order the records name them);
 * an item that is not a record, names no column or a column the table lacks fails alone here.
 */
function recordRows(info: TableInfo, batch: readonly Data[], failures: RowFailure[]): BatchRows {
  const shapes = new Map<string, RowShape & { rows: number[] }>()
  batch.forEach((item, index) => {
    if (item.kind !== 'record') {
      failures.push(dataFailure(index, `item ${index} is a ${item.kind}; this sink takes records`))
      return
    }
    if (item.wire) {
      failures.push(
        dataFailure(
          index,
          `item ${index} holds ${JSON.stringify(item.wire.format)} rows; this write takes decoded records`,
        ),
      )
      return
    }
    const names = Object.keys(item.values)
    if (names.length === 0) {
      failures.push(dataFailure(index, `item ${index} has no values`))
      return
    }
    const signature = names.join('\u0000')
    const known = shapes.get(signature)
    if (known) {
      known.rows.push(index)
      return
    }
    const columns = resolveColumns(info, names)
    if (typeof columns === 'string') {
      failures.push(dataFailure(index, `item ${index}: ${columns}`))
      return
    }
    shapes.set(signature, {
      names,
      columns,
      rows: [index],
      cell: (r, c) => (batch[r] as RecordData).values[names[c]!],
    })
  })
  return {
    shapes: [...shapes.values()],
    label: (r) => `item ${r}`,
    failure: (r, error) => ({ index: r, error }),
  }
}

/** A malformed `nvisy-columns` batch: a bug of whoever built it, named with the rule it breaks. */
function malformed(path: string, rule: string, message: string): ProviderError {
  return new ProviderError({
    kind: 'internal',
    providerId: 'mysql',
    message: `malformed ${COLUMNS_WIRE} batch: ${message}`,
    issues: [{ path, rule, message }],
  })
}

/**
 * The `nvisy-columns` items of a write, their shape checked: every item holds `nvisy-columns`
 * rows, one array of values per column, each with `rows` values, and every item of the
 * batch names the same columns.
 */
function columnItems(batch: readonly Data[]): WireRows[] {
  const items: WireRows[] = []
  batch.forEach((item, i) => {
    const wire = item.kind === 'record' ? item.wire : undefined
    if (!wire || wire.format !== COLUMNS_WIRE)
      throw malformed(
        `/batch/${i}/wire/format`,
        'format',
        `item ${i} ${wire ? `holds ${JSON.stringify(wire.format)} rows` : item.kind === 'record' ? 'is a decoded record' : `is a ${item.kind}`}; every item of the write must hold ${COLUMNS_WIRE} rows`,
      )
    if (!Array.isArray(wire.columns) || wire.columns.some((name) => typeof name !== 'string'))
      throw malformed(
        `/batch/${i}/wire/columns`,
        'columns',
        `item ${i}: wire.columns must be a list of column names`,
      )
    if (!Number.isSafeInteger(wire.rows) || wire.rows < 0)
      throw malformed(
        `/batch/${i}/wire/rows`,
        'rows',
        `item ${i}: wire.rows must be a count of rows (a non-negative integer)`,
      )
    const seen = new Set<string>()
    const twice = wire.columns.find((name) => seen.size === seen.add(name).size)
    if (twice !== undefined)
      throw malformed(
        `/batch/${i}/wire/columns`,
        'distinct columns',
        `item ${i} names the column ${JSON.stringify(twice)} twice`,
      )
    if (wire.rows > 0 && wire.columns.length === 0)
      throw malformed(
        `/batch/${i}/wire/columns`,
        'columns',
        `item ${i} holds ${wire.rows} rows but names no columns`,
      )
    const values = wire.values
    if (!Array.isArray(values) || values.length !== wire.columns.length)
      throw malformed(
        `/batch/${i}/wire/values`,
        'one value array per column',
        `item ${i} has ${Array.isArray(values) ? values.length : 0} value arrays for ${wire.columns.length} columns (wire.values must hold one array per column)`,
      )
    values.forEach((column, c) => {
      if (!Array.isArray(column) || column.length !== wire.rows)
        throw malformed(
          `/batch/${i}/wire/values/${c}`,
          'one value per row',
          `item ${i}: column ${JSON.stringify(wire.columns[c])} holds ${Array.isArray(column) ? column.length : 0} values for ${wire.rows} rows (each column must hold wire.rows values)`,
        )
    })
    const first = items[0]
    if (first && !sameColumns(first.columns, wire.columns))
      throw malformed(
        `/batch/${i}/wire/columns`,
        'same columns',
        `item ${i} names the columns (${wire.columns.join(', ')}) and item 0 (${first.columns.join(', ')}); every item of a batch must name the same columns`,
      )
    items.push(wire)
  })
  return items
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i])
}

/**
 * The rows of `nvisy-columns` items (checked by `columnItems`), numbered across the items: one
 * shape. A column the table lacks, or two names of one column, is a `config` error for the
 * batch (the runtime's `acceptWire` checks the same before it sends any). A refused row is
 * reported with its item's index and, as `data`, the row as a record.
 */
function columnRows(info: TableInfo, items: readonly WireRows[]): BatchRows {
  const names = items[0]?.columns ?? []
  const columns = resolveColumns(info, names)
  if (typeof columns === 'string') throw mysqlError('config', columns)
  const byItem = new ItemRows(items)
  const count = byItem.count
  // Each column read through `columnValues` (a tagged column's text tagged again); several
  // items (not how the runtime batches them) have their columns joined end to end.
  const values: ((r: number) => SqlValue)[] =
    items.length === 1
      ? names.map((_, c) => columnValues(items[0]!, c))
      : names.map((_, c) => {
          const joined = new Array<SqlValue>(count)
          for (const [i, wire] of items.entries()) {
            const read = columnValues(wire, c)
            const start = byItem.start(i)
            for (let r = 0; r < wire.rows; r++) joined[start + r] = read(r)
          }
          return (r: number) => joined[r]!
        })
  const rows = new Array<number>(count)
  for (let r = 0; r < count; r++) rows[r] = r
  return {
    shapes: count === 0 ? [] : [{ names, columns, rows, cell: (r, c) => values[c]!(r) }],
    label: (r) => {
      const i = byItem.locate(r)
      return `row ${r - byItem.start(i)} of item ${i}`
    },
    failure: (r, error) => {
      const i = byItem.locate(r)
      return { index: i, error, data: columnsRecord(items[i]!, r - byItem.start(i)) }
    },
  }
}

/** The destination columns `names` write to, or why they cannot be written. */
function resolveColumns(info: TableInfo, names: readonly string[]): ColumnInfo[] | string {
  const columns: ColumnInfo[] = []
  const seen = new Map<ColumnInfo, string>()
  for (const name of names) {
    const column = findColumn(info, name)
    if (!column) return `column ${JSON.stringify(name)} does not exist in ${tableName(info)}`
    const other = seen.get(column)
    if (other !== undefined)
      return `the names ${JSON.stringify(other)} and ${JSON.stringify(name)} are both column ${JSON.stringify(column.name)} of ${tableName(info)} (MySQL column names are not case-sensitive)`
    seen.set(column, name)
    columns.push(column)
  }
  return columns
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

/** Encode every value of every row for its column's declared type; a value refused fails its row alone. */
function encodeRows(
  rows: BatchRows,
  keys: readonly ColumnInfo[],
  failures: RowFailure[],
): RowGroup[] {
  const groups: RowGroup[] = []
  for (const shape of rows.shapes) {
    const { names, columns, cell } = shape
    const count = columns.length
    const firstKey = keys[0] ? columns.indexOf(keys[0]) : -1
    const encoded: EncodedRow[] = []
    nextRow: for (const r of shape.rows) {
      const literals = new Array<string>(count)
      for (let c = 0; c < count; c++) {
        const value = cell(r, c)
        try {
          literals[c] = encodeFor(columns[c]!, value)
        } catch (error) {
          // The encoder refuses a value with an error naming its type and the rule (reading
          // the value, outside this try, is not the row's fault).
          failures.push({
            row: r,
            failure: rows.failure(
              r,
              mysqlError(
                'data',
                `${rows.label(r)}: column ${JSON.stringify(names[c])} (${columns[c]!.columnType}): ${(error as Error).message}`,
                { cause: error },
              ),
            ),
          })
          continue nextRow
        }
      }
      encoded.push({
        index: r,
        tuple: `(${literals.join(', ')})`,
        keyPresent: firstKey >= 0 && literals[firstKey] !== 'NULL',
      })
    }
    if (encoded.length > 0) groups.push({ columns, rows: encoded })
  }
  return groups
}

/** Multi-row INSERT statements of `rows`, in their order, each under the row and byte limits. */
function buildStatements(
  rows: readonly EncodedRow[],
  head: string,
  tail: string,
  maxBytes: number,
): Statement[] {
  const statements: Statement[] = []
  let current: EncodedRow[] = []
  let bytes = head.length + tail.length
  const flush = () => {
    if (current.length === 0) return
    statements.push({
      sql: `${head}${current.map((r) => r.tuple).join(', ')}${tail}`,
      rows: current,
    })
    current = []
    bytes = head.length + tail.length
  }
  for (const row of rows) {
    // String length counts UTF-16 units; *3 bounds the UTF-8 size of any BMP text.
    const size = row.tuple.length * 3 + 2
    if (current.length > 0 && (current.length >= MAX_ROWS_PER_STATEMENT || bytes + size > maxBytes))
      flush()
    current.push(row)
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
    { cause: classified.cause },
  )
}

async function rollbackQuietly(connection: PoolConnection): Promise<void> {
  try {
    await connection.query('ROLLBACK')
  } catch {
    // The connection is broken; the pool drops it on release below.
  }
}

/** How `replayBisecting` writes a part of the rows and reports a row refused alone. */
interface Replay {
  connection: PoolConnection
  signal: AbortSignal
  /** Write `part` (its multi-row INSERTs, in row order); throws what the server refused. */
  write(part: readonly EncodedRow[]): Promise<void>
  refused(row: EncodedRow, error: unknown): void
}

/**
 * Inside the replay's transaction: write `rows` under a savepoint; when the server refuses
 * them on a row's values, roll back to the savepoint and write each half the same way, until
 * the refused rows stand alone. The parts are written in row order, so with keys repeated in a
 * batch the last row of a key still wins. A few bad rows among n cost about 2*log2(n)
 * statements each, not one per row. Any other error ends the replay (the batch fails).
 *
 * One savepoint name serves every part: a part starts after the previous one is written or
 * rolled back, and SAVEPOINT with a name in use moves it (so none is released).
 */
async function replayBisecting(
  replay: Replay,
  rows: readonly EncodedRow[],
  refusedWhole = false,
): Promise<void> {
  const { connection, signal } = replay
  // The statement the first attempt saw refused is split at once (not sent whole again).
  if (!refusedWhole || rows.length === 1) {
    throwIfAborted(signal)
    await connection.query('SAVEPOINT nvisy_part')
    try {
      await replay.write(rows)
      return
    } catch (error) {
      if (!isDataError(error)) throw error
      await connection.query('ROLLBACK TO SAVEPOINT nvisy_part')
      if (rows.length === 1) {
        replay.refused(rows[0]!, error)
        return
      }
    }
  }
  const half = Math.ceil(rows.length / 2)
  await replayBisecting(replay, rows.slice(0, half))
  await replayBisecting(replay, rows.slice(half))
}

/**
 * A row the server refused alone: its failure, naming the row and the server's reason without
 * the values (see withoutValues). In upsert mode a NULL refused for the first key column is the
 * guard of statementTail: the row collides with another row on a different unique key.
 */
function refusal(
  rows: BatchRows,
  row: EncodedRow,
  error: unknown,
  keys: readonly ColumnInfo[],
  mode: 'upsert' | 'append',
): RowFailure {
  const classified = classifyMysqlError(error)!
  const guardColumn = keys[0]
  const collided =
    mode === 'upsert' &&
    (error as { errno?: number }).errno === 1048 &&
    guardColumn !== undefined &&
    classified.message.includes(`'${guardColumn.name}'`) &&
    row.keyPresent
  return {
    row: row.index,
    failure: rows.failure(
      row.index,
      new ProviderError({
        kind: 'data',
        message: collided
          ? `${rows.label(row.index)}: collides with another row on a unique key other than (${keys.map((k) => k.name).join(', ')}); not overwritten`
          : `${rows.label(row.index)}: ${classified.message}`,
        code: classified.code,
        cause: classified.cause,
      }),
    ),
  }
}

/**
 * Write a batch in one transaction: multi-row INSERTs (upserts by key), committed
 * together, with the batch's offset when it has one. The batch is records, or with
 * `options.wire` set to `nvisy-columns` items of rows held by column (see BatchRows): the
 * same encoding and statements either way. When a statement fails on a row's values, the
 * transaction is rolled back and the batch replayed in parts under savepoints, a refused part
 * split in two until each bad row fails alone (see `replayBisecting`; a row of a column batch
 * with its item's index and the row as a record) and the good rows are committed.
 */
export async function writeTable(
  client: MysqlClient,
  stream: MysqlSinkStream,
  batch: readonly Data[],
  options: WriteOptions,
): Promise<WriteResult> {
  const { signal } = options
  throwIfAborted(signal)
  if (options.wire !== undefined && options.wire !== COLUMNS_WIRE)
    throw mysqlError(
      'config',
      `this sink writes decoded records or ${COLUMNS_WIRE} batches, not ${JSON.stringify(options.wire)} rows`,
    )
  // A column batch is checked whole before anything is written.
  const items = options.wire === COLUMNS_WIRE ? columnItems(batch) : undefined
  const database = client.database(stream.database)
  let info = await client.tableInfo(database, stream.table, signal)
  // A column the cached metadata does not know may have been added since: look again once.
  const unknownColumn = items
    ? (items[0]?.columns ?? []).some((name) => !findColumn(info, name))
    : batch.some(
        (item) =>
          item.kind === 'record' &&
          Object.keys(item.values).some((name) => !findColumn(info, name)),
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

  const failures: RowFailure[] = []
  const rows = items ? columnRows(info, items) : recordRows(info, batch, failures)
  const groups = encodeRows(rows, keys, failures)
  // In row order (for records, item order); a sort keeps each row's failures in their order.
  const failed = () => failures.sort((a, b) => a.row - b.row).map((f) => f.failure)
  const maxBytes = client.statementBytes()
  const plans = groups.map((group) => {
    const head = statementHead(info, group.columns)
    const tail = statementTail(group.columns, keys, mode)
    return { head, tail, statements: buildStatements(group.rows, head, tail, maxBytes) }
  })
  const rowCount = groups.reduce((n, g) => n + g.rows.length, 0)
  const offset = options.offset
  if (rowCount === 0 && !offset) return { written: 0, failed: failed() }

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
    let running: Statement | undefined
    await connection.query('START TRANSACTION')
    try {
      for (const plan of plans) {
        for (const statement of plan.statements) {
          throwIfAborted(signal)
          running = statement
          await raceAbort(connection.query(statement.sql), signal)
        }
      }
      running = undefined
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
      return { written: rowCount, failed: failed() }
    } catch (error) {
      if (broken) throw error
      await rollbackQuietly(connection)
      if (!isDataError(error)) {
        broken = true
        throw error
      }
    }

    // Slow path: the same statements again, in parts under savepoints, split where refused.
    let written = 0
    await connection.query('START TRANSACTION')
    try {
      for (const plan of plans) {
        const replay: Replay = {
          connection,
          signal,
          write: async (part) => {
            for (const statement of buildStatements(part, plan.head, plan.tail, maxBytes)) {
              throwIfAborted(signal)
              await raceAbort(connection.query(statement.sql), signal)
            }
            written += part.length
          },
          refused: (row, error) => failures.push(refusal(rows, row, error, keys, mode)),
        }
        for (const statement of plan.statements)
          await replayBisecting(replay, statement.rows, statement === running)
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
    return { written, failed: failed() }
  } finally {
    if (broken && signal.aborted) {
      // A statement may still be running on this connection: do not hand it to someone else.
      ;(connection as any).destroy?.()
    } else {
      connection.release()
    }
  }
}

/**
 * `acceptWire`: whether the destination takes `nvisy-columns` batches with the offered
 * columns. Their values are encoded per destination column as records' are, in either mode,
 * so a table that has every offered column (read again, after `prepare`) takes them.
 */
export async function acceptColumns(
  client: MysqlClient,
  stream: MysqlSinkStream,
  offer: WireOffer,
  signal: AbortSignal,
): Promise<WireAnswer> {
  throwIfAborted(signal)
  if (offer.format !== COLUMNS_WIRE)
    return { accepted: false, reason: `format ${JSON.stringify(offer.format)}` }
  const info = await client.tableInfo(client.database(stream.database), stream.table, signal, true)
  if (info.type === 'view') return { accepted: false, reason: `${tableName(info)} is a view` }
  const columns = resolveColumns(info, offer.columns)
  return typeof columns === 'string' ? { accepted: false, reason: columns } : { accepted: true }
}

import { addAbortSignal, type Readable } from 'node:stream'
import {
  itemsFromPages,
  type Page,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  type SqlValue,
  type StreamInfo,
  throwIfAborted,
} from '@nvisy/provider-core'
import { findColumn, type MysqlClient, type TableInfo } from './mysql-client.js'
import { mysqlError } from './mysql-errors.js'
import type { MysqlContext, MysqlFilter, MysqlRange, MysqlStream } from './mysql-schemas.js'
import {
  type ColumnInfo,
  type CursorValue,
  cursorLiteral,
  cursorTypeProblem,
  type Decoder,
  type DecoderOptions,
  decoderFor,
  quoteId,
  quoteString,
  quoteTable,
  selectExpression,
  toCursorValue,
  toLiteral,
} from './mysql-values.js'

/** What a read needs, resolved once from the stream settings and the table's metadata. */
export interface ReadPlan {
  info: TableInfo
  /** The SELECT list: requested columns, then cursor columns not requested. */
  selected: ColumnInfo[]
  /** How many of `selected` go into each record. */
  outputCount: number
  cursor: ColumnInfo[]
  /** Indexes of the cursor columns in `selected`. */
  cursorIndexes: number[]
  decoders: (Decoder | undefined)[]
  names: string[]
  /** SELECT ... FROM ... [WHERE filter */
  selectSql: string
  filterSql: string | undefined
  /** The stream's key range (a partition), as SQL conditions. */
  rangeSql: string | undefined
  orderSql: string
  pageSize: number
}

function resolveColumn(info: TableInfo, name: string, field: string): ColumnInfo {
  const column = findColumn(info, name)
  if (!column) {
    throw mysqlError(
      'config',
      `${field}: column ${JSON.stringify(name)} does not exist in ${JSON.stringify(`${info.database}.${info.table}`)}`,
    )
  }
  return column
}

function filterSql(info: TableInfo, filters: readonly MysqlFilter[]): string | undefined {
  if (filters.length === 0) return undefined
  const parts = filters.map((filter, i) => {
    const column = resolveColumn(info, filter.column, `/stream/filter/${i}/column`)
    const id = quoteId(column.name)
    const literal = (value: unknown) => {
      try {
        return toLiteral(value as SqlValue, column)
      } catch (error) {
        throw mysqlError('config', `/stream/filter/${i}/value: ${(error as Error).message}`)
      }
    }
    const needsValue = filter.op !== 'is null' && filter.op !== 'is not null'
    if (needsValue && filter.value === undefined) {
      throw mysqlError('config', `/stream/filter/${i}/value is required for operator ${filter.op}`)
    }
    switch (filter.op) {
      case 'is null':
        return `${id} IS NULL`
      case 'is not null':
        return `${id} IS NOT NULL`
      case 'in':
      case 'not in': {
        const values = Array.isArray(filter.value) ? filter.value : [filter.value]
        return `${id} ${filter.op === 'in' ? 'IN' : 'NOT IN'} (${values.map(literal).join(', ')})`
      }
      default: {
        if (Array.isArray(filter.value)) {
          throw mysqlError(
            'config',
            `/stream/filter/${i}/value must be a single value for operator ${filter.op}`,
          )
        }
        const op = filter.op === 'like' ? 'LIKE' : filter.op === 'not like' ? 'NOT LIKE' : filter.op
        return `${id} ${op} ${literal(filter.value)}`
      }
    }
  })
  return parts.map((p) => `(${p})`).join(' AND ')
}

export async function planRead(
  client: MysqlClient,
  stream: MysqlStream,
  signal: AbortSignal,
): Promise<ReadPlan> {
  const database = client.database(stream.database)
  const info = await client.tableInfo(database, stream.table, signal)
  const requested = stream.columns
    ? stream.columns.map((name, i) => resolveColumn(info, name, `/stream/columns/${i}`))
    : info.columns
  let cursor: ColumnInfo[]
  if (stream.cursor) {
    cursor = stream.cursor.map((name, i) => resolveColumn(info, name, `/stream/cursor/${i}`))
    // The primary key breaks ties so that the order is total.
    for (const key of info.primaryKey) {
      if (!cursor.some((c) => c.name === key)) cursor.push(info.byName.get(key)!)
    }
  } else {
    if (info.primaryKey.length === 0) {
      throw mysqlError(
        'config',
        `/stream/cursor is required: ${info.type} ${JSON.stringify(`${database}.${stream.table}`)} has no primary key to order by`,
      )
    }
    cursor = info.primaryKey.map((key) => info.byName.get(key)!)
  }
  for (const [i, column] of cursor.entries()) {
    const problem = cursorTypeProblem(column)
    if (problem)
      throw mysqlError(
        'config',
        `/stream/cursor/${i}: column ${JSON.stringify(column.name)}: ${problem}`,
      )
  }
  const selected = [...requested]
  for (const column of cursor) if (!selected.includes(column)) selected.push(column)
  const cursorIndexes = cursor.map((c) => selected.indexOf(c))
  const options: DecoderOptions = {
    tinyint1AsBoolean: stream.tinyint1AsBoolean ?? false,
    zeroDates: stream.zeroDates ?? 'error',
    rowKey: (row) =>
      `(${cursor.map((c, i) => `${c.name}=${JSON.stringify(toCursorValue(row[cursorIndexes[i]!] as SqlValue))}`).join(', ')})`,
  }
  const selectList = selected.map(selectExpression).join(', ')
  return {
    info,
    selected,
    outputCount: requested.length,
    cursor,
    cursorIndexes,
    decoders: selected.map((c) => decoderFor(c, options)),
    names: selected.map((c) => c.name),
    selectSql: `SELECT ${selectList} FROM ${quoteTable(database, info.table)}`,
    filterSql: filterSql(info, stream.filter ?? []),
    rangeSql: rangeSql(cursor, stream.range),
    orderSql: ` ORDER BY ${cursor.map((c) => `${quoteId(c.name)} ASC`).join(', ')}`,
    pageSize: stream.pageSize ?? 50_000,
  }
}

/**
 * The keyset condition "row comes after `values`" in the order of ORDER BY c1, c2, ...
 * ASC, where MySQL sorts NULL first: expanded to (c1 > v1) OR (c1 = v1 AND c2 > v2) ...
 * with a leading c1 >= v1 so the range optimizer uses the index.
 */
export function keysetSql(cursor: readonly ColumnInfo[], values: readonly CursorValue[]): string {
  const ids = cursor.map((c) => quoteId(c.name))
  const literals = cursor.map((c, i) => cursorLiteral(values[i] ?? null, c))
  const greater = (i: number) =>
    values[i] === null ? `${ids[i]} IS NOT NULL` : `${ids[i]} > ${literals[i]}`
  const equal = (i: number) =>
    values[i] === null ? `${ids[i]} IS NULL` : `${ids[i]} = ${literals[i]}`
  const branches: string[] = []
  for (let i = 0; i < cursor.length; i++) {
    const prefix = Array.from({ length: i }, (_, j) => equal(j))
    branches.push([...prefix, greater(i)].join(' AND '))
  }
  const ored = branches.length === 1 ? branches[0]! : branches.map((b) => `(${b})`).join(' OR ')
  if (cursor.length > 1 && values[0] !== null) return `${ids[0]} >= ${literals[0]} AND (${ored})`
  return ored
}

/**
 * "Row sorts at or before `values`" (keys NOT NULL): (c1 < v1) OR (c1 = v1 AND c2 < v2) ...
 * OR (every column equal), with a leading c1 <= v1 for the range optimizer.
 */
export function keysetUpToSql(
  cursor: readonly ColumnInfo[],
  values: readonly CursorValue[],
): string {
  const ids = cursor.map((c) => quoteId(c.name))
  const literals = cursor.map((c, i) => cursorLiteral(values[i] ?? null, c))
  const branches: string[] = []
  for (let i = 0; i < cursor.length; i++) {
    const prefix = Array.from({ length: i }, (_, j) => `${ids[j]} = ${literals[j]}`)
    branches.push([...prefix, `${ids[i]} < ${literals[i]}`].join(' AND '))
  }
  branches.push(cursor.map((_, j) => `${ids[j]} = ${literals[j]}`).join(' AND '))
  const ored = branches.map((b) => `(${b})`).join(' OR ')
  return `${ids[0]} <= ${literals[0]} AND (${ored})`
}

/** The SQL of a stream's key range, its bounds checked against the cursor (config errors name the field). */
export function rangeSql(
  cursor: readonly ColumnInfo[],
  range: MysqlRange | undefined,
): string | undefined {
  if (!range) return undefined
  const parts: string[] = []
  for (const bound of ['after', 'through'] as const) {
    const values = range[bound]
    if (values === undefined) continue
    const path = `/stream/range/${bound}`
    const fail = (message: string) =>
      new ProviderError({
        kind: 'config',
        providerId: 'mysql',
        message: `${path}: ${message}`,
        issues: [{ path, rule: 'cursor tuple', message }],
      })
    if (values.length !== cursor.length)
      throw fail(
        `has ${values.length} values, the stream's cursor has ${cursor.length} columns (${cursor.map((c) => c.name).join(', ')})`,
      )
    cursor.forEach((column, i) => {
      try {
        cursorLiteral(values[i]!, column)
      } catch {
        throw fail(
          `value ${i} does not fit column ${JSON.stringify(column.name)} (${column.columnType})`,
        )
      }
    })
    parts.push(bound === 'after' ? keysetSql(cursor, values) : keysetUpToSql(cursor, values))
  }
  return parts.length === 0 ? undefined : parts.map((p) => `(${p})`).join(' AND ')
}

export function pageSql(plan: ReadPlan, after: readonly CursorValue[] | undefined): string {
  const conditions: string[] = []
  if (plan.filterSql) conditions.push(plan.filterSql)
  if (plan.rangeSql) conditions.push(plan.rangeSql)
  if (after) conditions.push(`(${keysetSql(plan.cursor, after)})`)
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''
  return `${plan.selectSql}${where}${plan.orderSql} LIMIT ${plan.pageSize}`
}

export function checkContext(plan: ReadPlan, context: MysqlContext): CursorValue[] {
  const expected = plan.cursor.map((c) => c.name)
  const same =
    context.columns.length === expected.length &&
    context.columns.every((name, i) => name.toLowerCase() === expected[i]!.toLowerCase())
  if (!same || context.values.length !== expected.length) {
    throw mysqlError(
      'config',
      `/after was made with cursor columns ${JSON.stringify(context.columns)}; this stream orders by ${JSON.stringify(expected)}`,
    )
  }
  return context.values
}

// How a cursor column's JSON-safe value is taken from the row, cheapest first: mysql2's
// own text (BIGINT, DECIMAL, DATE, TIME arrive as strings), the tagged text, or the value.
const RAW_CURSOR_TYPES = new Set(['bigint', 'decimal', 'numeric', 'date', 'time'])
const TAGGED_CURSOR_TYPES = new Set(['datetime', 'timestamp'])
const PLAIN_CURSOR_TYPES = new Set([
  'tinyint',
  'smallint',
  'mediumint',
  'int',
  'integer',
  'year',
  'char',
  'varchar',
  'tinytext',
  'text',
  'mediumtext',
  'longtext',
  'enum',
  'set',
])

type ItemBuilder = (row: unknown[]) => ReadItem<MysqlContext>

/**
 * A row-to-item function compiled for one read: an object literal with the column names
 * as fixed keys is several times cheaper per row than building the object key by key,
 * and reads dominate a copy. Keys are JSON string literals in computed position, so no
 * column name (not even "__proto__") can do more than name a property.
 */
export function compileItemBuilder(plan: ReadPlan, cursorNames: readonly string[]): ItemBuilder {
  const lines: string[] = []
  plan.names.forEach((_, i) => {
    lines.push(
      plan.decoders[i]
        ? `const v${i} = row[${i}] === null ? null : d[${i}](row[${i}], row)`
        : `const v${i} = row[${i}]`,
    )
  })
  const fields = plan.names
    .slice(0, plan.outputCount)
    .map((name, i) => `[${JSON.stringify(name)}]: v${i}`)
    .join(', ')
  const position = plan.cursorIndexes
    .map((i) => {
      const column = plan.selected[i]!
      if (RAW_CURSOR_TYPES.has(column.dataType)) return `row[${i}]`
      if (TAGGED_CURSOR_TYPES.has(column.dataType))
        return `(v${i} === null ? row[${i}] : v${i}.value)`
      if (PLAIN_CURSOR_TYPES.has(column.dataType) && !plan.decoders[i]) return `v${i}`
      return `c(v${i})`
    })
    .join(', ')
  const body = `${lines.join('\n')}
return { data: { kind: 'record', values: { ${fields} } }, context: { columns, values: [${position}] } }`
  const build = new Function('d', 'c', 'columns', `return function buildItem(row) {\n${body}\n}`)
  return build(plan.decoders, toCursorValue, cursorNames) as ItemBuilder
}

/** Settle when the stream has rows to read or has ended; reject with its error. */
function readable(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.errored) return reject(stream.errored)
    if (stream.readableEnded || stream.readableLength > 0) return resolve()
    const cleanup = () => {
      stream.off('readable', onReady)
      stream.off('end', onReady)
      stream.off('close', onClose)
      stream.off('error', onError)
    }
    const onReady = () => {
      cleanup()
      resolve()
    }
    const onClose = () => {
      cleanup()
      if (stream.errored) reject(stream.errored)
      else if (!stream.readableEnded) reject(new Error('the row stream closed before its end'))
      else resolve()
    }
    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }
    stream.on('readable', onReady)
    stream.on('end', onReady)
    stream.on('close', onClose)
    stream.on('error', onError)
  })
}

export function readTable(
  client: MysqlClient,
  stream: MysqlStream,
  options: ReadOptions<MysqlContext>,
): AsyncIterableIterator<ReadItem<MysqlContext>> {
  return itemsFromPages(readPages(client, stream, options), options.signal)
}

/**
 * The rows of a read in the batches the row stream has buffered, each with the item
 * builder; `finally` releases (or, for a result set left half-read, destroys) the connection.
 */
export async function* readPages(
  client: MysqlClient,
  stream: MysqlStream,
  options: ReadOptions<MysqlContext>,
  planned?: ReadPlan,
): AsyncGenerator<Page<unknown[], ReadItem<MysqlContext>>, void, undefined> {
  const { signal } = options
  const plan = planned ?? (await planRead(client, stream, signal))
  const cursorNames = plan.cursor.map((c) => c.name)
  const after: CursorValue[] | undefined = options.after
    ? checkContext(plan, options.after)
    : undefined
  const { pageSize } = plan
  const buildItem = compileItemBuilder(plan, cursorNames)

  let position: CursorValue[] | undefined = after
  for (;;) {
    throwIfAborted(signal)
    const connection = await client.acquire(signal)
    let count = 0
    let last: unknown[] | undefined
    let drained = false
    try {
      // A streamed query: mysql2 pauses the socket while the consumer is behind, so memory
      // holds a few rows whatever their size; LIMIT bounds how long one statement runs.
      const raw = (connection as any).connection ?? connection
      const rows: Readable = raw
        .query({ sql: pageSql(plan, position), rowsAsArray: true })
        .stream({ highWaterMark: 512 })
      // Errors surface through rows.errored below; this listener keeps one that arrives
      // while the consumer holds an item from being an uncaught 'error' event.
      rows.on('error', () => {})
      addAbortSignal(signal, rows)
      // Rows already buffered are taken synchronously, all at once; only an empty buffer waits.
      for (;;) {
        let row = rows.read() as unknown[] | null
        if (row === null) {
          if (rows.readableEnded) break
          await readable(rows)
          continue
        }
        const batch: unknown[][] = []
        while (row !== null) {
          batch.push(row)
          row = rows.read() as unknown[] | null
        }
        count += batch.length
        last = batch[batch.length - 1]
        yield { rows: batch, build: buildItem }
      }
      drained = true
    } finally {
      // A result set left half-read would poison the connection: close it instead.
      if (drained) connection.release()
      else connection.destroy()
    }
    if (count < pageSize) return
    // The next page starts after the last row of this one.
    position = buildItem(last!).context.values
  }
}

/** Every table and view of the default database, with its columns. */
export async function discoverTables(
  client: MysqlClient,
  signal: AbortSignal,
): Promise<StreamInfo[]> {
  const database = client.database(undefined)
  const tables = await client.withConnection(signal, async (connection) => {
    const [rows] = await connection.query({
      sql: `SELECT TABLE_NAME, TABLE_TYPE, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)} ORDER BY TABLE_NAME`,
      rowsAsArray: true,
    })
    return rows as string[][]
  })
  const found: StreamInfo[] = []
  for (const [name, type, comment] of tables) {
    const info = await client.tableInfo(database, String(name), signal, true)
    const entry: StreamInfo = {
      name: String(name),
      type: type === 'VIEW' || type === 'SYSTEM VIEW' ? 'view' : 'table',
      data: 'record',
      stream: { table: String(name), database },
      fields: info.columns.map((c) => ({
        name: c.name,
        type: c.json ? 'json' : c.columnType,
        nullable: c.nullable,
        primaryKey: c.primaryKeyPosition > 0,
      })),
    }
    if (comment) entry.description = String(comment)
    found.push(entry)
  }
  return found
}

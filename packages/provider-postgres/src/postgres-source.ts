import {
  abortReason,
  type ColumnPusher,
  columnBatches,
  itemsFromPages,
  type Page,
  ProviderError,
  type ReadItem,
  raceAbort,
  type SqlValue,
  type WireReadOptions,
} from '@nvisy/provider-core'
import type { PoolClient } from 'pg'
import Cursor from 'pg-cursor'
import {
  type ColumnInfo,
  describeTable,
  qualifiedName,
  quoteIdent,
  type TableInfo,
  tableNotFound,
} from './postgres-catalog.js'
import { hasSqlState } from './postgres-errors.js'
import type { PostgresContext, PostgresFilter, PostgresStream } from './postgres-schemas.js'
import {
  arrayLiteral,
  type ColumnType,
  columnTagText,
  converterExpression,
  converterFor,
  OID,
  sqlValueToText,
  type TextConverter,
  timestampFromText,
  timestamptzFromText,
} from './postgres-values.js'

/** Every type parser returns PostgreSQL's text as is: conversion happens per OID afterwards. */
const keepText = (text: string) => text
export const TEXT_TYPES = { getTypeParser: () => keepText } as any

export interface ReadPlan {
  sql: string
  values: (string | null)[]
  /** Columns returned in each record, with their types and converters, by position in the row. */
  output: { name: string; index: number; type: ColumnType; convert: TextConverter }[]
  /** Cursor columns, by position in the row. */
  cursor: { column: ColumnInfo; index: number }[]
}

export function configError(message: string, path?: string): ProviderError {
  return new ProviderError({
    kind: 'config',
    message,
    issues: path ? [{ path, rule: 'exists', message }] : undefined,
  })
}

function requireColumn(table: TableInfo, name: string, path: string): ColumnInfo {
  const column = table.byName.get(name)
  if (!column) {
    throw configError(
      `column ${JSON.stringify(name)} does not exist in ${JSON.stringify(table.schema)}.${JSON.stringify(table.table)} (${path})`,
      path,
    )
  }
  return column
}

function filterValueText(value: unknown): string | null {
  if (value === null || value === undefined) return null
  return sqlValueToText(value as SqlValue)
}

function filterClause(
  filter: PostgresFilter,
  index: number,
  table: TableInfo,
  values: (string | null)[],
): string {
  const path = `/stream/filter/${index}`
  requireColumn(table, filter.column, `${path}/column`)
  const column = quoteIdent(filter.column)
  switch (filter.op) {
    case 'is null':
      return `${column} IS NULL`
    case 'is not null':
      return `${column} IS NOT NULL`
    case 'in': {
      if (!Array.isArray(filter.value))
        throw configError(`${path}/value must be an array for op "in"`, `${path}/value`)
      values.push(arrayLiteral(filter.value as SqlValue[]))
      return `${column} = ANY($${values.length})`
    }
    default: {
      if (filter.value === null || filter.value === undefined || Array.isArray(filter.value)) {
        throw configError(
          `${path}/value must be a single non-null value for op "${filter.op}" (use "is null" to match nulls)`,
          `${path}/value`,
        )
      }
      values.push(filterValueText(filter.value))
      return `${column} ${filter.op} $${values.length}`
    }
  }
}

/** The columns a stream orders and resumes by: `stream.cursor` with the primary key appended, or the primary key. */
export function cursorColumns(table: TableInfo, stream: PostgresStream): string[] {
  if (stream.cursor) {
    for (const [i, name] of stream.cursor.entries())
      requireColumn(table, name, `/stream/cursor/${i}`)
    return [...stream.cursor, ...table.primaryKey.filter((k) => !stream.cursor!.includes(k))]
  }
  if (table.primaryKey.length === 0) {
    throw configError(
      `${JSON.stringify(table.schema)}.${JSON.stringify(table.table)} has no primary key: set stream.cursor to unique, non-null columns to order and resume by`,
      '/stream/cursor',
    )
  }
  return table.primaryKey
}

/** `(c1, c2, ...) <op> ($n, $n+1, ...)`: a row comparison of the cursor columns with a tuple of text values. */
function tupleClause(
  cursorNames: readonly string[],
  op: '>' | '<=',
  tuple: readonly (string | number)[],
  values: (string | null)[],
  path: string,
  what: string,
): string {
  if (tuple.length !== cursorNames.length) {
    throw configError(
      `${what} has ${tuple.length} cursor values, the stream's cursor has ${cursorNames.length} columns (${cursorNames.join(', ')})`,
      path,
    )
  }
  const params = tuple.map((v) => {
    values.push(String(v))
    return `$${values.length}`
  })
  return `(${cursorNames.map(quoteIdent).join(', ')}) ${op} (${params.join(', ')})`
}

/**
 * The conditions of a read, in order: the stream's filter, its key range (a partition:
 * after `range.after`, at or before `range.through`), then "after the resume context".
 */
export function whereClauses(
  table: TableInfo,
  stream: PostgresStream,
  cursorNames: readonly string[],
  after: PostgresContext | undefined,
  values: (string | null)[],
): string[] {
  const where: string[] = (stream.filter ?? []).map((f, i) => filterClause(f, i, table, values))
  const range = stream.range
  if (range?.after)
    where.push(
      tupleClause(cursorNames, '>', range.after, values, '/stream/range/after', 'range.after'),
    )
  if (range?.through)
    where.push(
      tupleClause(
        cursorNames,
        '<=',
        range.through,
        values,
        '/stream/range/through',
        'range.through',
      ),
    )
  if (after)
    where.push(
      tupleClause(cursorNames, '>', after.cursor, values, '/after/cursor', 'resume context'),
    )
  return where
}

/** The keyset query: filter and key range, then "after the last cursor", ordered by the cursor columns. */
export function planRead(
  table: TableInfo,
  stream: PostgresStream,
  after: PostgresContext | undefined,
): ReadPlan {
  const outputNames = stream.columns ?? table.columns.map((c) => c.name)
  for (const [i, name] of outputNames.entries()) requireColumn(table, name, `/stream/columns/${i}`)
  const cursorNames = cursorColumns(table, stream)
  const selected = [...outputNames, ...cursorNames.filter((n) => !outputNames.includes(n))]
  const values: (string | null)[] = []
  const where = whereClauses(table, stream, cursorNames, after, values)
  const sql =
    `SELECT ${selected.map(quoteIdent).join(', ')} FROM ${qualifiedName(table.schema, table.table)}` +
    (where.length > 0 ? ` WHERE ${where.map((w) => `(${w})`).join(' AND ')}` : '') +
    ` ORDER BY ${cursorNames.map(quoteIdent).join(', ')}`
  return {
    sql,
    values,
    output: outputNames.map((name, index) => ({
      name,
      index,
      type: table.byName.get(name)!,
      convert: converterFor(table.byName.get(name)!),
    })),
    cursor: cursorNames.map((name) => ({
      column: table.byName.get(name)!,
      index: selected.indexOf(name),
    })),
  }
}

type RowBuilder = (row: (string | null)[]) => ReadItem<PostgresContext>

function nullCursor(name: string): ProviderError {
  return new ProviderError({
    kind: 'config',
    message: `cursor column ${JSON.stringify(name)} is null in a row: cursor columns must be NOT NULL`,
  })
}

/**
 * The row-to-item function of one read, compiled once from the plan: one object literal
 * with the column names as fixed keys and each column's conversion inlined is several times
 * cheaper per row (and allocates less) than a loop that adds keys one by one and calls a
 * converter per value. Keys are JSON string literals in computed position, so no column
 * name (not even "__proto__") can do more than name a property; converters that have no
 * inline form are called from `f`. The result is a plain object: `{ data, context }`.
 */
export function compileRowBuilder(plan: ReadPlan): RowBuilder {
  const lines: string[] = []
  const fields = plan.output.map((field, i) => {
    const expression = converterExpression(field.type, `t${i}`) ?? `f[${i}](t${i})`
    lines.push(
      `const t${i} = row[${field.index}]`,
      `const v${i} = t${i} === null || t${i} === undefined ? null : ${expression}`,
    )
    return `[${JSON.stringify(field.name)}]: v${i}`
  })
  const position = plan.cursor.map((c, i) => {
    lines.push(
      `const c${i} = row[${c.index}]`,
      `if (c${i} === null || c${i} === undefined) throw nullCursor(${JSON.stringify(c.column.name)})`,
    )
    const oid = c.column.baseOid || c.column.oid
    return oid === OID.int2 || oid === OID.int4 ? `Number(c${i})` : `c${i}`
  })
  const body = `${lines.join('\n')}
return { data: { kind: 'record', values: { ${fields.join(', ')} } }, context: { cursor: [${position.join(', ')}] } }`
  const compile = new Function(
    'f',
    'nullCursor',
    'timestampFromText',
    'timestamptzFromText',
    `return function buildItem(row) {\n${body}\n}`,
  )
  return compile(
    plan.output.map((field) => field.convert),
    nullCursor,
    timestampFromText,
    timestamptzFromText,
  ) as RowBuilder
}

export interface SourceDeps {
  acquire(): Promise<PoolClient>
}

/**
 * Stream rows in cursor order through a server-side portal (pg-cursor), `pageSize` rows
 * per round trip: memory stays flat whatever the table size.
 */
export function readTable(
  deps: SourceDeps,
  stream: PostgresStream,
  schema: string,
  after: PostgresContext | undefined,
  signal: AbortSignal,
): AsyncIterableIterator<ReadItem<PostgresContext>> {
  return itemsFromPages(readPages(deps, stream, schema, after, signal), signal)
}

type Row = (string | null)[]

type Pusher = ColumnPusher<Row>

/**
 * The row-to-columns function of one read, compiled once like the row builder: each output
 * column's text converted (inline where it can be) and pushed onto its array; it returns the
 * row's size as text, for the byte bound.
 */
function compilePusher(plan: ReadPlan): Pusher {
  const lines: string[] = ['let size = 0']
  plan.output.forEach((field, i) => {
    // A tagged column holds its text (WireRows.tags, see columnTags).
    const expression =
      columnTagText(field.type, `t${i}`)?.text ??
      converterExpression(field.type, `t${i}`) ??
      `f[${i}](t${i})`
    lines.push(
      `const t${i} = row[${field.index}]`,
      `if (t${i} === null || t${i} === undefined) { cols[${i}].push(null); size += 4 } else { cols[${i}].push(${expression}); size += t${i}.length }`,
    )
  })
  lines.push('return size')
  const compile = new Function(
    'f',
    'timestampFromText',
    'timestamptzFromText',
    `return function push(row, cols) {\n${lines.join('\n')}\n}`,
  )
  return compile(
    plan.output.map((field) => field.convert),
    timestampFromText,
    timestamptzFromText,
  ) as Pusher
}

/**
 * Read in `nvisy-columns` batches: the same pages and values as `readTable`, pushed into one
 * array per column (core's `columnBatches` cuts them and gives each its last row's context).
 */
export function readColumns(
  deps: SourceDeps,
  stream: PostgresStream,
  schema: string,
  after: PostgresContext | undefined,
  wire: WireReadOptions,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<PostgresContext>, void, undefined> {
  let plan: ReadPlan | undefined
  return columnBatches(
    readPages(deps, stream, schema, after, signal, (p) => {
      plan = p
    }),
    () => {
      const tags = plan!.output.map((field) => columnTagText(field.type, '')?.tag)
      return {
        names: plan!.output.map((f) => f.name),
        push: compilePusher(plan!),
        tags: tags.some((tag) => tag !== undefined) ? tags : undefined,
      }
    },
    wire,
  )
}

/** The pages of a read, each with the row builder; the connection is released in `finally`. */
async function* readPages(
  deps: SourceDeps,
  stream: PostgresStream,
  schema: string,
  after: PostgresContext | undefined,
  signal: AbortSignal,
  planned?: (plan: ReadPlan) => void,
): AsyncGenerator<Page<Row, ReadItem<PostgresContext>>, void, undefined> {
  const pageSize = stream.pageSize ?? 2000
  const client = await raceAbort(deps.acquire(), signal)
  let broken: Error | boolean = false
  let cursor: Cursor<(string | null)[]> | undefined
  let pending: Promise<unknown> | undefined
  try {
    const table = await raceAbort(describeTable(client, schema, stream.table), signal)
    if (!table) throw tableNotFound(schema, stream.table)
    const plan = planRead(table, stream, after)
    planned?.(plan)
    cursor = client.query(
      new Cursor<(string | null)[]>(plan.sql, plan.values, { rowMode: 'array', types: TEXT_TYPES }),
    )
    const buildItem = compileRowBuilder(plan)
    // One page is always in flight: the server produces the next page while this one is
    // converted and consumed (two pages in memory at most).
    const fetchPage = (): Promise<(string | null)[][]> => {
      const page = cursor!.read(pageSize)
      pending = page
      page.catch(() => {}) // observed when awaited; never an unhandled rejection
      return page
    }
    let next = fetchPage()
    for (;;) {
      let rows: (string | null)[][]
      try {
        rows = await raceAbort(next, signal)
        pending = undefined
      } catch (error) {
        broken = error as Error
        throw error
      }
      if (rows.length === pageSize) next = fetchPage()
      if (rows.length === 0) break
      if (signal.aborted) throw abortReason(signal)
      yield { rows, build: buildItem }
      if (rows.length < pageSize) break
    }
  } catch (error) {
    // A lost connection (no SQLSTATE) must not go back to the pool.
    if (!ProviderError.isInstance(error) && !hasSqlState(error)) broken = error as Error
    throw error
  } finally {
    // An interrupted portal leaves the connection mid-protocol: drop it rather than reuse it.
    const interrupted = broken !== false || signal.aborted
    if (cursor && !interrupted) {
      try {
        // A consumer that stopped early leaves the prefetched page in flight: let it land.
        if (pending) await pending
        await cursor.close()
      } catch (error) {
        broken = error as Error
      }
    }
    client.release(interrupted || broken !== false ? true : undefined)
  }
}

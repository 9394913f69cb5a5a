import {
  abortReason,
  ProviderError,
  type ReadItem,
  raceAbort,
  type SqlValue,
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
  converterFor,
  cursorValueFromText,
  sqlValueToText,
  type TextConverter,
} from './postgres-values.js'

/** Every type parser returns PostgreSQL's text as is: conversion happens per OID afterwards. */
const keepText = (text: string) => text
export const TEXT_TYPES = { getTypeParser: () => keepText } as any

export interface ReadPlan {
  sql: string
  values: (string | null)[]
  /** Columns returned in each record, with their converters, by position in the row. */
  output: { name: string; index: number; convert: TextConverter }[]
  /** Cursor columns, by position in the row. */
  cursor: { column: ColumnInfo; index: number }[]
}

function configError(message: string, path?: string): ProviderError {
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

/** The keyset query: filter, then "after the last cursor", ordered by the cursor columns. */
export function planRead(
  table: TableInfo,
  stream: PostgresStream,
  after: PostgresContext | undefined,
): ReadPlan {
  const outputNames = stream.columns ?? table.columns.map((c) => c.name)
  for (const [i, name] of outputNames.entries()) requireColumn(table, name, `/stream/columns/${i}`)
  let cursorNames: string[]
  if (stream.cursor) {
    for (const [i, name] of stream.cursor.entries())
      requireColumn(table, name, `/stream/cursor/${i}`)
    cursorNames = [...stream.cursor, ...table.primaryKey.filter((k) => !stream.cursor!.includes(k))]
  } else {
    if (table.primaryKey.length === 0) {
      throw configError(
        `${JSON.stringify(table.schema)}.${JSON.stringify(table.table)} has no primary key: set stream.cursor to unique, non-null columns to order and resume by`,
        '/stream/cursor',
      )
    }
    cursorNames = table.primaryKey
  }
  const selected = [...outputNames, ...cursorNames.filter((n) => !outputNames.includes(n))]
  const values: (string | null)[] = []
  const where: string[] = (stream.filter ?? []).map((f, i) => filterClause(f, i, table, values))
  if (after) {
    if (after.cursor.length !== cursorNames.length) {
      throw configError(
        `resume context has ${after.cursor.length} cursor values, the stream's cursor has ${cursorNames.length} columns (${cursorNames.join(', ')})`,
        '/after/cursor',
      )
    }
    const params = after.cursor.map((v) => {
      values.push(String(v))
      return `$${values.length}`
    })
    where.push(`(${cursorNames.map(quoteIdent).join(', ')}) > (${params.join(', ')})`)
  }
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
      convert: converterFor(table.byName.get(name)!),
    })),
    cursor: cursorNames.map((name) => ({
      column: table.byName.get(name)!,
      index: selected.indexOf(name),
    })),
  }
}

export interface SourceDeps {
  acquire(): Promise<PoolClient>
}

/**
 * Stream rows in cursor order through a server-side portal (pg-cursor), `pageSize` rows
 * per round trip: memory stays flat whatever the table size.
 */
export async function* readTable(
  deps: SourceDeps,
  stream: PostgresStream,
  schema: string,
  after: PostgresContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<PostgresContext>> {
  const pageSize = stream.pageSize ?? 2000
  const client = await raceAbort(deps.acquire(), signal)
  let broken: Error | boolean = false
  let cursor: Cursor<(string | null)[]> | undefined
  let pending: Promise<unknown> | undefined
  try {
    const table = await raceAbort(describeTable(client, schema, stream.table), signal)
    if (!table) throw tableNotFound(schema, stream.table)
    const plan = planRead(table, stream, after)
    cursor = client.query(
      new Cursor<(string | null)[]>(plan.sql, plan.values, { rowMode: 'array', types: TEXT_TYPES }),
    )
    const { output, cursor: cursorColumns } = plan
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
      for (const row of rows) {
        if (signal.aborted) throw abortReason(signal)
        const values: Record<string, SqlValue> = {}
        for (const field of output) {
          const text = row[field.index]
          values[field.name] = text === null || text === undefined ? null : field.convert(text)
        }
        const position: (string | number)[] = []
        for (const c of cursorColumns) {
          const text = row[c.index]
          if (text === null || text === undefined) {
            throw new ProviderError({
              kind: 'config',
              message: `cursor column ${JSON.stringify(c.column.name)} is null in a row: cursor columns must be NOT NULL`,
            })
          }
          position.push(cursorValueFromText(c.column, text))
        }
        yield { data: { kind: 'record', values }, context: { cursor: position } }
      }
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

import { setImmediate as nextTurn } from 'node:timers/promises'
import { abortReason, ProviderError, type ReadItem, type SqlValue } from '@nvisy/provider-core'
import type Database from 'better-sqlite3'
import {
  describeTable,
  quoteIdent,
  requireColumn,
  type TableInfo,
  tableNotFound,
} from './sqlite-catalog.js'
import type { SqliteContext, SqliteStream } from './sqlite-schemas.js'
import {
  type BindValue,
  fromCursorValue,
  fromSqlite,
  type RawValue,
  toCursorValue,
} from './sqlite-values.js'

export interface ReadPlan {
  /** The first page: no lower bound. `?` = page size. */
  firstSql: string
  /** Every later page (and a resumed read): `(c1, c2) > (?, ?)`, then the page size. */
  nextSql: string
  /** Record fields, by position in the row. */
  output: { name: string; index: number }[]
  /** Cursor columns, by position in the row. */
  cursor: { name: string; index: number }[]
}

function configError(message: string, path: string): ProviderError {
  return new ProviderError({ kind: 'config', message, issues: [{ path, rule: 'exists', message }] })
}

/** The keyset queries for a stream: ordered by the cursor columns, unique with the tiebreaker. */
export function planRead(table: TableInfo, stream: SqliteStream): ReadPlan {
  const outputNames = (stream.columns ?? table.columns.map((c) => c.name)).map(
    (name, i) => requireColumn(table, name, `/stream/columns/${i}`).name,
  )
  // The primary key, else the rowid: what makes a row unique.
  const unique = table.primaryKey.length > 0 ? table.primaryKey : table.rowid ? [table.rowid] : []
  let cursorNames: string[]
  if (stream.cursor) {
    const chosen = stream.cursor.map(
      (name, i) => requireColumn(table, name, `/stream/cursor/${i}`).name,
    )
    const lower = new Set(chosen.map((n) => n.toLowerCase()))
    cursorNames = [...chosen, ...unique.filter((n) => !lower.has(n.toLowerCase()))]
  } else {
    if (unique.length === 0) {
      throw configError(
        `${JSON.stringify(table.name)} is a ${table.type} with no primary key or rowid: set stream.cursor to unique, NOT NULL columns to order and resume by`,
        '/stream/cursor',
      )
    }
    cursorNames = unique
  }
  const selected = [...outputNames]
  const cursor = cursorNames.map((name) => {
    let index = selected.findIndex((n) => n.toLowerCase() === name.toLowerCase())
    if (index < 0) index = selected.push(name) - 1
    return { name, index }
  })
  const from = `SELECT ${selected.map(quoteIdent).join(', ')} FROM ${quoteIdent(table.name)}`
  const orderBy = ` ORDER BY ${cursorNames.map(quoteIdent).join(', ')} LIMIT ?`
  const after = `(${cursorNames.map(quoteIdent).join(', ')}) > (${cursorNames.map(() => '?').join(', ')})`
  return {
    firstSql: from + orderBy,
    nextSql: `${from} WHERE ${after}${orderBy}`,
    output: outputNames.map((name, index) => ({ name, index })),
    cursor,
  }
}

/**
 * Read a table in keyset pages. better-sqlite3 is synchronous, so each page is one short
 * query; between pages the event loop runs (other work, the abort signal) before the next.
 */
export async function* readTable(
  db: Database.Database,
  stream: SqliteStream,
  after: SqliteContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<SqliteContext>> {
  const pageSize = stream.pageSize ?? 1000
  if (signal.aborted) throw abortReason(signal)
  const table = describeTable(db, stream.table)
  if (!table) throw tableNotFound(stream.table)
  const plan = planRead(table, stream)
  let position: BindValue[] | undefined
  if (after) {
    if (after.cursor.length !== plan.cursor.length) {
      throw configError(
        `resume context has ${after.cursor.length} cursor values, the stream's cursor has ${plan.cursor.length} columns (${plan.cursor.map((c) => c.name).join(', ')})`,
        '/after/cursor',
      )
    }
    position = after.cursor.map(fromCursorValue)
  }
  const first = db.prepare(plan.firstSql).raw(true).safeIntegers(true)
  const next = db.prepare(plan.nextSql).raw(true).safeIntegers(true)
  for (;;) {
    if (signal.aborted) throw abortReason(signal)
    const rows = (
      position === undefined ? first.all(pageSize) : next.all(...position, pageSize)
    ) as RawValue[][]
    for (const row of rows) {
      const values: Record<string, SqlValue> = {}
      for (const field of plan.output) values[field.name] = fromSqlite(row[field.index])
      const context = { cursor: plan.cursor.map((c) => toCursorValue(row[c.index]!, c.name)) }
      yield { data: { kind: 'record', values }, context }
    }
    if (rows.length < pageSize) return
    const last = rows[rows.length - 1]!
    // The raw values bind back exactly (bigint, Buffer), whatever the JSON context looks like.
    position = plan.cursor.map((c) => last[c.index] as BindValue)
    await nextTurn()
  }
}

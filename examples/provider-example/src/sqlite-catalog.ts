import { ProviderError, type StreamInfo } from '@nvisy/provider-core'
import type Database from 'better-sqlite3'

/** A double-quoted SQLite identifier; embedded quotes are doubled. Every identifier goes through this. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

export interface ColumnInfo {
  name: string
  /** The declared type, as written in CREATE TABLE (may be empty: SQLite types are advisory). */
  type: string
  notNull: boolean
  /** 1-based position in the primary key, 0 when not part of it. */
  pk: number
}

export interface TableInfo {
  name: string
  type: 'table' | 'view'
  columns: ColumnInfo[]
  /** Lower-cased column names (SQLite identifiers are case-insensitive). */
  byName: Map<string, ColumnInfo>
  /** Primary key columns in key order; empty for a rowid table without one, and for views. */
  primaryKey: string[]
  /** The name that reaches the rowid (rowid, _rowid_ or oid, whichever no column shadows), if any. */
  rowid: string | undefined
}

interface TableListRow {
  schema: string
  name: string
  type: string
  wr: number
}

interface ColumnRow {
  name: string
  type: string
  notnull: number
  pk: number
  hidden: number
}

export function tableNotFound(table: string): ProviderError {
  return new ProviderError({
    kind: 'not_found',
    message: `no table or view named ${JSON.stringify(table)} in the database`,
  })
}

function listRows(db: Database.Database, table?: string): TableListRow[] {
  const rows = (
    table === undefined
      ? db.prepare('SELECT schema, name, type, wr FROM pragma_table_list').all()
      : db.prepare('SELECT schema, name, type, wr FROM pragma_table_list(?)').all(table)
  ) as TableListRow[]
  return rows.filter(
    (row) =>
      row.schema === 'main' &&
      (row.type === 'table' || row.type === 'view') &&
      !row.name.toLowerCase().startsWith('sqlite_'),
  )
}

function infoOf(db: Database.Database, row: TableListRow): TableInfo {
  // hidden 1 = a virtual table's hidden column; 2 and 3 are generated columns, which read fine.
  const columns = (
    db
      .prepare('SELECT name, type, "notnull", pk, hidden FROM pragma_table_xinfo(?)')
      .all(row.name) as ColumnRow[]
  )
    .filter((c) => c.hidden !== 1)
    .map((c) => ({ name: c.name, type: c.type, notNull: c.notnull === 1, pk: c.pk }))
  const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c]))
  const primaryKey = columns
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name)
  const hasRowid = row.type === 'table' && row.wr === 0
  const rowid = hasRowid ? ['rowid', '_rowid_', 'oid'].find((n) => !byName.has(n)) : undefined
  return { name: row.name, type: row.type as 'table' | 'view', columns, byName, primaryKey, rowid }
}

/** A table or view of the main database, or undefined. Names match case-insensitively, as in SQL. */
export function describeTable(db: Database.Database, table: string): TableInfo | undefined {
  const row = listRows(db, table)[0]
  return row ? infoOf(db, row) : undefined
}

export function listTables(db: Database.Database): TableInfo[] {
  return listRows(db)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((row) => infoOf(db, row))
}

export function toStreamInfo(table: TableInfo): StreamInfo {
  return {
    name: table.name,
    type: table.type,
    data: 'record',
    stream: { table: table.name },
    fields: table.columns.map((c) => ({
      name: c.name,
      type: c.type,
      nullable: !c.notNull,
      primaryKey: c.pk > 0,
    })),
  }
}

/** The column a stream names, or a config error naming the settings field. */
export function requireColumn(table: TableInfo, name: string, path: string): ColumnInfo {
  const column = table.byName.get(name.toLowerCase())
  if (!column) {
    const message = `column ${JSON.stringify(name)} does not exist in ${JSON.stringify(table.name)} (${path})`
    throw new ProviderError({
      kind: 'config',
      message,
      issues: [{ path, rule: 'exists', message }],
    })
  }
  return column
}

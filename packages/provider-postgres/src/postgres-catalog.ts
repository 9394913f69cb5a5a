import { ProviderError, type StreamInfo } from '@nvisy/provider-core'
import type { ClientBase } from 'pg'
import type { ColumnType } from './postgres-values.js'

/** A double-quoted identifier: embedded quotes doubled, so no name can end the quoting. */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) {
    throw new ProviderError({ kind: 'config', message: 'identifier contains a NUL character' })
  }
  return `"${name.replace(/"/g, '""')}"`
}

export function qualifiedName(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`
}

export interface ColumnInfo extends ColumnType {
  name: string
  /** format_type(): 'integer', 'numeric(12,2)', 'timestamp with time zone', ... */
  typeName: string
  nullable: boolean
  /** 1-based position in the primary key, 0 when not part of it. */
  primaryKeyPosition: number
  /** The type modifier of the column's (domain: base) type; for arrays, of the element; -1 when none. */
  typmod: number
  /** format_type of the base type for domains, else `typeName`. */
  baseTypeName: string
  /** Enum labels in sort order when the column (or its array element) is an enum. */
  labels?: string[] | undefined
}

export interface TableInfo {
  schema: string
  table: string
  kind: 'table' | 'view' | 'materialized view' | 'foreign table'
  columns: ColumnInfo[]
  byName: Map<string, ColumnInfo>
  primaryKey: string[]
}

const RELKINDS: Record<string, TableInfo['kind']> = {
  r: 'table',
  p: 'table',
  v: 'view',
  m: 'materialized view',
  f: 'foreign table',
}

const COLUMNS_SQL = `
SELECT n.nspname AS schema, c.relname AS table, c.relkind AS relkind,
       a.attname AS name, a.atttypid::int AS oid,
       CASE WHEN COALESCE(bt.typcategory, t.typcategory) = 'A' THEN COALESCE(bt.typelem, t.typelem)::int ELSE 0 END AS elem,
       t.typbasetype::int AS base,
       format_type(a.atttypid, a.atttypmod) AS type_name,
       NOT a.attnotnull AS nullable,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE format_type(a.atttypid, a.atttypmod) END AS base_type_name,
       (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)::text FROM pg_enum e
         WHERE e.enumtypid = CASE WHEN COALESCE(bt.typcategory, t.typcategory) = 'A' THEN COALESCE(bt.typelem, t.typelem)
                                  WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END) AS labels,
       COALESCE((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY AS k(att, n) WHERE k.att = a.attnum), 0)::int AS pk_pos
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype AND t.typtype = 'd'
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')`

interface ColumnRow {
  schema: string
  table: string
  relkind: string
  name: string
  oid: number
  elem: number
  base: number
  type_name: string
  nullable: boolean
  pk_pos: number
  typmod: number
  base_type_name: string
  labels: string | null
}

function toTables(rows: ColumnRow[]): TableInfo[] {
  const tables = new Map<string, TableInfo>()
  for (const row of rows) {
    const key = `${row.schema}\u0000${row.table}`
    let info = tables.get(key)
    if (!info) {
      info = {
        schema: row.schema,
        table: row.table,
        kind: RELKINDS[row.relkind] ?? 'table',
        columns: [],
        byName: new Map(),
        primaryKey: [],
      }
      tables.set(key, info)
    }
    const column: ColumnInfo = {
      name: row.name,
      oid: Number(row.oid),
      elementOid: Number(row.elem),
      baseOid: Number(row.base),
      typeName: row.type_name,
      nullable: row.nullable,
      primaryKeyPosition: Number(row.pk_pos),
      typmod: Number(row.typmod),
      baseTypeName: row.base_type_name,
      labels: row.labels ? (JSON.parse(row.labels) as string[]) : undefined,
    }
    info.columns.push(column)
    info.byName.set(column.name, column)
  }
  for (const info of tables.values()) {
    info.primaryKey = info.columns
      .filter((c) => c.primaryKeyPosition > 0)
      .sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition)
      .map((c) => c.name)
  }
  return [...tables.values()]
}

/** Columns (in table order), types and primary key of one table or view, or undefined. */
export async function describeTable(
  client: ClientBase,
  schema: string,
  table: string,
): Promise<TableInfo | undefined> {
  const result = await client.query<ColumnRow>({
    text: `${COLUMNS_SQL} AND n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum`,
    values: [schema, table],
  })
  return toTables(result.rows)[0]
}

/** Every table and view outside the system schemas. */
export async function listTables(client: ClientBase): Promise<TableInfo[]> {
  const result = await client.query<ColumnRow>(
    `${COLUMNS_SQL} AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
     ORDER BY n.nspname, c.relname, a.attnum`,
  )
  return toTables(result.rows)
}

export function tableNotFound(schema: string, table: string): ProviderError {
  return new ProviderError({
    kind: 'not_found',
    code: '42P01',
    message: `table or view ${JSON.stringify(schema)}.${JSON.stringify(table)} does not exist`,
  })
}

export function toStreamInfo(info: TableInfo): StreamInfo {
  return {
    name: `${info.schema}.${info.table}`,
    type: info.kind,
    data: 'record',
    stream: { schema: info.schema, table: info.table },
    fields: info.columns.map((c) => ({
      name: c.name,
      type: c.typeName,
      nullable: c.nullable,
      primaryKey: c.primaryKeyPosition > 0,
    })),
  }
}

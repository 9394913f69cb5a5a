import {
  isProviderError,
  type ColumnInfo as PortableColumn,
  type PrepareOptions,
  type PrepareResult,
  type SqlValue,
  type StreamSchema,
} from '@nvisy/provider-core'
import type { PoolConnection } from 'mysql2/promise'
import { findColumn, type MysqlClient, type TableInfo } from './mysql-client.js'
import { mysqlError } from './mysql-errors.js'
import type { MysqlSinkStream, MysqlStream } from './mysql-schemas.js'
import { mysqlTypeFor, portableColumn } from './mysql-types.js'
import { quoteId, quoteString, quoteTable } from './mysql-values.js'

/** Source: the stream's columns (those it reads) in portable types, and the table's primary key. */
export async function describeTable(
  client: MysqlClient,
  stream: MysqlStream,
  signal: AbortSignal,
): Promise<StreamSchema> {
  const database = client.database(stream.database)
  const info = await client.tableInfo(database, stream.table, signal, true)
  const columns = stream.columns
    ? stream.columns.map((name, i) => {
        const column = findColumn(info, name)
        if (!column)
          throw mysqlError(
            'config',
            `/stream/columns/${i}: column ${JSON.stringify(name)} does not exist in ${JSON.stringify(`${database}.${stream.table}`)}`,
          )
        return column
      })
    : info.columns
  const primaryKey = info.primaryKey.every((key) => columns.some((c) => c.name === key))
    ? info.primaryKey
    : []
  return { system: 'mysql', columns: columns.map(portableColumn), primaryKey }
}

/**
 * Whether a native type is only a column type (`enum('a;b') character set utf8mb4 collate
 * utf8mb4_bin`, `decimal(10,2) unsigned`): outside balanced string literals, only words,
 * digits, commas, spaces and parentheses, so nothing else can ride into the DDL.
 */
export function isColumnTypeText(text: string): boolean {
  let rest = ''
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c !== "'") {
      rest += c
      i++
      continue
    }
    i++
    for (;;) {
      if (i >= text.length) return false
      if (text[i] === '\\') i += 2
      else if (text[i] === "'" && text[i + 1] === "'") i += 2
      else if (text[i] === "'") {
        i++
        break
      } else i++
    }
    rest += "''"
  }
  if (!/^[a-z][a-z0-9_ ,()']*$/i.test(rest)) return false
  // Parentheses balanced, commas only inside them: one column's type, not a column list.
  let depth = 0
  for (const c of rest) {
    if (c === '(') depth++
    else if (c === ')' && --depth < 0) return false
    else if (c === ',' && depth === 0) return false
  }
  return depth === 0
}

/** The DDL type of a schema column: a MySQL source's native type verbatim, else the portable mapping. */
export function columnDdlType(
  schema: StreamSchema,
  column: PortableColumn,
  isKey: boolean,
): string {
  if (schema.system === 'mysql' && column.nativeType) {
    if (!isColumnTypeText(column.nativeType))
      throw mysqlError(
        'config',
        `column ${JSON.stringify(column.name)}: native type ${JSON.stringify(column.nativeType)} is not a column type`,
      )
    return column.nativeType
  }
  return mysqlTypeFor(column, isKey)
}

function columnDefinition(
  schema: StreamSchema,
  column: PortableColumn,
  forceNull: boolean,
): string {
  const isKey = schema.primaryKey.includes(column.name)
  const type = columnDdlType(schema, column, isKey)
  const nullable = forceNull || (column.nullable && !isKey)
  return `${quoteId(column.name)} ${type} ${nullable ? 'NULL' : 'NOT NULL'}`
}

export function createTableSql(database: string, table: string, schema: StreamSchema): string {
  if (schema.columns.length === 0)
    throw mysqlError(
      'config',
      `cannot create ${JSON.stringify(`${database}.${table}`)}: the schema has no columns`,
    )
  for (const key of schema.primaryKey) {
    if (!schema.columns.some((c) => c.name === key))
      throw mysqlError(
        'config',
        `schema primary key column ${JSON.stringify(key)} is not one of its columns`,
      )
  }
  const parts = schema.columns.map((c) => columnDefinition(schema, c, false))
  if (schema.primaryKey.length > 0)
    parts.push(`PRIMARY KEY (${schema.primaryKey.map(quoteId).join(', ')})`)
  return `CREATE TABLE ${quoteTable(database, table)} (\n  ${parts.join(',\n  ')}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`
}

async function tableExists(
  client: MysqlClient,
  database: string,
  table: string,
  signal: AbortSignal,
): Promise<TableInfo | undefined> {
  try {
    return await client.tableInfo(database, table, signal, true)
  } catch (error) {
    if (isProviderError(error) && error.kind === 'not_found') return undefined
    throw error
  }
}

/** Sink: create the table (create: ifMissing), add missing columns (evolve: addColumns), or say what does not fit. */
export async function prepareTable(
  client: MysqlClient,
  stream: MysqlSinkStream,
  options: PrepareOptions,
  retried = false,
): Promise<PrepareResult> {
  const { signal, schema } = options
  const database = client.database(stream.database)
  const name = JSON.stringify(`${database}.${stream.table}`)
  const info = await tableExists(client, database, stream.table, signal)
  const actions: string[] = []
  if (!info) {
    if ((stream.create ?? 'never') === 'never')
      throw mysqlError(
        'not_found',
        `table ${name} does not exist and the sink stream's create is "never" (set create: "ifMissing" to create it)`,
        { code: '1146' },
      )
    if (!schema)
      throw mysqlError(
        'config',
        `table ${name} does not exist and the source gave no schema to create it from`,
      )
    actions.push(createTableSql(database, stream.table, schema))
  } else {
    if (info.type === 'view') throw mysqlError('config', `${name} is a view; write to a table`)
    const missing = schema ? schema.columns.filter((c) => !findColumn(info, c.name)) : []
    if (missing.length > 0) {
      if ((stream.evolve ?? 'none') === 'none')
        throw mysqlError(
          'config',
          `table ${name} lacks the source columns ${missing.map((c) => JSON.stringify(c.name)).join(', ')} and the sink stream's evolve is "none" (set evolve: "addColumns" to add them)`,
        )
      actions.push(
        `ALTER TABLE ${quoteTable(database, stream.table)} ${missing
          .map((c) => `ADD COLUMN ${columnDefinition({ ...schema!, primaryKey: [] }, c, true)}`)
          .join(', ')}`,
      )
    }
  }
  if (!options.dryRun && actions.length > 0) {
    try {
      await runDdl(client, actions, signal)
    } catch (error) {
      // Another writer created the table or added the column meanwhile: look again, once.
      const errno = (error as { errno?: number }).errno
      if (!retried && (errno === 1050 || errno === 1060))
        return prepareTable(client, stream, options, true)
      throw error
    }
    await client.tableInfo(database, stream.table, signal, true)
  }
  return { existed: info !== undefined, actions }
}

async function runDdl(client: MysqlClient, actions: string[], signal: AbortSignal): Promise<void> {
  await client.withConnection(signal, async (connection) => {
    // Servers where it is off would give a NOT NULL TIMESTAMP an ON UPDATE CURRENT_TIMESTAMP.
    await connection.query('SET SESSION explicit_defaults_for_timestamp = 1').catch(() => {})
    for (const sql of actions) await connection.query(sql)
  })
}

// ---------------------------------------------------------------------------------------
// Exactly-once offsets: (key, context JSON, updated_at) rows committed in the batch's transaction.
// ---------------------------------------------------------------------------------------

export const DEFAULT_OFFSETS_TABLE = '_nvisy_offsets'
const MAX_KEY_LENGTH = 700

function offsetsTableOf(client: MysqlClient, stream: MysqlSinkStream): string {
  return quoteTable(client.database(stream.database), stream.offsetsTable ?? DEFAULT_OFFSETS_TABLE)
}

function checkKey(key: string): void {
  if (key.length === 0 || key.length > MAX_KEY_LENGTH)
    throw mysqlError(
      'config',
      `offset key must have 1 to ${MAX_KEY_LENGTH} characters (has ${key.length})`,
    )
}

const ensured = new WeakMap<MysqlClient, Set<string>>()

/** Create the offsets table once per connection (DDL commits implicitly: never inside a batch's transaction). */
export async function ensureOffsetsTable(
  client: MysqlClient,
  connection: PoolConnection,
  stream: MysqlSinkStream,
): Promise<string> {
  const table = offsetsTableOf(client, stream)
  let done = ensured.get(client)
  if (!done) {
    done = new Set()
    ensured.set(client, done)
  }
  if (!done.has(table)) {
    await connection.query(
      `CREATE TABLE IF NOT EXISTS ${table} (\`key\` VARCHAR(${MAX_KEY_LENGTH}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, \`context\` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \`updated_at\` DATETIME(6) NOT NULL) ENGINE=InnoDB`,
    )
    done.add(table)
  }
  return table
}

export function offsetUpsertSql(table: string, key: string, context: unknown): string {
  checkKey(key)
  const json = JSON.stringify(context as SqlValue, (_k, v) =>
    typeof v === 'bigint' ? v.toString() : v,
  )
  if (json === undefined) throw mysqlError('config', 'offset context is not a JSON value')
  return `INSERT INTO ${table} (\`key\`, \`context\`, \`updated_at\`) VALUES (${quoteString(key)}, ${quoteString(json)}, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE \`context\` = VALUES(\`context\`), \`updated_at\` = VALUES(\`updated_at\`)`
}

export async function readOffset(
  client: MysqlClient,
  stream: MysqlSinkStream,
  key: string,
  signal: AbortSignal,
): Promise<unknown> {
  checkKey(key)
  const table = offsetsTableOf(client, stream)
  return client.withConnection(signal, async (connection) => {
    try {
      const [rows] = await connection.query({
        sql: `SELECT \`context\` FROM ${table} WHERE \`key\` = ${quoteString(key)}`,
        rowsAsArray: true,
      })
      const row = (rows as unknown[][])[0]
      return row === undefined ? undefined : JSON.parse(String(row[0]))
    } catch (error) {
      if ((error as { errno?: number }).errno === 1146) return undefined
      throw error
    }
  })
}

import {
  type ColumnInfo as PortableColumn,
  type ColumnType as PortableType,
  ProviderError,
  type StreamSchema,
} from '@nvisy/provider-core'
import type { ColumnInfo, TableInfo } from './postgres-catalog.js'
import { qualifiedName, quoteIdent } from './postgres-catalog.js'
import { OID } from './postgres-values.js'

function precisionOf(typmod: number): number | undefined {
  return typmod >= 0 ? typmod : undefined
}

function withPrecision<T extends object>(type: T, precision: number | undefined): T {
  return precision === undefined ? type : { ...type, precision }
}

/** The portable type of one PostgreSQL scalar type (OID and type modifier). */
function portableScalar(
  oid: number,
  typmod: number,
  labels: string[] | undefined,
  name: string,
): PortableType {
  if (labels) return { type: 'enum', values: labels, name }
  switch (oid) {
    case OID.bool:
      return { type: 'boolean' }
    case OID.int2:
      return { type: 'integer', bits: 16 }
    case OID.int4:
      return { type: 'integer', bits: 32 }
    case OID.int8:
      return { type: 'integer', bits: 64 }
    case OID.numeric: {
      if (typmod < 4) return { type: 'decimal' }
      let scale = (typmod - 4) & 0x7ff
      if (scale > 1023) scale -= 2048
      return { type: 'decimal', precision: ((typmod - 4) >> 16) & 0xffff, scale }
    }
    case OID.float4:
      return { type: 'float', bits: 32 }
    case OID.float8:
      return { type: 'float', bits: 64 }
    case OID.bit:
      return { type: 'bits', length: typmod > 0 ? typmod : 1 }
    case OID.varbit:
      return { type: 'bits', length: typmod > 0 ? typmod : 0, varying: true }
    case OID.text:
      return { type: 'text' }
    case OID.varchar:
      return typmod >= 4 ? { type: 'text', maxLength: typmod - 4 } : { type: 'text' }
    case OID.bpchar:
      return { type: 'text', maxLength: typmod >= 4 ? typmod - 4 : 1, fixed: true }
    case OID.bytea:
      return { type: 'binary' }
    case OID.date:
      return { type: 'date' }
    case OID.time:
      return withPrecision({ type: 'time' as const }, precisionOf(typmod))
    case OID.timetz:
      return withPrecision({ type: 'time' as const, withTimeZone: true }, precisionOf(typmod))
    case OID.timestamp:
      return withPrecision({ type: 'timestamp' as const, withTimeZone: false }, precisionOf(typmod))
    case OID.timestamptz:
      return withPrecision({ type: 'timestamp' as const, withTimeZone: true }, precisionOf(typmod))
    case OID.interval: {
      const p = typmod >= 0 ? typmod & 0xffff : 0xffff
      return withPrecision({ type: 'duration' as const }, p === 0xffff ? undefined : p)
    }
    case OID.json:
      return { type: 'json' }
    case OID.jsonb:
      return { type: 'json', binary: true }
    case OID.uuid:
      return { type: 'uuid' }
  }
  return { type: 'other' }
}

/** The portable type of a column from the catalog (domains as their base type). */
export function portableType(column: ColumnInfo): PortableType {
  if (column.elementOid) {
    const dims = Math.max(1, (column.baseTypeName.match(/\[\]/g) ?? []).length)
    let type = portableScalar(
      column.elementOid,
      column.typmod,
      column.labels,
      column.baseTypeName.replace(/(\[\])+$/, ''),
    )
    for (let i = 0; i < dims; i++) type = { type: 'array', of: type }
    return type
  }
  return portableScalar(
    column.baseOid || column.oid,
    column.typmod,
    column.labels,
    column.baseTypeName,
  )
}

/** `describeStream`: the columns (all, or the stream's `columns`) and primary key in portable types. */
export function describeColumns(table: TableInfo, only?: readonly string[]): StreamSchema {
  const names = only ?? table.columns.map((c) => c.name)
  return {
    system: 'postgres',
    columns: names.map((name) => {
      const column = table.byName.get(name)
      if (!column) {
        throw new ProviderError({
          kind: 'config',
          code: '42703',
          message: `column ${JSON.stringify(name)} does not exist in ${JSON.stringify(table.schema)}.${JSON.stringify(table.table)}`,
        })
      }
      return {
        name,
        nativeType: column.baseTypeName,
        type: portableType(column),
        nullable: column.nullable,
      }
    }),
    primaryKey: table.primaryKey,
  }
}

// ---------------------------------------------------------------------------------------
// Portable -> PostgreSQL DDL.
// ---------------------------------------------------------------------------------------

function configError(message: string, path?: string): ProviderError {
  return new ProviderError({
    kind: 'config',
    message,
    ...(path ? { issues: [{ path, rule: 'type', message }] } : {}),
  })
}

/** PostgreSQL truncates identifiers to 63 bytes: a longer name would not be the name written to. */
export function checkIdentifier(name: string, what: string): void {
  if (Buffer.byteLength(name, 'utf8') > 63) {
    throw configError(
      `${what} ${JSON.stringify(name)} is ${Buffer.byteLength(name, 'utf8')} bytes long: PostgreSQL identifiers hold at most 63 bytes`,
    )
  }
  quoteIdent(name) // refuses NUL
}

function literal(text: string): string {
  if (text.includes('\u0000')) throw configError('a label contains a NUL character')
  return `'${text.replace(/'/g, "''")}'`
}

/** A type name as format_type() prints it: words, digits, quotes, dots, brackets and parentheses only. */
const NATIVE_TYPE = /^[\p{L}\p{N}_ .,()[\]"$]+$/u

/**
 * Whether `text` names one type as format_type() prints it: type-name characters only, no
 * comment, quotes and parentheses balanced, no comma outside parentheses (which would add a
 * column), so a reused native type cannot change the statement around it.
 */
export function isOneTypeName(text: string): boolean {
  if (!NATIVE_TYPE.test(text) || text.includes('--')) return false
  let depth = 0
  let quoted = false
  for (const c of text) {
    if (c === '"') quoted = !quoted
    else if (quoted) continue
    else if (c === '(') depth++
    else if (c === ')' && --depth < 0) return false
    else if (c === ',' && depth === 0) return false
  }
  return depth === 0 && !quoted
}

/** The PostgreSQL type for a portable type (from any system but 'postgres'). */
export function ddlType(type: PortableType, column: string): string {
  switch (type.type) {
    case 'boolean':
      return 'boolean'
    case 'integer':
      switch (type.bits) {
        case 8:
          return 'smallint'
        case 16:
          return type.unsigned ? 'integer' : 'smallint'
        case 24:
          return 'integer'
        case 32:
          return type.unsigned ? 'bigint' : 'integer'
        case 64:
          return type.unsigned ? 'numeric(20,0)' : 'bigint'
      }
      break
    case 'decimal':
      if (type.precision === undefined) return 'numeric'
      return `numeric(${type.precision},${type.scale ?? 0})`
    case 'float':
      return type.bits === 32 ? 'real' : 'double precision'
    case 'bits':
      if (type.varying) return type.length > 0 ? `bit varying(${type.length})` : 'bit varying'
      return `bit(${Math.max(1, type.length)})`
    case 'text':
      if (type.maxLength === undefined || type.maxLength > 10_485_760) return 'text'
      return type.fixed
        ? `char(${Math.max(1, type.maxLength)})`
        : `varchar(${Math.max(1, type.maxLength)})`
    case 'binary':
      return 'bytea'
    case 'date':
      return 'date'
    case 'time': {
      const p = type.precision === undefined ? '' : `(${Math.min(6, type.precision)})`
      return type.withTimeZone ? `time${p} with time zone` : `time${p}`
    }
    case 'duration':
      return type.precision === undefined ? 'interval' : `interval(${Math.min(6, type.precision)})`
    case 'timestamp': {
      const p = type.precision === undefined ? '' : `(${Math.min(6, type.precision)})`
      return type.withTimeZone ? `timestamp${p} with time zone` : `timestamp${p}`
    }
    case 'year':
      return 'smallint'
    case 'json':
      return type.binary ? 'jsonb' : 'json'
    case 'uuid':
      return 'uuid'
    case 'enum':
    case 'set':
      return 'text'
    case 'array':
      return `${ddlType(type.of, column)}[]`
  }
  throw configError(
    `column ${JSON.stringify(column)} has a type with no PostgreSQL equivalent (${type.type})`,
  )
}

function innermost(type: PortableType): { type: PortableType; dims: number } {
  let dims = 0
  let t = type
  while (t.type === 'array') {
    t = t.of
    dims++
  }
  return { type: t, dims }
}

/** One column definition: name, type, NOT NULL, and a CHECK of the labels of an enum. */
export function columnDefinition(column: PortableColumn, system: string): string {
  checkIdentifier(column.name, 'column')
  const { type: inner, dims } = innermost(column.type)
  let type: string
  if (inner.type === 'enum') {
    // Enums become text with a CHECK of their labels (no type to create or keep in sync).
    type = `text${'[]'.repeat(dims)}`
  } else if (system === 'postgres' && column.nativeType) {
    if (!isOneTypeName(column.nativeType)) {
      throw configError(
        `column ${JSON.stringify(column.name)} has a native type that is not a type name: ${JSON.stringify(column.nativeType)}`,
      )
    }
    type = column.nativeType
  } else {
    type = ddlType(column.type, column.name)
  }
  let definition = `${quoteIdent(column.name)} ${type}`
  if (!column.nullable) definition += ' NOT NULL'
  if (inner.type === 'enum' && dims === 0 && inner.values.length > 0) {
    definition += ` CHECK (${quoteIdent(column.name)} IN (${inner.values.map(literal).join(', ')}))`
  }
  return definition
}

export function createTableStatement(schema: string, table: string, source: StreamSchema): string {
  checkIdentifier(table, 'table')
  if (source.columns.length === 0)
    throw configError(`no columns to create ${JSON.stringify(table)} with`)
  const definitions = source.columns.map((c) => columnDefinition(c, source.system))
  const names = new Set(source.columns.map((c) => c.name))
  for (const key of source.primaryKey) {
    if (!names.has(key))
      throw configError(`primary key column ${JSON.stringify(key)} is not a column of the schema`)
  }
  if (source.primaryKey.length > 0) {
    definitions.push(`PRIMARY KEY (${source.primaryKey.map(quoteIdent).join(', ')})`)
  }
  return `CREATE TABLE ${qualifiedName(schema, table)} (\n  ${definitions.join(',\n  ')}\n)`
}

export function addColumnsStatement(
  schema: string,
  table: string,
  columns: readonly PortableColumn[],
  system: string,
): string {
  // Added columns are nullable: rows already in the table have no value for them.
  return `ALTER TABLE ${qualifiedName(schema, table)} ${columns
    .map((c) => `ADD COLUMN ${columnDefinition({ ...c, nullable: true }, system)}`)
    .join(', ')}`
}

export function offsetsTableStatement(qualifiedOffsets: string): string {
  return `CREATE TABLE IF NOT EXISTS ${qualifiedOffsets} (key text PRIMARY KEY, context json NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`
}

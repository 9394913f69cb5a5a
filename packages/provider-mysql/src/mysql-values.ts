import {
  isTaggedValue,
  type SqlValue,
  type TaggedValue,
  type TaggedValueType,
  tagged,
} from '@nvisy/provider-core'
import { mysqlError } from './mysql-errors.js'

/** A column as information_schema describes it. */
export interface ColumnInfo {
  name: string
  /** DATA_TYPE, lower-case: int, varchar, datetime, json... */
  dataType: string
  /** COLUMN_TYPE, lower-case: int(11) unsigned, tinyint(1), bit(1), enum('a','b')... */
  columnType: string
  nullable: boolean
  /** Position in the primary key (1-based), 0 when not part of it. */
  primaryKeyPosition: number
  /** A MariaDB LONGTEXT with a json_valid() check, or a MySQL JSON column. */
  json: boolean
  /** COLUMN_TYPE as the server spells it (enum and set members keep their case). */
  nativeType?: string | undefined
  /** CHARACTER_SET_NAME and COLLATION_NAME of character columns. */
  charset?: string | undefined
  collation?: string | undefined
}

// ---------------------------------------------------------------------------------------
// Identifiers and literals. Every SQL text this package sends is built from quoted
// identifiers and literals made here; the session sql_mode is pinned (no ANSI_QUOTES, no
// NO_BACKSLASH_ESCAPES) so the escaping below is the one the server applies.
// ---------------------------------------------------------------------------------------

/** Refuse a name MySQL cannot hold: empty, NUL, or a character outside the BMP (identifiers are utf8mb3). */
export function checkIdentifier(name: string): void {
  if (name.length === 0 || name.includes('\u0000')) {
    throw mysqlError('config', `identifier ${JSON.stringify(name)} is empty or contains NUL`)
  }
  if (/[\u{10000}-\u{10FFFF}]/u.test(name)) {
    throw mysqlError(
      'config',
      `identifier ${JSON.stringify(name)} has a character outside the Basic Multilingual Plane (an emoji?): MySQL and MariaDB identifiers cannot hold it`,
    )
  }
}

/** A backtick-quoted identifier: backticks doubled, NUL and non-BMP characters refused. */
export function quoteId(name: string): string {
  checkIdentifier(name)
  return `\`${name.replace(/`/g, '``')}\``
}

export function quoteTable(database: string, table: string): string {
  return `${quoteId(database)}.${quoteId(table)}`
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters to escape
const NEEDS_ESCAPE = /[\0\b\t\n\r\x1a"'\\]/
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters to escape
const ESCAPE_ALL = /[\0\b\t\n\r\x1a"'\\]/g
const ESCAPES: Record<string, string> = {
  '\0': '\\0',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\x1a': '\\Z',
  '"': '\\"',
  "'": "\\'",
  '\\': '\\\\',
}

/** A single-quoted string literal. */
export function quoteString(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return `'${text}'`
  return `'${text.replace(ESCAPE_ALL, (c) => ESCAPES[c]!)}'`
}

export function hexLiteral(bytes: Uint8Array): string {
  if (bytes.byteLength === 0) return "''"
  return `X'${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}'`
}

const INTEGER = /^[+-]?\d+$/
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/
const TEMPORAL = /^[0-9:.\- T]+$/
const OFFSET = /([+-])(\d{2}):?(\d{2})$/

/** A timestamptz text ('...Z' or '...+02:00') as the UTC wall-clock text the session (time_zone '+00:00') takes. */
export function instantToUtcText(value: string): string {
  let text = value.trim()
  if (text.endsWith('Z') || text.endsWith('z')) return text.slice(0, -1).replace('T', ' ')
  const offset = OFFSET.exec(text)
  if (!offset) return text.replace('T', ' ')
  text = text.slice(0, offset.index)
  const match = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?$/.exec(text)
  if (!match)
    throw new TypeError(
      'a timestamptz value is not an ISO 8601 instant (YYYY-MM-DDThh:mm:ss[.ffffff] with Z or an offset)',
    )
  const [, y, mo, d, h, mi, s, fraction = ''] = match
  const sign = offset[1] === '-' ? -1 : 1
  const offsetMinutes = sign * (Number(offset[2]) * 60 + Number(offset[3]))
  const ms =
    Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) -
    offsetMinutes * 60_000
  const utc = new Date(ms).toISOString() // YYYY-MM-DDTHH:MM:SS.000Z
  return `${utc.slice(0, 10)} ${utc.slice(11, 19)}${fraction}`
}

function temporalText(tag: TaggedValue): string {
  switch (tag.$type) {
    case 'timestamptz':
      return instantToUtcText(tag.value)
    case 'timestamp':
      return tag.value.replace('T', ' ')
    default:
      return tag.value
  }
}

const GEOMETRY_TYPES = new Set([
  'geometry',
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
  'geomcollection',
])

export function isGeometry(column: ColumnInfo | undefined): boolean {
  return column !== undefined && GEOMETRY_TYPES.has(column.dataType)
}

/**
 * The SQL literal for a value written to `column`. Throws a TypeError for a value this
 * column cannot take, naming its type and the rule but never the value; the sink turns that
 * into a per-row `data` failure.
 */
export function toLiteral(value: SqlValue | undefined, column: ColumnInfo | undefined): string {
  if (value === null || value === undefined) return 'NULL'
  switch (typeof value) {
    case 'string':
      return quoteString(value)
    case 'number':
      if (!Number.isFinite(value))
        throw new TypeError(
          'a number that is not finite (NaN, Infinity or -Infinity) cannot be stored in MySQL',
        )
      return String(value)
    case 'bigint':
      return value.toString()
    case 'boolean':
      return value ? '1' : '0'
  }
  if (value instanceof Uint8Array) {
    if (isGeometry(column)) return `ST_GeomFromWKB(${hexLiteral(value)})`
    return hexLiteral(value)
  }
  if (Array.isArray(value)) {
    // A SET column: its members joined with commas.
    if (value.every((member) => typeof member === 'string' && !member.includes(','))) {
      return quoteString(value.join(','))
    }
    throw new TypeError('an array value can only be written as a SET (strings without commas)')
  }
  if (isTaggedValue(value)) {
    switch (value.$type) {
      case 'decimal':
        if (!DECIMAL.test(value.value))
          throw new TypeError('a decimal value whose text is not a decimal number')
        return quoteString(value.value)
      case 'json':
      case 'interval':
        return quoteString(value.value)
      case 'date':
      case 'time':
      case 'timestamp':
      case 'timestamptz':
        return quoteString(temporalText(value))
    }
  }
  throw new TypeError(`a value of type ${Object.prototype.toString.call(value)} cannot be written`)
}

// ---------------------------------------------------------------------------------------
// Reading: mysql2 runs with supportBigNumbers, bigNumberStrings, dateStrings and
// jsonStrings, so every lossy type arrives as text; a decoder per column turns it into
// the core's SqlValue.
// ---------------------------------------------------------------------------------------

export type Decoder = (raw: any, row?: unknown[]) => SqlValue

const toBigInt: Decoder = (raw) => (raw === null ? null : BigInt(raw))
const toDecimal: Decoder = (raw) => (raw === null ? null : tagged('decimal', raw))
const toInterval: Decoder = (raw) => (raw === null ? null : tagged('interval', raw))
const toJson: Decoder = (raw) =>
  raw === null
    ? null
    : tagged('json', typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8'))
const toBooleanish: Decoder = (raw) => (raw === 0 ? false : raw === 1 ? true : raw)
/** FLOAT and DOUBLE are selected as the server's shortest round-trip text (see selectExpression): Number() parses it correctly rounded. */
const toFloatNumber: Decoder = (raw) =>
  raw === null || typeof raw === 'number' ? raw : Number(raw)

const BYTE_BITS = Array.from({ length: 256 }, (_, i) => i.toString(2).padStart(8, '0'))

/** BIT(n) arrives as ceil(n/8) big-endian bytes: a tagged bit string of exactly n digits. */
function bitsDecoder(length: number): Decoder {
  return (raw) => {
    if (raw === null) return null
    let text = ''
    for (let i = 0; i < raw.length; i++) text += BYTE_BITS[raw[i]]
    if (text.length > length) text = text.slice(text.length - length)
    else if (text.length < length) text = text.padStart(length, '0')
    return tagged('bits', text)
  }
}

/** Whether a DATE/DATETIME text has a zero month or day ('0000-00-00', '2024-00-10'). */
export function isZeroDate(text: string): boolean {
  return (text[5] === '0' && text[6] === '0') || (text[8] === '0' && text[9] === '0')
}

export interface DecoderOptions {
  tinyint1AsBoolean: boolean
  /** What a zero date becomes: a `data` error (default) or null. */
  zeroDates?: 'error' | 'null'
  /** The row's key for error messages. */
  rowKey?: (row: unknown[]) => string
}

function temporalDecoder(
  column: ColumnInfo,
  options: DecoderOptions,
  make: (raw: string) => SqlValue,
): Decoder {
  const zero = options.zeroDates ?? 'error'
  return (raw, row?: unknown[]) => {
    if (raw === null) return null
    if (isZeroDate(raw)) {
      if (zero === 'null') return null
      throw mysqlError(
        'data',
        `column ${JSON.stringify(column.name)} holds a zero date (its month or day is 00)${row && options.rowKey ? ` in the row with key ${options.rowKey(row)}` : ''}: it is not a date any other system can hold (set the stream's zeroDates: "null" to read it as null)`,
      )
    }
    return make(raw)
  }
}

/**
 * The `$type` of every non-null value `decoderFor` gives for this column (they are all tagged
 * values of that type), or undefined for a column whose values are not. A read by column
 * holds such a column's values as their text (`WireRows.tags`).
 */
export function decoderTag(column: ColumnInfo): TaggedValueType | undefined {
  if (column.json) return 'json'
  switch (column.dataType) {
    case 'decimal':
    case 'numeric':
      return 'decimal'
    case 'bit':
      return 'bits'
    case 'date':
      return 'date'
    case 'time':
      return 'interval'
    case 'datetime':
      return 'timestamp'
    case 'timestamp':
      return 'timestamptz'
    default:
      return undefined
  }
}

/** The decoder for a column, or undefined when mysql2's value is already the SqlValue. */
export function decoderFor(column: ColumnInfo, options: DecoderOptions): Decoder | undefined {
  if (column.json) return toJson
  switch (column.dataType) {
    case 'bigint':
      return toBigInt
    case 'decimal':
    case 'numeric':
      return toDecimal
    case 'float':
    case 'double':
    case 'real':
      return toFloatNumber
    case 'tinyint':
      return options.tinyint1AsBoolean && /^tinyint\(1\)/.test(column.columnType)
        ? toBooleanish
        : undefined
    case 'bit':
      return bitsDecoder(Number(/\((\d+)\)/.exec(column.columnType)?.[1] ?? 1))
    case 'date':
      return temporalDecoder(column, options, (raw) => tagged('date', raw))
    case 'time':
      return toInterval
    case 'datetime':
      return temporalDecoder(column, options, (raw) => tagged('timestamp', raw.replace(' ', 'T')))
    case 'timestamp':
      return temporalDecoder(column, options, (raw) =>
        tagged('timestamptz', `${raw.replace(' ', 'T')}Z`),
      )
    default:
      return undefined
  }
}

/**
 * The SELECT expression of a column. FLOAT is widened to DOUBLE in the server (exact: every
 * float32 is a double) and DOUBLE is sent as the server's text cast, which is the shortest
 * text that round-trips; both arrive as strings so mysql2's own digit loop (not correctly
 * rounded) never parses them.
 */
export function selectExpression(column: ColumnInfo): string {
  const id = quoteId(column.name)
  if (isGeometry(column)) return `ST_AsBinary(${id}) AS ${id}`
  switch (column.dataType) {
    case 'float':
      return `CAST(${id} + 0e0 AS CHAR) AS ${id}`
    case 'double':
    case 'real':
      return `CAST(${id} AS CHAR) AS ${id}`
    default:
      return id
  }
}

// ---------------------------------------------------------------------------------------
// Cursor values: JSON-safe in the resume context, typed literals again in the next query.
// ---------------------------------------------------------------------------------------

export type CursorValue = string | number | boolean | null

export function toCursorValue(value: SqlValue): CursorValue {
  if (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean'
  ) {
    return value
  }
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')
  if (isTaggedValue(value)) return value.value
  return JSON.stringify(value)
}

const INTEGER_TYPES = new Set([
  'tinyint',
  'smallint',
  'mediumint',
  'int',
  'integer',
  'bigint',
  'year',
])
const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob'])

/** Cursor columns must order exactly as they compare; FLOAT prints a rounded text form, so it cannot be one. */
export function cursorTypeProblem(column: ColumnInfo): string | undefined {
  if (column.json) return 'JSON columns have no usable order'
  if (GEOMETRY_TYPES.has(column.dataType)) return 'geometry columns have no usable order'
  return undefined
}

/** The SQL literal for a cursor value read back from a resume context. */
export function cursorLiteral(value: CursorValue, column: ColumnInfo): string {
  if (value === null) return 'NULL'
  const fail = () =>
    mysqlError(
      'config',
      `resume context value for column ${JSON.stringify(column.name)} does not fit its type ${column.columnType}`,
    )
  if (column.dataType === 'bit') {
    if (typeof value === 'string' && /^[01]+$/.test(value)) return `b'${value}'`
    if (typeof value === 'boolean') return value ? "b'1'" : "b'0'"
    throw fail()
  }
  if (INTEGER_TYPES.has(column.dataType)) {
    if (typeof value === 'boolean') return value ? '1' : '0'
    const text = String(value)
    if (!INTEGER.test(text)) throw fail()
    return text
  }
  if (
    column.dataType === 'decimal' ||
    column.dataType === 'numeric' ||
    column.dataType === 'double' ||
    column.dataType === 'float' ||
    column.dataType === 'real'
  ) {
    const text = String(value)
    if (!DECIMAL.test(text)) throw fail()
    return text
  }
  if (typeof value !== 'string') throw fail()
  if (BINARY_TYPES.has(column.dataType)) return hexLiteral(Buffer.from(value, 'base64'))
  switch (column.dataType) {
    case 'date':
    case 'time':
      if (!TEMPORAL.test(value)) throw fail()
      return quoteString(value)
    case 'datetime':
      if (!TEMPORAL.test(value)) throw fail()
      return quoteString(value.replace('T', ' '))
    case 'timestamp':
      return quoteString(instantToUtcText(value))
    default:
      return quoteString(value)
  }
}

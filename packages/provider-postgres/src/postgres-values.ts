import { isTaggedValue, type SqlValue, type TaggedValue, tagged } from '@nvisy/provider-core'
import { parse as parseArray } from 'postgres-array'

/**
 * Values travel from PostgreSQL as text (every type parser returns the text as is) and are
 * converted here per type OID, so nothing passes through a lossy JS type.
 */
export type TextConverter = (text: string) => SqlValue

/** Built-in type OIDs (pg_type.oid), stable across PostgreSQL versions. */
export const OID = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  bit: 1560,
  varbit: 1562,
  uuid: 2950,
  jsonb: 3802,
} as const

const identity: TextConverter = (text) => text
const toNumber: TextConverter = (text) => Number(text)

const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/
const TIMESTAMPTZ_UTC = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\+00$/

/** '2024-02-29 13:45:00.123456' -> '2024-02-29T13:45:00.123456'; BC and infinity stay as printed. */
export function timestampFromText(text: string): string {
  if (!TIMESTAMP.test(text)) return text
  const at = text.indexOf(' ')
  return `${text.slice(0, at)}T${text.slice(at + 1)}`
}

/** '2024-02-29 13:45:00.123456+00' -> '2024-02-29T13:45:00.123456Z' (session TimeZone is UTC). */
export function timestamptzFromText(text: string): string {
  if (!TIMESTAMPTZ_UTC.test(text)) return text
  const at = text.indexOf(' ')
  return `${text.slice(0, at)}T${text.slice(at + 1, -3)}Z`
}

/** bytea in hex output format ('\x0a0b') to bytes. */
export function byteaFromText(text: string): Uint8Array {
  if (text.startsWith('\\x')) return new Uint8Array(Buffer.from(text.slice(2), 'hex'))
  // The old escape format (bytea_output = 'escape'): octal escapes and doubled backslashes.
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') {
      if (text[i + 1] === '\\') {
        bytes.push(0x5c)
        i++
      } else {
        bytes.push(Number.parseInt(text.slice(i + 1, i + 4), 8))
        i += 3
      }
    } else {
      bytes.push(text.charCodeAt(i))
    }
  }
  return new Uint8Array(bytes)
}

const SCALAR_CONVERTERS = new Map<number, TextConverter>([
  [OID.bool, (text) => text === 't'],
  [OID.bytea, byteaFromText],
  [OID.int2, toNumber],
  [OID.int4, toNumber],
  [OID.oid, toNumber],
  [OID.int8, (text) => BigInt(text)],
  [OID.float4, toNumber],
  [OID.float8, toNumber],
  [OID.numeric, (text) => tagged('decimal', text)],
  [OID.date, (text) => tagged('date', text)],
  [OID.time, (text) => tagged('time', text)],
  [OID.timetz, (text) => tagged('time', text)],
  [OID.timestamp, (text) => tagged('timestamp', timestampFromText(text))],
  [OID.timestamptz, (text) => tagged('timestamptz', timestamptzFromText(text))],
  [OID.interval, (text) => tagged('interval', text)],
  [OID.json, (text) => tagged('json', text)],
  [OID.jsonb, (text) => tagged('json', text)],
  [OID.bit, (text) => tagged('bits', text)],
  [OID.varbit, (text) => tagged('bits', text)],
])

/** What the catalog says about a column's type. */
export interface ColumnType {
  /** pg_type.oid of the column's type. */
  oid: number
  /** For an array type, its element type's OID; 0 otherwise. */
  elementOid: number
  /** For a domain, the base type's OID; 0 otherwise. */
  baseOid: number
}

/** The converter for one column: scalars by OID, arrays element-wise, anything else as text. */
export function converterFor(type: ColumnType): TextConverter {
  const oid = type.baseOid || type.oid
  const scalar = SCALAR_CONVERTERS.get(oid)
  if (scalar) return scalar
  if (type.elementOid) {
    const element = SCALAR_CONVERTERS.get(type.elementOid) ?? identity
    // box[] is the one built-in array whose delimiter is ';' and not ','.
    if (type.elementOid === 603) return identity
    return (text) => parseArrayText(text, element)
  }
  return identity
}

/**
 * The conversion of text `t` as a JavaScript expression, for the row builder compiled once
 * per read (see postgres-source.ts), `t` naming the text variable; undefined when the column needs its converter function.
 * Each expression returns exactly what `converterFor(type)(t)` returns: tagged values are
 * `{ $type, value }` literals, the shape `tagged()` builds.
 */
export function converterExpression(type: ColumnType, t: string): string | undefined {
  const oid = type.baseOid || type.oid
  const tag = (name: TaggedValue['$type'], value = t) => `{ $type: '${name}', value: ${value} }`
  switch (oid) {
    case OID.bool:
      return `${t} === 't'`
    case OID.int2:
    case OID.int4:
    case OID.oid:
    case OID.float4:
    case OID.float8:
      return `Number(${t})`
    case OID.int8:
      return `BigInt(${t})`
    case OID.numeric:
      return tag('decimal')
    case OID.date:
      return tag('date')
    case OID.time:
    case OID.timetz:
      return tag('time')
    case OID.timestamp:
      return tag('timestamp', `timestampFromText(${t})`)
    case OID.timestamptz:
      return tag('timestamptz', `timestamptzFromText(${t})`)
    case OID.interval:
      return tag('interval')
    case OID.json:
    case OID.jsonb:
      return tag('json')
    case OID.bit:
    case OID.varbit:
      return tag('bits')
  }
  return converterFor(type) === identity ? t : undefined
}

/**
 * For a column whose values are all tagged values of one type (numeric, dates and times,
 * intervals, json, bit strings): that `$type` and the expression of its text from the
 * server's text `t` (what `converterExpression` puts in `value`). A read by column holds such
 * a column as that text (`WireRows.tags`). Undefined for other columns.
 */
export function columnTagText(
  type: ColumnType,
  t: string,
): { tag: TaggedValue['$type']; text: string } | undefined {
  switch (type.baseOid || type.oid) {
    case OID.numeric:
      return { tag: 'decimal', text: t }
    case OID.date:
      return { tag: 'date', text: t }
    case OID.time:
    case OID.timetz:
      return { tag: 'time', text: t }
    case OID.timestamp:
      return { tag: 'timestamp', text: `timestampFromText(${t})` }
    case OID.timestamptz:
      return { tag: 'timestamptz', text: `timestamptzFromText(${t})` }
    case OID.interval:
      return { tag: 'interval', text: t }
    case OID.json:
    case OID.jsonb:
      return { tag: 'json', text: t }
    case OID.bit:
    case OID.varbit:
      return { tag: 'bits', text: t }
  }
  return undefined
}

/** '{1,2,NULL}' (possibly with '[1:3]=' bounds, possibly nested) to nested arrays. */
export function parseArrayText(text: string, element: TextConverter): SqlValue[] {
  const body = text.startsWith('[') ? text.slice(text.indexOf('=') + 1) : text
  return parseArray(body, element) as SqlValue[]
}

/** JSON-safe cursor values: int2/int4 as numbers, everything else as PostgreSQL's own text. */
export function cursorValueFromText(type: ColumnType, text: string): string | number {
  const oid = type.baseOid || type.oid
  return oid === OID.int2 || oid === OID.int4 ? Number(text) : text
}

// ---------------------------------------------------------------------------------------
// SqlValue -> PostgreSQL text input. The server parses the text with the column's type, so
// every value PostgreSQL printed goes back exactly.
// ---------------------------------------------------------------------------------------

function numberText(value: number): string {
  if (Object.is(value, -0)) return '-0'
  return String(value)
}

function byteaText(value: Uint8Array): string {
  return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`
}

function taggedText(value: TaggedValue): string {
  return value.value
}

function arrayElementText(value: SqlValue): string {
  if (value === null) return 'NULL'
  if (Array.isArray(value)) return arrayLiteral(value)
  const text = scalarText(value as Exclude<SqlValue, readonly SqlValue[] | null>)
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

/** A PostgreSQL array literal: '{"a","b",NULL}', nested for multi-dimensional arrays. */
export function arrayLiteral(values: readonly SqlValue[]): string {
  return `{${values.map(arrayElementText).join(',')}}`
}

function scalarText(value: Exclude<SqlValue, readonly SqlValue[] | null>): string {
  switch (typeof value) {
    case 'string':
      return value
    case 'number':
      return numberText(value)
    case 'bigint':
      return value.toString()
    case 'boolean':
      return value ? 't' : 'f'
  }
  if (value instanceof Uint8Array) return byteaText(value)
  if (isTaggedValue(value)) return taggedText(value)
  throw new TypeError(`unsupported value of type ${Object.prototype.toString.call(value)}`)
}

/** A value as the text PostgreSQL parses back into the column's type; null stays null. */
export function sqlValueToText(value: SqlValue | undefined): string | null {
  if (value === null || value === undefined) return null
  if (Array.isArray(value)) return arrayLiteral(value)
  return scalarText(value as Exclude<SqlValue, readonly SqlValue[] | null>)
}

const COPY_ESCAPED = /[\\\t\n\r]/
const COPY_ESCAPED_ALL = /[\\\t\n\r]/g
const copyEscape = (c: string) =>
  c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'

/** One field of COPY's text format: '\N' for null, backslash, tab, newline and CR escaped. */
export function copyField(value: SqlValue | undefined): string {
  const text = typeof value === 'string' ? value : sqlValueToText(value)
  if (text === null) return '\\N'
  if (!COPY_ESCAPED.test(text)) return text
  return text.replace(COPY_ESCAPED_ALL, copyEscape)
}

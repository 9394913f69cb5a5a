import {
  type ColumnType,
  isTaggedValue,
  type ColumnInfo as PortableColumn,
  type SqlValue,
  type TaggedValue,
} from '@nvisy/provider-core'
import { mysqlError } from './mysql-errors.js'
import {
  type ColumnInfo,
  hexLiteral,
  instantToUtcText,
  isGeometry,
  quoteString,
  toLiteral,
} from './mysql-values.js'

// ---------------------------------------------------------------------------------------
// Native column types <-> portable ColumnType.
// ---------------------------------------------------------------------------------------

/** MySQL's integer types by DATA_TYPE, and their bits. */
export const INTEGER_BITS: Record<string, 8 | 16 | 24 | 32 | 64> = {
  tinyint: 8,
  smallint: 16,
  mediumint: 24,
  int: 32,
  integer: 32,
  bigint: 64,
}

/** The numbers in the first parentheses of a COLUMN_TYPE: `decimal(10,2)` -> [10, 2]. */
function typeArgs(columnType: string): number[] {
  const match = /^[a-z ]+\(([\d, ]+)\)/.exec(columnType)
  if (!match) return []
  return match[1]!.split(',').map((part) => Number(part.trim()))
}

/** The members of `enum('a','b')` / `set('a','b')`, from the COLUMN_TYPE as the server spells it. */
export function enumMembers(nativeType: string): string[] {
  const open = nativeType.indexOf('(')
  const members: string[] = []
  let i = open + 1
  while (i < nativeType.length && nativeType[i] === "'") {
    let value = ''
    i++
    for (;;) {
      const c = nativeType[i]
      if (c === undefined) return members
      if (c === "'" && nativeType[i + 1] === "'") {
        value += "'"
        i += 2
      } else if (c === "'") {
        i++
        break
      } else if (c === '\\' && i + 1 < nativeType.length) {
        value += nativeType[i + 1]
        i += 2
      } else {
        value += c
        i++
      }
    }
    members.push(value)
    if (nativeType[i] === ',') i++
  }
  return members
}

/** Fractional-second digits of a temporal COLUMN_TYPE (`datetime(6)` -> 6, `time` -> 0). */
export function fractionDigits(column: ColumnInfo): number {
  return typeArgs(column.columnType)[0] ?? 0
}

/** Bits of a BIT(n) column. */
export function bitLength(column: ColumnInfo): number {
  return typeArgs(column.columnType)[0] ?? 1
}

/** The portable type of a MySQL/MariaDB column. */
export function portableType(column: ColumnInfo): ColumnType {
  const unsigned = /\bunsigned\b/.test(column.columnType)
  const args = typeArgs(column.columnType)
  if (column.json)
    return column.dataType === 'json' ? { type: 'json', binary: true } : { type: 'json' }
  const bits = INTEGER_BITS[column.dataType]
  if (bits) return unsigned ? { type: 'integer', bits, unsigned: true } : { type: 'integer', bits }
  switch (column.dataType) {
    case 'decimal':
    case 'numeric':
      return {
        type: 'decimal',
        precision: args[0] ?? 10,
        scale: args[1] ?? 0,
        ...(unsigned ? { unsigned: true } : {}),
      }
    case 'float':
      return { type: 'float', bits: 32, ...(unsigned ? { unsigned: true } : {}) }
    case 'double':
    case 'real':
      return { type: 'float', bits: 64, ...(unsigned ? { unsigned: true } : {}) }
    case 'bit':
      return { type: 'bits', length: args[0] ?? 1 }
    case 'char':
      return { type: 'text', maxLength: args[0] ?? 1, fixed: true }
    case 'varchar':
      return { type: 'text', maxLength: args[0] ?? 255 }
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
      return { type: 'text' }
    case 'binary':
      return { type: 'binary', maxLength: args[0] ?? 1, fixed: true }
    case 'varbinary':
      return { type: 'binary', maxLength: args[0] ?? 255 }
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
      return { type: 'binary' }
    case 'date':
      return { type: 'date' }
    case 'time':
      return { type: 'duration', precision: args[0] ?? 0 }
    case 'datetime':
      return { type: 'timestamp', withTimeZone: false, precision: args[0] ?? 0 }
    case 'timestamp':
      return { type: 'timestamp', withTimeZone: true, precision: args[0] ?? 0 }
    case 'year':
      return { type: 'year' }
    case 'enum':
      return { type: 'enum', values: enumMembers(column.nativeType ?? column.columnType) }
    case 'set':
      return { type: 'set', values: enumMembers(column.nativeType ?? column.columnType) }
    case 'uuid':
      return { type: 'uuid' }
    default:
      return { type: 'other' }
  }
}

const CHARACTER_TYPES = new Set([
  'char',
  'varchar',
  'tinytext',
  'text',
  'mediumtext',
  'longtext',
  'enum',
  'set',
])

/** The native type as a CREATE TABLE would spell it: COLUMN_TYPE plus the character set and collation. */
export function nativeTypeOf(column: ColumnInfo): string {
  if (column.json) return 'json'
  const base = column.nativeType ?? column.columnType
  if (CHARACTER_TYPES.has(column.dataType) && column.charset && column.collation) {
    return `${base} character set ${column.charset} collate ${column.collation}`
  }
  return base
}

export function portableColumn(column: ColumnInfo): PortableColumn {
  return {
    name: column.name,
    nativeType: nativeTypeOf(column),
    type: portableType(column),
    nullable: column.nullable,
  }
}

/** Key columns must be indexable: InnoDB's limit is 3072 bytes, 768 utf8mb4 characters. */
const KEY_TEXT_LENGTH = 768

const TEXT = 'CHARACTER SET utf8mb4 COLLATE utf8mb4_bin'

/**
 * The MySQL DDL type for a portable column type (the "portable -> MySQL" table of the
 * README). Throws a `config` error naming the column for a type MySQL cannot hold exactly.
 */
export function mysqlTypeFor(column: PortableColumn, isKey: boolean): string {
  const refuse = (rule: string) =>
    mysqlError(
      'config',
      `cannot create column ${JSON.stringify(column.name)} (${column.nativeType}): ${rule}`,
    )
  const t = column.type
  switch (t.type) {
    case 'boolean':
      return 'BOOLEAN'
    case 'integer': {
      const name = { 8: 'TINYINT', 16: 'SMALLINT', 24: 'MEDIUMINT', 32: 'INT', 64: 'BIGINT' }[
        t.bits
      ]
      if (!name) throw refuse(`no MySQL integer type has ${t.bits} bits`)
      return t.unsigned ? `${name} UNSIGNED` : name
    }
    case 'decimal': {
      if (t.precision === undefined) return `DECIMAL(65,30)${t.unsigned ? ' UNSIGNED' : ''}`
      const scale = t.scale ?? 0
      if (t.precision > 65 || scale > 30 || scale < 0)
        throw refuse(
          `DECIMAL holds at most 65 digits with at most 30 after the point (asked: ${t.precision},${scale})`,
        )
      return `DECIMAL(${t.precision},${scale})${t.unsigned ? ' UNSIGNED' : ''}`
    }
    case 'float':
      return t.bits === 32 ? 'FLOAT' : 'DOUBLE'
    case 'bits':
      if (t.varying) {
        // A bit string of varying length is kept as its digits, so its length survives.
        if (t.length > 0 && t.length <= (isKey ? 3072 : 16_383))
          return `VARCHAR(${t.length}) CHARACTER SET ascii COLLATE ascii_bin`
        if (isKey) throw refuse('a key column holds at most 3072 bit digits')
        return 'LONGTEXT CHARACTER SET ascii COLLATE ascii_bin'
      }
      if (t.length < 1 || t.length > 64) throw refuse('BIT holds 1 to 64 bits')
      return `BIT(${t.length})`
    case 'text':
      if (t.fixed && t.maxLength !== undefined && t.maxLength <= 255)
        return `CHAR(${t.maxLength}) ${TEXT}`
      if (t.maxLength !== undefined && t.maxLength <= (isKey ? KEY_TEXT_LENGTH : 16_383))
        return `VARCHAR(${t.maxLength}) ${TEXT}`
      if (isKey) {
        if (t.maxLength !== undefined)
          throw refuse(`a key column holds at most ${KEY_TEXT_LENGTH} characters`)
        return `VARCHAR(${KEY_TEXT_LENGTH}) ${TEXT}`
      }
      return `LONGTEXT ${TEXT}`
    case 'binary':
      if (t.fixed && t.maxLength !== undefined && t.maxLength <= 255)
        return `BINARY(${t.maxLength})`
      if (t.maxLength !== undefined && t.maxLength <= (isKey ? 3072 : 16_383))
        return `VARBINARY(${t.maxLength})`
      if (isKey) {
        if (t.maxLength !== undefined) throw refuse('a key column holds at most 3072 bytes')
        return 'VARBINARY(3072)'
      }
      return 'LONGBLOB'
    case 'date':
      return 'DATE'
    case 'time':
      if (t.withTimeZone) throw refuse('MySQL TIME has no time zone')
      return `TIME(${Math.min(6, t.precision ?? 6)})`
    case 'duration':
      return `TIME(${Math.min(6, t.precision ?? 6)})`
    case 'timestamp':
      return `DATETIME(${Math.min(6, t.precision ?? 6)})`
    case 'year':
      return 'YEAR'
    case 'json':
      return 'JSON'
    case 'uuid':
      return 'CHAR(36) CHARACTER SET ascii COLLATE ascii_general_ci'
    case 'enum':
    case 'set': {
      if (t.values.length === 0) throw refuse(`an ${t.type.toUpperCase()} needs members`)
      if (t.type === 'set' && t.values.length > 64) throw refuse('a SET holds at most 64 members')
      if (t.type === 'set' && t.values.some((v) => v.includes(',')))
        throw refuse('SET members cannot contain commas')
      return `${t.type.toUpperCase()}(${t.values.map(quoteString).join(',')}) ${TEXT}`
    }
    case 'array':
      throw refuse('MySQL has no array type')
    default:
      throw refuse('the type has no MySQL equivalent')
  }
}

// ---------------------------------------------------------------------------------------
// Writing: an encoder per destination column, chosen by its declared type. An encoder
// returns the SQL literal, or throws a TypeError whose message names the value's type and
// the rule, never the value; the sink turns it into a per-row `data` failure naming the column.
// ---------------------------------------------------------------------------------------

export type Encoder = (value: SqlValue) => string

function kindOf(value: SqlValue): string {
  if (value === null) return 'null'
  if (isTaggedValue(value)) return `a ${value.$type} value`
  if (value instanceof Uint8Array) return 'a binary value'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'bigint') return 'a bigint'
  return `a ${typeof value}`
}

/**
 * The refusal of `value`: its type and the rule it breaks, never the value itself (values may
 * be personal or secret data; a length, a digit count or a range may be named).
 */
function cannot(value: SqlValue, rule: string): TypeError {
  return new TypeError(`${kindOf(value)} ${rule}`)
}

const NOT_FINITE = 'that is not finite (NaN, Infinity or -Infinity) cannot be stored in MySQL'
const NUMBER_RULE = 'digits with an optional sign, point and exponent'

const NUMBER_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/

/** A number's exact decimal text as sign, integer digits, fraction digits (no exponent, no padding). */
export function splitDecimal(
  text: string,
): { negative: boolean; int: string; frac: string } | undefined {
  const match = NUMBER_TEXT.exec(text.trim())
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) return undefined
  let digits = `${match[2]}${match[3] ?? ''}`
  let point = match[2]!.length + Number(match[4] ?? 0)
  if (point < 0) {
    digits = '0'.repeat(-point) + digits
    point = 0
  }
  if (point > digits.length) digits += '0'.repeat(point - digits.length)
  const int = digits.slice(0, point).replace(/^0+/, '')
  const frac = digits.slice(point).replace(/0+$/, '')
  const negative = match[1] === '-' && (int !== '' || frac !== '')
  return { negative, int, frac }
}

const INTEGER_RANGES: Record<string, [bigint, bigint, bigint]> = {
  // signed min, signed max, unsigned max
  tinyint: [-128n, 127n, 255n],
  smallint: [-32768n, 32767n, 65535n],
  mediumint: [-8388608n, 8388607n, 16777215n],
  int: [-2147483648n, 2147483647n, 4294967295n],
  integer: [-2147483648n, 2147483647n, 4294967295n],
  bigint: [-9223372036854775808n, 9223372036854775807n, 18446744073709551615n],
}

function integerEncoder(column: ColumnInfo): Encoder {
  const [smin, smax, umax] = INTEGER_RANGES[column.dataType]!
  const unsigned = /\bunsigned\b/.test(column.columnType)
  const min = unsigned ? 0n : smin
  const max = unsigned ? umax : smax
  const inRange = (n: bigint, value: SqlValue) => {
    if (n < min || n > max)
      throw cannot(value, `is out of range for ${column.columnType} (${min}..${max})`)
    return n.toString()
  }
  return (value) => {
    if (typeof value === 'number') {
      if (!Number.isInteger(value))
        throw cannot(value, `that is not an integer cannot be stored in ${column.columnType}`)
      return inRange(BigInt(value), value)
    }
    if (typeof value === 'bigint') return inRange(value, value)
    if (typeof value === 'boolean') return value ? '1' : '0'
    if (isTaggedValue(value) && value.$type === 'decimal') {
      const parts = splitDecimal(value.value)
      if (!parts || parts.frac !== '')
        throw cannot(value, `that is not an integer cannot be stored in ${column.columnType}`)
      return inRange(BigInt(`${parts.negative ? '-' : ''}${parts.int || '0'}`), value)
    }
    throw cannot(value, `cannot be stored in an integer column (${column.columnType})`)
  }
}

function decimalEncoder(column: ColumnInfo): Encoder {
  const [precision = 10, scale = 0] = typeArgs(column.columnType)
  const unsigned = /\bunsigned\b/.test(column.columnType)
  return (value) => {
    let text: string
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw cannot(value, NOT_FINITE)
      text = String(value)
    } else if (typeof value === 'bigint') text = value.toString()
    else if (isTaggedValue(value) && value.$type === 'decimal') text = value.value
    else throw cannot(value, `cannot be stored in ${column.columnType}`)
    const parts = splitDecimal(text)
    if (!parts) throw cannot(value, `whose text is not a decimal number (${NUMBER_RULE})`)
    if (parts.int.length > precision - scale || parts.frac.length > scale)
      throw cannot(
        value,
        `with ${parts.int.length} integer and ${parts.frac.length} fraction digits does not fit ${column.columnType} (at most ${precision - scale} and ${scale}; no rounding)`,
      )
    if (unsigned && parts.negative)
      throw cannot(value, `that is negative cannot be stored in ${column.columnType}`)
    return `${parts.negative ? '-' : ''}${parts.int || '0'}${parts.frac ? `.${parts.frac}` : ''}`
  }
}

function floatEncoder(column: ColumnInfo, bits: 32 | 64): Encoder {
  const unsigned = /\bunsigned\b/.test(column.columnType)
  return (value) => {
    let n: number
    if (typeof value === 'number') n = value
    else if (isTaggedValue(value) && value.$type === 'decimal') {
      if (!splitDecimal(value.value))
        throw cannot(value, `whose text is not a decimal number (${NUMBER_RULE})`)
      n = Number(value.value)
    } else if (typeof value === 'bigint') {
      n = Number(value)
      if (BigInt(n) !== value)
        throw cannot(
          value,
          `is not exactly representable in ${column.columnType} (more than 53 significant bits; no rounding)`,
        )
    } else throw cannot(value, `cannot be stored in ${column.columnType}`)
    if (!Number.isFinite(n)) throw cannot(value, NOT_FINITE)
    if (unsigned && n < 0)
      throw cannot(value, `that is negative cannot be stored in ${column.columnType}`)
    if (bits === 32) {
      // The nearest float32, written as the shortest text of that exact double: the server
      // parses it to the same double and narrows it to the same float32.
      n = Math.fround(n)
      // A float32's shortest text (PostgreSQL real: 3.4028235e+38) rounds back to it.
      if (!Number.isFinite(n))
        throw cannot(value, 'is out of range for FLOAT (|x| <= 3.4028234663852886e38)')
    }
    // Number -> text is the shortest text that parses back to the same double.
    return Object.is(n, -0) ? '-0e0' : String(n)
  }
}

function bitEncoder(column: ColumnInfo): Encoder {
  const length = bitLength(column)
  const max = (1n << BigInt(length)) - 1n
  return (value) => {
    if (typeof value === 'boolean') return value ? "b'1'" : "b'0'"
    if (isTaggedValue(value) && value.$type === 'bits') {
      if (!/^[01]*$/.test(value.value)) throw cannot(value, 'is not a string of 0 and 1')
      if (value.value.length > length)
        throw cannot(
          value,
          `of ${value.value.length} bits does not fit ${column.columnType} (at most ${length} bits)`,
        )
      return value.value === '' ? "b'0'" : `b'${value.value}'`
    }
    if (typeof value === 'number' || typeof value === 'bigint') {
      if (typeof value === 'number' && !Number.isInteger(value))
        throw cannot(value, `that is not an integer cannot be stored in ${column.columnType}`)
      const n = BigInt(value)
      if (n < 0n || n > max)
        throw cannot(value, `is out of range for ${column.columnType} (0..${max})`)
      return n.toString()
    }
    throw cannot(value, `cannot be stored in ${column.columnType}`)
  }
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const DATETIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?$/

function checkFraction(value: SqlValue, fraction: string, digits: number, type: string): string {
  const kept = fraction.slice(0, digits)
  if (/[1-9]/.test(fraction.slice(digits)))
    throw cannot(
      value,
      `has ${fraction.length} fractional digits; ${type} keeps ${digits} (no rounding)`,
    )
  return kept.length > 0 ? `.${kept}` : ''
}

function dateEncoder(column: ColumnInfo): Encoder {
  return (value) => {
    if (typeof value === 'string') return quoteString(value)
    if (isTaggedValue(value)) {
      if (value.$type === 'date' && DATE.test(value.value)) return quoteString(value.value)
      if (value.$type === 'timestamp') {
        const match = DATETIME.exec(value.value)
        if (match && match[2] === '00:00:00' && !/[1-9]/.test(match[3] ?? ''))
          return quoteString(match[1]!)
        throw cannot(value, 'with a time of day cannot be stored in a DATE (no truncation)')
      }
    }
    throw cannot(value, `cannot be stored in ${column.columnType} (a date value YYYY-MM-DD)`)
  }
}

function datetimeEncoder(column: ColumnInfo): Encoder {
  const digits = fractionDigits(column)
  return (value) => {
    if (typeof value === 'string') return quoteString(value)
    if (isTaggedValue(value)) {
      let text: string | undefined
      if (value.$type === 'timestamp') text = value.value
      else if (value.$type === 'timestamptz') {
        try {
          text = instantToUtcText(value.value)
        } catch {
          text = undefined
        }
      } else if (value.$type === 'date' && DATE.test(value.value)) text = `${value.value} 00:00:00`
      const match = text === undefined ? null : DATETIME.exec(text)
      if (match) {
        return quoteString(
          `${match[1]} ${match[2]}${checkFraction(value, match[3] ?? '', digits, column.columnType)}`,
        )
      }
      if (value.$type === 'timestamp' || value.$type === 'timestamptz')
        throw cannot(
          value,
          'is not a timestamp MySQL can hold (YYYY-MM-DD hh:mm:ss with up to 6 fraction digits, years 1000-9999)',
        )
    }
    throw cannot(value, `cannot be stored in ${column.columnType}`)
  }
}

const MYSQL_TIME = /^(-?)(\d+):(\d{2}):(\d{2})(?:\.(\d+))?$/
const ISO_DURATION = /^(-?)P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d+))?S)?)?$/
const PG_INTERVAL =
  /^(?:(-?\d+) years? ?)?(?:(-?\d+) mons? ?)?(?:(-?\d+) days? ?)?(?:([+-]?)(\d+):(\d{2}):(\d{2})(?:\.(\d+))?)?$/

/** Microseconds of a duration text: MySQL's `-838:59:59.000000`, ISO 8601 `P1DT2H`, or PostgreSQL's `1 day 02:00:00`. */
export function durationMicros(text: string): { micros: bigint; fraction: string } | undefined {
  const us = (h: bigint, m: bigint, s: bigint, fraction: string) =>
    ((h * 60n + m) * 60n + s) * 1_000_000n + BigInt((fraction.padEnd(6, '0') || '0').slice(0, 6))
  let match = MYSQL_TIME.exec(text)
  if (match) {
    const fraction = match[5] ?? ''
    const micros = us(BigInt(match[2]!), BigInt(match[3]!), BigInt(match[4]!), fraction)
    return { micros: match[1] === '-' ? -micros : micros, fraction }
  }
  match = ISO_DURATION.exec(text)
  if (match && text !== 'P' && !text.endsWith('T')) {
    const fraction = match[6] ?? ''
    const hours = BigInt(match[2] ?? 0) * 24n + BigInt(match[3] ?? 0)
    const micros = us(hours, BigInt(match[4] ?? 0), BigInt(match[5] ?? 0), fraction)
    return { micros: match[1] === '-' ? -micros : micros, fraction }
  }
  match = PG_INTERVAL.exec(text)
  if (match && text !== '') {
    if (Number(match[1] ?? 0) !== 0 || Number(match[2] ?? 0) !== 0) return undefined
    const fraction = match[8] ?? ''
    let clock = us(BigInt(match[5] ?? 0), BigInt(match[6] ?? 0), BigInt(match[7] ?? 0), fraction)
    if (match[4] === '-') clock = -clock
    return { micros: BigInt(match[3] ?? 0) * 86_400_000_000n + clock, fraction }
  }
  return undefined
}

const TIME_MAX = 3_020_399_999_999n // 838:59:59.999999

function timeEncoder(column: ColumnInfo): Encoder {
  const digits = fractionDigits(column)
  return (value) => {
    if (typeof value === 'string') return quoteString(value)
    if (isTaggedValue(value) && (value.$type === 'interval' || value.$type === 'time')) {
      if (value.$type === 'time' && /[zZ]|[+-]\d{2}(:?\d{2})?$/.test(value.value.slice(8)))
        throw cannot(value, `with a time zone cannot be stored in ${column.columnType}`)
      const parsed = durationMicros(value.value)
      if (!parsed)
        throw cannot(
          value,
          'is not a duration of fixed length (hh:mm:ss, ISO 8601 PnDTnHnMnS or PostgreSQL "n days hh:mm:ss"; no years or months)',
        )
      checkFraction(value, parsed.fraction, digits, column.columnType)
      const { micros } = parsed
      const abs = micros < 0n ? -micros : micros
      if (abs > TIME_MAX)
        throw cannot(value, `is out of range for TIME (-838:59:59.999999..838:59:59.999999)`)
      const seconds = abs / 1_000_000n
      const fraction = (abs % 1_000_000n).toString().padStart(6, '0').slice(0, digits)
      const hh = seconds / 3600n
      const mm = ((seconds / 60n) % 60n).toString().padStart(2, '0')
      const ss = (seconds % 60n).toString().padStart(2, '0')
      return quoteString(
        `${micros < 0n ? '-' : ''}${hh.toString().padStart(2, '0')}:${mm}:${ss}${fraction ? `.${fraction}` : ''}`,
      )
    }
    throw cannot(value, `cannot be stored in ${column.columnType} (an interval or time value)`)
  }
}

function yearEncoder(column: ColumnInfo): Encoder {
  return (value) => {
    const n = typeof value === 'bigint' ? Number(value) : value
    if (typeof n === 'number' && Number.isInteger(n) && (n === 0 || (n >= 1901 && n <= 2155)))
      return String(n)
    if (typeof n === 'number') throw cannot(value, 'is out of range for YEAR (1901..2155, or 0)')
    throw cannot(value, `cannot be stored in ${column.columnType} (a number)`)
  }
}

function jsonEncoder(column: ColumnInfo): Encoder {
  return (value) => {
    if (isTaggedValue(value)) {
      if (value.$type === 'json') return quoteString(value.value)
      throw cannot(value, 'cannot be stored in a JSON column (a json value)')
    }
    if (typeof value === 'string') return quoteString(value)
    if (typeof value === 'boolean') return quoteString(String(value))
    if (typeof value === 'number' && Number.isFinite(value)) return quoteString(String(value))
    if (typeof value === 'bigint') return quoteString(value.toString())
    throw cannot(value, `cannot be stored in ${column.columnType}`)
  }
}

function memberEncoder(column: ColumnInfo, isSet: boolean): Encoder {
  const members = enumMembers(column.nativeType ?? column.columnType)
  const known = new Map(members.map((m) => [m.toLowerCase(), m]))
  const kind = isSet ? 'SET' : 'ENUM'
  // The refusal says which member (by position) is unknown, never what it holds.
  const check = (value: SqlValue, member: string, position: number | undefined) => {
    if (!known.has(member.toLowerCase()))
      throw cannot(
        value,
        position === undefined
          ? `is not one of the ${kind} members of the column`
          : `has a member (the ${ordinal(position)}) that is not one of the ${kind} members of the column`,
      )
  }
  return (value) => {
    if (typeof value === 'string') {
      if (isSet) {
        if (value !== '')
          for (const [i, member] of value.split(',').entries()) check(value, member, i)
      } else check(value, value, undefined)
      return quoteString(value)
    }
    if (isSet && Array.isArray(value) && value.every((m) => typeof m === 'string')) {
      for (const [i, member] of (value as string[]).entries()) {
        if (member.includes(',')) throw cannot(value, 'of SET members cannot hold a comma')
        check(value, member, i)
      }
      return quoteString(value.join(','))
    }
    throw cannot(
      value,
      `cannot be stored in ${column.columnType} (a string${isSet ? ' or an array of strings' : ''})`,
    )
  }
}

/** 0 -> `1st`, 1 -> `2nd`, 10 -> `11th`. */
function ordinal(index: number): string {
  const n = index + 1
  const tens = n % 100
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')
  return `${n}${suffix}`
}

function textEncoder(column: ColumnInfo): Encoder {
  return (value) => {
    if (typeof value === 'string') return quoteString(value)
    if (typeof value === 'bigint') return quoteString(value.toString())
    if (typeof value === 'number' && Number.isFinite(value)) return quoteString(String(value))
    if (isTaggedValue(value)) return quoteString((value as TaggedValue).value)
    throw cannot(value, `cannot be stored in a character column (${column.columnType})`)
  }
}

function binaryEncoder(column: ColumnInfo): Encoder {
  return (value) => {
    if (value instanceof Uint8Array) return hexLiteral(value)
    if (typeof value === 'string') return quoteString(value)
    throw cannot(value, `cannot be stored in ${column.columnType} (bytes)`)
  }
}

const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob'])
const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext'])

function createEncoder(column: ColumnInfo): Encoder {
  if (column.json) return jsonEncoder(column)
  if (INTEGER_RANGES[column.dataType]) return integerEncoder(column)
  if (BINARY_TYPES.has(column.dataType)) return binaryEncoder(column)
  if (TEXT_TYPES.has(column.dataType)) return textEncoder(column)
  switch (column.dataType) {
    case 'decimal':
    case 'numeric':
      return decimalEncoder(column)
    case 'float':
      return floatEncoder(column, 32)
    case 'double':
    case 'real':
      return floatEncoder(column, 64)
    case 'bit':
      return bitEncoder(column)
    case 'date':
      return dateEncoder(column)
    case 'datetime':
    case 'timestamp':
      return datetimeEncoder(column)
    case 'time':
      return timeEncoder(column)
    case 'year':
      return yearEncoder(column)
    case 'enum':
      return memberEncoder(column, false)
    case 'set':
      return memberEncoder(column, true)
  }
  if (isGeometry(column))
    return (value) => {
      if (value instanceof Uint8Array) return `ST_GeomFromWKB(${hexLiteral(value)})`
      throw cannot(value, 'cannot be stored in a geometry column (WKB bytes)')
    }
  return (value) => toLiteral(value, column)
}

const encoders = new WeakMap<ColumnInfo, Encoder>()

/** The SQL literal of `value` for `column`'s declared type (NULL for null). */
export function encodeFor(column: ColumnInfo, value: SqlValue | undefined): string {
  if (value === null || value === undefined) return 'NULL'
  let encoder = encoders.get(column)
  if (!encoder) {
    encoder = createEncoder(column)
    encoders.set(column, encoder)
  }
  return encoder(value)
}

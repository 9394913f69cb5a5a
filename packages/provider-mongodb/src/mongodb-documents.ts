// Document mapping between BSON and the `document` data kind, and the filters that resume
// a read in BSON order.
import {
  type DocumentData,
  JsonDuplicateKeyError,
  type JsonObject,
  ProviderError,
  parseJsonExact,
} from '@nvisy/provider-core'
import { BSON, Decimal128, type Document, Double, Long, ObjectId } from 'mongodb'

const { EJSON } = BSON
const CANONICAL = { relaxed: false } as const

/** A BSON value as canonical Extended JSON: `{ "$oid": "..." }`, `{ "$numberLong": "..." }`. */
export function toCanonical(value: unknown): unknown {
  return EJSON.serialize(value, CANONICAL)
}

/** Canonical (or relaxed) Extended JSON back to BSON values. */
export function fromExtendedJson<T = unknown>(value: unknown): T {
  return EJSON.deserialize(value as Document, CANONICAL) as T
}

const INT32_MIN = -2147483648
const INT32_MAX = 2147483647
const INT64_LIMIT = 2 ** 63

/**
 * Canonical Extended JSON content to a document the driver serializes to the same BSON as
 * `EJSON.deserialize(content, { relaxed: false })`, about five times faster: only objects
 * with `$` keys go through EJSON; plain numbers stay JS numbers where the driver already
 * writes the canonical type (int32 for integers that fit, double otherwise) and become
 * Long or Double only where it would not. Unchanged parts are shared, never mutated.
 */
export function contentToDocument(content: JsonObject): Document {
  return convertValue(content) as Document
}

function convertNumber(value: number): unknown {
  // -0 becomes int32 0, as it does through EJSON (which goes through JSON text).
  if (Object.is(value, -0)) return 0
  if (Number.isInteger(value)) {
    if (value >= INT32_MIN && value <= INT32_MAX) return value
    if (value >= -INT64_LIMIT && value <= INT64_LIMIT) return Long.fromNumber(value)
    return new Double(value)
  }
  return value
}

function convertValue(value: unknown): unknown {
  if (typeof value === 'number') return convertNumber(value)
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    let out: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const converted = convertValue(value[i])
      if (!Object.is(converted, value[i])) {
        out ??= value.slice()
        out[i] = converted
      }
    }
    return out ?? value
  }
  const object = value as Record<string, unknown>
  let out: Record<string, unknown> | undefined
  for (const key in object) {
    if (key.charCodeAt(0) === 36 /* $ */) return EJSON.deserialize(object, CANONICAL)
    const converted = convertValue(object[key])
    if (!Object.is(converted, object[key])) {
      out ??= { ...object }
      out[key] = converted
    }
  }
  return out ?? object
}

// ---------------------------------------------------------------------------------------
// Exact JSON text (DocumentData.rawJson): each number stored as a BSON type that holds it
// exactly, or the document refused. Never a rounded value, never a collapsed key.
// ---------------------------------------------------------------------------------------

/** A number of JSON text, kept as written until it gets its BSON type. */
class NumberText {
  constructor(readonly text: string) {}
}

const NUMBER_PARTS = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/

/** A decimal number as sign, significant digits (no leading or trailing zeros) and exponent; '' digits for zero. */
function decimalParts(text: string): { negative: boolean; digits: string; exponent: bigint } {
  const match = NUMBER_PARTS.exec(text)
  if (!match) throw new SyntaxError(`not a JSON number: ${text.slice(0, 40)}`)
  const [, sign, whole, fraction = '', exponent = '0'] = match
  let digits = `${whole}${fraction}`.replace(/^0+/, '')
  let scale = BigInt(exponent) - BigInt(fraction.length)
  const trimmed = digits.replace(/0+$/, '')
  scale += BigInt(digits.length - trimmed.length)
  digits = trimmed
  return { negative: sign === '-' && digits !== '', digits, exponent: digits === '' ? 0n : scale }
}

function sameNumber(
  a: ReturnType<typeof decimalParts>,
  b: ReturnType<typeof decimalParts>,
): boolean {
  return a.negative === b.negative && a.digits === b.digits && a.exponent === b.exponent
}

const INT32_MIN_BIG = -(2n ** 31n)
const INT32_MAX_BIG = 2n ** 31n - 1n
const INT64_MIN_BIG = -(2n ** 63n)
const INT64_MAX_BIG = 2n ** 63n - 1n

/**
 * The BSON value of a JSON number's text, as the content path types it where it can (an
 * integer as int32, else int64; any other number as double) but only where that type holds
 * the number exactly; else a Decimal128 (34 significant digits, exponents -6176..6111) when
 * that does; else a RangeError.
 */
export function exactBsonNumber(text: string): unknown {
  const parts = decimalParts(text)
  if (parts.digits === '') return 0 // zero and -0: int32 0, as the content path writes them
  if (parts.exponent >= 0n && BigInt(parts.digits.length) + parts.exponent <= 19n) {
    const magnitude = BigInt(parts.digits) * 10n ** parts.exponent
    const value = parts.negative ? -magnitude : magnitude
    if (value >= INT32_MIN_BIG && value <= INT32_MAX_BIG) return Number(value)
    if (value >= INT64_MIN_BIG && value <= INT64_MAX_BIG) return Long.fromBigInt(value)
  }
  const double = Number(text)
  if (Number.isFinite(double) && sameNumber(decimalParts(String(double)), parts))
    return new Double(double)
  const normalized = `${parts.negative ? '-' : ''}${parts.digits}E${parts.exponent}`
  for (const form of [text, normalized]) {
    try {
      return Decimal128.fromString(form)
    } catch {
      // inexact in this form: the normalized one may still fit, else refused below
    }
  }
  throw new RangeError(
    `the number ${text.length > 48 ? `${text.slice(0, 48)}…` : text} cannot be stored exactly (no int32, int64, double or Decimal128 holds it)`,
  )
}

/** Set a field, a `__proto__` key included (an own field, never the prototype). */
function setOwn(object: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(object, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  })
}

/** A parsed value with numbers as JS numbers, for Extended JSON wrappers ({"$numberLong": "7"}). */
function plainJson(value: unknown): unknown {
  if (value instanceof NumberText) {
    const number = Number(value.text)
    if (
      !Number.isFinite(number) ||
      !sameNumber(decimalParts(String(number)), decimalParts(value.text))
    )
      throw new RangeError(
        `the number ${value.text.slice(0, 48)} inside an Extended JSON object does not fit a double`,
      )
    return number
  }
  if (Array.isArray(value)) return value.map(plainJson)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      setOwn(out, key, plainJson((value as Record<string, unknown>)[key]))
    }
    return out
  }
  return value
}

function exactBsonValue(value: unknown): unknown {
  if (value instanceof NumberText) return exactBsonNumber(value.text)
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(exactBsonValue)
  const object = value as Record<string, unknown>
  const keys = Object.keys(object)
  // As on the content path: an object with a `$` key is Extended JSON.
  if (keys.some((key) => key.charCodeAt(0) === 36 /* $ */))
    return EJSON.deserialize(plainJson(object) as Document, CANONICAL)
  for (const key of keys) setOwn(object, key, exactBsonValue(object[key]))
  return object
}

/**
 * The BSON value of one field's exact JSON text (`DocumentData.rawJson`): numbers typed by
 * `exactBsonNumber`, key order kept. A repeated key (a MongoDB document cannot hold one) or a
 * number no BSON type holds exactly refuses the document, naming the field.
 */
export function rawJsonToBson(text: string, where: string): unknown {
  try {
    return exactBsonValue(parseJsonExact(text, (digits) => new NumberText(digits)))
  } catch (error) {
    const reason =
      error instanceof JsonDuplicateKeyError
        ? `its JSON text repeats ${error.key === undefined ? 'a key' : `the key ${JSON.stringify(error.key)}`} in one object, and a MongoDB document cannot hold a repeated key`
        : error instanceof RangeError
          ? `${error.message} in MongoDB`
          : `its JSON text is not valid JSON: ${(error as Error).message}`
    throw new ProviderError({
      kind: 'data',
      operation: 'write',
      message: `${where}: ${reason}; the document is refused rather than stored changed`,
      cause: error,
    })
  }
}

function bsonType(value: unknown): string | undefined {
  return value !== null && typeof value === 'object'
    ? (value as { _bsontype?: string })._bsontype
    : undefined
}

/**
 * `data.id` of a document: an ObjectId as its 24 hex digits, a string as itself, any other
 * type as its canonical Extended JSON text (`{"$numberInt":"7"}`).
 */
export function idToString(id: unknown): string {
  if (typeof id === 'string') return id
  if (bsonType(id) === 'ObjectId') return (id as ObjectId).toHexString()
  return EJSON.stringify(id, CANONICAL)
}

const HEX_ID = /^[0-9a-f]{24}$/

/** The `_id` for a `data.id` (used when the content has no `_id`). */
export function idFromString(id: string, mode: 'auto' | 'string'): unknown {
  if (mode === 'string') return id
  if (HEX_ID.test(id)) return new ObjectId(id)
  if (id.startsWith('{')) {
    try {
      return EJSON.parse(id, CANONICAL)
    } catch {
      return id
    }
  }
  return id
}

/** A stored document as a read item's data. */
export function toDocumentData(doc: Document): DocumentData {
  return { kind: 'document', id: idToString(doc._id), content: toCanonical(doc) as JsonObject }
}

/** A document to write: the content in Extended JSON, its `_id` from content._id or data.id. */
export function fromDocumentData(data: DocumentData, mode: 'auto' | 'string'): Document {
  if (
    data?.kind !== 'document' ||
    data.content === null ||
    typeof data.content !== 'object' ||
    Array.isArray(data.content)
  ) {
    throw new ProviderError({
      kind: 'data',
      message: 'MongoDB sink takes document data with an object content',
    })
  }
  let doc: Document
  try {
    doc = contentToDocument(data.content)
  } catch (error) {
    throw new ProviderError({
      kind: 'data',
      message: `document ${JSON.stringify(data.id)}: content is not valid Extended JSON: ${(error as Error).message}`,
      cause: error,
    })
  }
  if (data.rawJson) {
    // Fields with exact JSON text: typed from that text, never from the parsed value.
    doc = { ...doc }
    for (const field of Object.keys(data.rawJson)) {
      if (!Object.hasOwn(data.content, field)) continue
      const where = `document ${JSON.stringify(data.id)}: field ${JSON.stringify(field)}`
      setOwn(doc, field, rawJsonToBson(data.rawJson[field]!, where))
    }
  }
  if (doc._id === undefined) {
    if (typeof data.id !== 'string' || data.id.length === 0) {
      throw new ProviderError({
        kind: 'data',
        message: 'document has neither content._id nor an id',
      })
    }
    const { ...rest } = doc
    doc = { _id: idFromString(data.id, mode), ...rest }
  }
  if (Array.isArray(doc._id) || doc._id instanceof RegExp || bsonType(doc._id) === 'BSONRegExp') {
    throw new ProviderError({
      kind: 'data',
      message: `document ${JSON.stringify(data.id)}: _id cannot be an array or a regular expression`,
    })
  }
  return doc
}

// BSON comparison order of types (MongoDB sorts mixed types by this rank), with the $type
// aliases that select each bracket.
const TYPE_BRACKETS: [rank: number, alias: string][] = [
  [3, 'number'],
  [4, 'string'],
  [5, 'object'],
  [6, 'array'],
  [7, 'binData'],
  [8, 'objectId'],
  [9, 'bool'],
  [10, 'date'],
  [11, 'timestamp'],
  [12, 'regex'],
  [14, 'maxKey'],
]

function rankOf(value: unknown): number {
  if (value === null || value === undefined) return 2
  switch (typeof value) {
    case 'number':
    case 'bigint':
      return 3
    case 'string':
      return 4
    case 'boolean':
      return 9
  }
  if (Array.isArray(value)) return 6
  if (value instanceof Date) return 10
  if (value instanceof RegExp) return 12
  switch (bsonType(value)) {
    case 'MinKey':
      return 1
    case 'Int32':
    case 'Double':
    case 'Long':
    case 'Decimal128':
      return 3
    case 'BSONSymbol':
      return 4
    case 'Binary':
    case 'UUID':
      return 7
    case 'ObjectId':
      return 8
    case 'Timestamp':
      return 11
    case 'BSONRegExp':
      return 12
    case 'MaxKey':
      return 14
  }
  return 5
}

/**
 * Documents whose `path` sorts after `value` in BSON order. `$gt` alone compares only within
 * one type bracket, so values of types that sort later are added with `$type`.
 */
export function afterValue(path: string, value: unknown): Document {
  const rank = rankOf(value)
  const later = TYPE_BRACKETS.filter(([r]) => r > rank).map(([, alias]) => alias)
  if (rank === 2) return { [path]: { $type: later } }
  const greater = { [path]: { $gt: value } }
  return later.length > 0 ? { $or: [greater, { [path]: { $type: later } }] } : greater
}

/**
 * Documents whose `path` sorts at or before `value` in BSON order: `$lte` within the value's
 * type bracket, and every type that sorts earlier (MinKey and null included) with `$type`.
 */
export function upToValue(path: string, value: unknown): Document {
  const rank = rankOf(value)
  const earlier = [[1, 'minKey'] as const, [2, 'null'] as const, ...TYPE_BRACKETS]
    .filter(([r]) => r < rank)
    .map(([, alias]) => alias)
  const atOrBefore = rank === 2 ? { [path]: { $type: ['null'] } } : { [path]: { $lte: value } }
  return earlier.length > 0 ? { $or: [atOrBefore, { [path]: { $type: earlier } }] } : atOrBefore
}

/** The filter that resumes after (cursor value, _id), in the read's sort order. */
export function resumeFilter(id: unknown, cursorField?: string, cursorValue?: unknown): Document {
  if (cursorField === undefined) return afterValue('_id', id)
  const equal =
    cursorValue === null || cursorValue === undefined
      ? { [cursorField]: null }
      : { [cursorField]: cursorValue }
  return {
    $or: [afterValue(cursorField, cursorValue ?? null), { $and: [equal, afterValue('_id', id)] }],
  }
}

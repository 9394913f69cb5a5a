// Document mapping between BSON and the `document` data kind, and the filters that resume
// a read in BSON order.
import { type DocumentData, type JsonObject, ProviderError } from '@nvisy/provider-core'
import { BSON, type Document, Double, Long, ObjectId } from 'mongodb'

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

import { type Static, Type } from '@sinclair/typebox'
import { parse as parseLosslessJson } from 'lossless-json'
import type { BlobOrigin } from './server-side-copy.js'

/**
 * The typed data that flows between providers: one representation per category of
 * external system. Items move between providers inside one process; the TypeBox
 * schemas below describe the JSON-safe parts that cross a boundary (dead letters,
 * documents, contexts).
 */

export type JsonPrimitive = string | number | boolean | null
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue }
export type JsonObject = { [key: string]: JsonValue }

export const JsonValueSchema = Type.Unknown({ description: 'Any JSON value' })
export const JsonObjectSchema = Type.Record(Type.String(), Type.Unknown(), {
  description: 'A JSON object',
})

// ---------------------------------------------------------------------------------------
// Relational values, kept exact.
//
// JS numbers hold 53 bits and Dates hold milliseconds, so values that would lose
// precision travel as tagged text in a canonical form:
//   decimal      '-12345.678900'                     (as the database prints it)
//   date         '2024-02-29'
//   time         '13:45:00.123456'                  (optionally with '+02:00' for timetz)
//   timestamp    '2024-02-29T13:45:00.123456'       (no time zone: a wall-clock value)
//   timestamptz  '2024-02-29T13:45:00.123456Z'      (an instant, always in UTC)
//   json         '{"a": 1}'                          (the JSON text exactly as stored)
//   interval     'P1DT2H' or the database's own text form ('-838:59:59.000000' for MySQL TIME)
//   bits         '0101'                             (a bit string, most significant bit first)
// 64-bit integers are `bigint`, binary is `Uint8Array`.
// ---------------------------------------------------------------------------------------

export type TaggedValueType =
  | 'decimal'
  | 'date'
  | 'time'
  | 'timestamp'
  | 'timestamptz'
  | 'json'
  | 'interval'
  | 'bits'

export interface TaggedValue {
  readonly $type: TaggedValueType
  readonly value: string
}

export type SqlValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | TaggedValue
  | readonly SqlValue[]

export function tagged(type: TaggedValueType, value: string): TaggedValue {
  return { $type: type, value }
}

export function isTaggedValue(value: unknown): value is TaggedValue {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TaggedValue).$type === 'string' &&
    typeof (value as TaggedValue).value === 'string' &&
    !(value instanceof Uint8Array) &&
    !Array.isArray(value)
  )
}

/**
 * Convert a relational value to JSON for document stores: bigints that fit stay numbers,
 * larger ones become strings; decimals become strings (never a lossy float); JSON text is
 * parsed (as JavaScript holds it: see `sqlValueJson` and `DocumentData.rawJson` for its exact
 * text); binary becomes base64.
 */
export function sqlValueToJson(value: SqlValue): JsonValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value)
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString()
  }
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (Array.isArray(value)) return value.map((v) => sqlValueToJson(v as SqlValue))
  const taggedValue = value as TaggedValue
  if (taggedValue.$type === 'json') return JSON.parse(taggedValue.value) as JsonValue
  return taggedValue.value
}

// ---------------------------------------------------------------------------------------
// Exact JSON text.
//
// JSON text held by a source (a relational JSON column) may hold what a JavaScript value
// cannot: integers beyond 2^53, numbers beyond a double (1e400), digits a double rounds
// (0.10000000000000000001), a repeated key, a key order JavaScript reorders ("2" before "a").
// Such text travels verbatim next to the parsed value, and sinks that write text write it.
// ---------------------------------------------------------------------------------------

function holdsJsonText(value: SqlValue): boolean {
  if (Array.isArray(value)) return value.some((v) => holdsJsonText(v as SqlValue))
  return (
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Uint8Array) &&
    (value as TaggedValue).$type === 'json'
  )
}

/**
 * A relational value as JSON text: JSON text exactly as the source holds it (duplicate keys,
 * big numbers, spacing and all), any other value as `JSON.stringify(sqlValueToJson(value))`.
 */
export function sqlValueJson(value: SqlValue): string {
  if (Array.isArray(value)) return `[${value.map((v) => sqlValueJson(v as SqlValue)).join(',')}]`
  if (holdsJsonText(value)) return (value as TaggedValue).value
  return JSON.stringify(sqlValueToJson(value))
}

function setField(object: Record<string, unknown>, key: string, value: unknown): void {
  // A column named __proto__ is a field like any other, never the object's prototype.
  if (key === '__proto__')
    Object.defineProperty(object, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    })
  else object[key] = value
}

/**
 * A relational row as document content (`sqlValueToJson` per column, in column order) and, for
 * each column that holds JSON text, that column's exact JSON text (`sqlValueJson`) in `rawJson`.
 */
export function sqlValuesToDocument(values: Readonly<Record<string, SqlValue>>): {
  content: JsonObject
  rawJson?: Record<string, string>
} {
  const content: JsonObject = {}
  let rawJson: Record<string, string> | undefined
  for (const key in values) {
    const value = values[key]!
    setField(content, key, sqlValueToJson(value))
    if (holdsJsonText(value)) {
      rawJson ??= {}
      setField(rawJson, key, sqlValueJson(value))
    }
  }
  return rawJson ? { content, rawJson } : { content }
}

const LINE_BREAK = /[\r\n]/g

/** JSON text on one line: a line break in valid JSON is whitespace between tokens (a string cannot hold one). */
function oneLine(text: string): string {
  return text.includes('\n') || text.includes('\r') ? text.replace(LINE_BREAK, ' ') : text
}

/**
 * An object's JSON text with the fields that `rawJson` holds written as their exact text, in
 * the object's key order; every other field as `JSON.stringify(object, replacer)` writes it.
 * The text is always one line (for JSON Lines and `_bulk` bodies): a line break in raw text,
 * whitespace between tokens, becomes a space. Pass a document's content (or a copy with
 * fields added or left out) and its `rawJson`.
 */
export function documentJson(
  object: Readonly<Record<string, unknown>>,
  rawJson?: Readonly<Record<string, string>>,
  replacer?: (key: string, value: unknown) => unknown,
): string {
  if (!rawJson) return JSON.stringify(object, replacer)
  const parts: string[] = []
  for (const key of Object.keys(object)) {
    if (Object.hasOwn(rawJson, key)) {
      parts.push(`${JSON.stringify(key)}:${oneLine(rawJson[key]!)}`)
      continue
    }
    // The member as JSON.stringify writes it inside an object (toJSON, replacer, undefined left out).
    const member = JSON.stringify({ [key]: object[key] }, replacer)
    if (member.length > 2) parts.push(member.slice(1, -1))
  }
  return `{${parts.join(',')}}`
}

/** JSON text that repeats a key inside one object (`parseJsonExact` refuses it). */
export class JsonDuplicateKeyError extends SyntaxError {
  /** The repeated key, when the parser saw its two values differ; undefined for equal values. */
  readonly key: string | undefined
  constructor(key: string | undefined) {
    super(
      key === undefined
        ? 'an object repeats a key (with an equal value)'
        : `an object repeats the key ${JSON.stringify(key)}`,
    )
    this.name = 'JsonDuplicateKeyError'
    this.key = key
  }
}

/** Object members in JSON text: one ':' outside strings per member. */
function countMembers(text: string): number {
  let count = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \\ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 58 /* : */) count++
  }
  return count
}

function countParsedMembers(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0
  let count = 0
  if (Array.isArray(value)) {
    for (const v of value) count += countParsedMembers(v)
    return count
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return 0
  for (const key of Object.keys(value)) {
    count += 1 + countParsedMembers((value as Record<string, unknown>)[key])
  }
  return count
}

/**
 * Parse JSON text without loss (lossless-json): each number is handed to `parseNumber` as its
 * text, exactly as written (default: kept as that string), and an object that repeats a key
 * is refused with a `JsonDuplicateKeyError`, equal values included, never collapsed. Invalid
 * JSON is a `SyntaxError`. `parseNumber` must return a primitive or an object that is not a
 * plain object.
 */
export function parseJsonExact(
  text: string,
  parseNumber: (text: string) => unknown = (digits) => digits,
): unknown {
  const value = parseLosslessJson(text, null, {
    parseNumber,
    onDuplicateKey: ({ key }) => {
      throw new JsonDuplicateKeyError(key)
    },
  })
  // lossless-json keeps one copy of a key repeated with an equal value: count to catch it.
  if (text.includes(':') && countParsedMembers(value) !== countMembers(text))
    throw new JsonDuplicateKeyError(undefined)
  return value
}

// ---------------------------------------------------------------------------------------
// Byte sources: an object body is bytes or a stream of bytes, never required to be whole.
// A Node Readable is an AsyncIterable<Buffer>, so it is a ByteSource as it is.
// ---------------------------------------------------------------------------------------

export type ByteSource = Uint8Array | AsyncIterable<Uint8Array>

/**
 * The mark of a body that can be read again: each `[Symbol.asyncIterator]()` call reads the
 * same bytes from the start (an object store's GetObject pinned to the listed version), or
 * fails. A registered symbol, so that every copy of this package installed beside a provider
 * agrees on it. The runtime does not buffer such a body to send it again (a retry reads it
 * again, and so does a second sink of a large one), and a sink may stream it and read it a
 * second time when the store refuses its digest.
 */
export const REPLAYABLE_BODY: unique symbol = Symbol.for('nvisy.body.replayable')

/** A body marked `REPLAYABLE_BODY`: each iteration reads the same bytes from the start. */
export interface ReplayableBody extends AsyncIterable<Uint8Array> {
  readonly [REPLAYABLE_BODY]: true
}

/** Whether `body` is marked as replayable (see `REPLAYABLE_BODY`). */
export function isReplayableBody(body: ByteSource): body is ReplayableBody {
  return (
    !(body instanceof Uint8Array) &&
    (body as Partial<Record<typeof REPLAYABLE_BODY, unknown>>)[REPLAYABLE_BODY] === true
  )
}

export async function* iterateBytes(source: ByteSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source
    return
  }
  for await (const chunk of source) yield chunk
}

function tooLarge(maxBytes: number): RangeError {
  return new RangeError(
    `body is larger than ${maxBytes} bytes; stream it instead of reading it whole`,
  )
}

/** Read a whole body into memory, refusing bodies larger than `maxBytes`. For small objects and tests. */
export async function readBytes(source: ByteSource, maxBytes = 64 * 1024 * 1024): Promise<Buffer> {
  if (source instanceof Uint8Array) {
    if (source.byteLength > maxBytes) throw tooLarge(maxBytes)
    return Buffer.from(source.buffer, source.byteOffset, source.byteLength)
  }
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of source) {
    total += chunk.byteLength
    if (total > maxBytes) {
      throw tooLarge(maxBytes)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, total)
}

// ---------------------------------------------------------------------------------------
// The six data representations.
// ---------------------------------------------------------------------------------------

/** A file or object in a file store. */
export interface BlobData {
  kind: 'blob'
  key: string
  body: ByteSource
  size?: number | undefined
  contentType?: string | undefined
  metadata?: Record<string, string> | undefined
  lastModified?: Date | undefined
  /**
   * Where the source read this blob (bucket, key, version, entity tag, size), set by sources
   * whose provider defines `serverSideCopy`. A sink of the same provider copies the object
   * server-side from it, but only when a write's `serverSideCopy` says the runtime checked
   * that both ends are one account and place; never otherwise. Whoever changes `body`
   * deletes `origin`.
   */
  origin?: BlobOrigin | undefined
}

/** A relational row. `values` are keyed by column name. */
export interface RecordData {
  kind: 'record'
  values: Record<string, SqlValue>
  /**
   * Pass-through: many rows in the source system's own text, moved without decoding. Set
   * only by a source whose read was given `ReadOptions.wire` (the runtime asks only on an
   * edge whose sink accepted the format for these columns, `acceptWire`); `values` is then
   * empty and the item stands for `wire.rows` rows. Only a sink whose writes got
   * `WriteOptions.wire` receives such items.
   */
  wire?: WireRows | undefined
}

/**
 * Rows moved as a batch (`RecordData.wire`): in a system's own text (`bytes`), or decoded by
 * column (`values`, format `nvisy-columns`).
 */
export interface WireRows {
  /** The format, as both providers name it: `postgresql-copy-text`, `nvisy-columns`. */
  format: string
  /** The columns of every row, in field order. */
  columns: readonly string[]
  /** How many rows the item holds (at least one). */
  rows: number
  /** A text format's rows, whole, in the format's own encoding. */
  bytes?: Uint8Array | undefined
  /**
   * `nvisy-columns`: the values by column, `values[c][r]` the value of `columns[c]` in row
   * `r`, exactly as a row-by-row read gives them.
   */
  values?: SqlValue[][] | undefined
  /**
   * `nvisy-columns`: per column, the `$type` of a column held as text: each string `s` in
   * `values[c]` stands for the TaggedValue `tagged(tags[c], s)` (null stays null), so a batch
   * holds one string instead of an object per value while it waits in queues and batches.
   * Read values with `columnValues` (or `columnsRecord`), which give SqlValues back. A column
   * without a tag holds its SqlValues as they are.
   */
  tags?: readonly (TaggedValueType | undefined)[] | undefined
  /**
   * The item's size in bytes as its source measured it (the source text of its rows), when
   * known: what byte bounds on queues and batches count, instead of visiting every value.
   */
  size?: number | undefined
}

/**
 * Column `c` of an `nvisy-columns` batch as a function of the row: the SqlValue of row `r`
 * (a tagged column's text tagged again, see `WireRows.tags`).
 */
export function columnValues(wire: WireRows, c: number): (r: number) => SqlValue {
  const column = wire.values?.[c] ?? []
  const tag = wire.tags?.[c]
  if (tag === undefined) return (r) => column[r] ?? null
  return (r) => {
    const value = column[r]
    return typeof value === 'string' ? { $type: tag, value } : (value ?? null)
  }
}

/**
 * The batch format every record source and sink can speak: rows decoded into `SqlValue`s,
 * held by column, so a batch of rows costs a few arrays instead of objects per row. A sink
 * that accepts it encodes each value for its destination column as for a record.
 */
export const COLUMNS_WIRE = 'nvisy-columns'

/** How many rows a record item stands for: `wire.rows`, or 1. */
export function rowCount(data: Data): number {
  return data.kind === 'record' && data.wire ? data.wire.rows : 1
}

/** Row `row` of an `nvisy-columns` batch as a record (for a refused row, a dead letter). */
export function columnsRecord(wire: WireRows, row: number): RecordData {
  const values: Record<string, SqlValue> = {}
  wire.columns.forEach((name, c) => {
    Object.defineProperty(values, name, {
      value: columnValues(wire, c)(row),
      enumerable: true,
      writable: true,
      configurable: true,
    })
  })
  return { kind: 'record', values }
}

/** A vector embedding. */
export interface EmbeddingData {
  kind: 'embedding'
  id: string
  values: Float32Array | number[]
  sparse?: { indices: number[]; values: number[] } | undefined
  metadata?: JsonObject | undefined
}

/** A JSON document. */
export interface DocumentData {
  kind: 'document'
  id: string
  content: JsonObject
  /**
   * The exact JSON text of some top-level fields of `content`, by field name: text a source
   * held that a JavaScript value may not hold exactly (a relational JSON column: integers
   * beyond 2^53, 1e400, a repeated key, key order). `content[field]` still holds the parsed
   * value, so a sink that reads only `content` works as before; a sink that writes JSON text
   * writes these fields verbatim (`documentJson`), and a sink that stores typed values parses
   * them exactly (`parseJsonExact`) or refuses the document. Whoever changes `content[field]`
   * deletes `rawJson[field]`. Fields not in `content` are ignored.
   */
  rawJson?: Readonly<Record<string, string>> | undefined
  /**
   * The document's serialized size in bytes, when the source knows it without work (a JSONL
   * line's length, a stored value's length). Progress and batching by bytes use it instead of
   * serializing the content again; leave it out when unknown.
   */
  size?: number | undefined
}

/** A queue or stream message. `id` is the dedupe id a sink uses for idempotency. */
export interface MessageData {
  kind: 'message'
  id: string
  subject?: string | undefined
  payload: Uint8Array
  headers?: Record<string, string> | undefined
  timestamp?: Date | undefined
}

/** Graph property values keep int64 as bigint and temporal values as tagged text. */
export type GraphValue = SqlValue

export interface GraphNode {
  /** The node's key: the value of its key property, used to MERGE. */
  id: string
  labels: string[]
  properties: Record<string, GraphValue>
}

export interface GraphEdge {
  id: string
  type: string
  /** The `id` of the start node. */
  from: string
  /** The `id` of the end node. */
  to: string
  properties: Record<string, GraphValue>
}

/** A graph fragment: nodes and the edges between them. */
export interface GraphData {
  kind: 'graph'
  nodes: GraphNode[]
  edges: GraphEdge[]
}

export type Data = BlobData | RecordData | EmbeddingData | DocumentData | MessageData | GraphData
export type DataKind = Data['kind']
export type DataOf<K extends DataKind> = Extract<Data, { kind: K }>

export const DATA_KINDS: readonly DataKind[] = [
  'blob',
  'record',
  'embedding',
  'document',
  'message',
  'graph',
]

export const DataKindSchema = Type.Union(DATA_KINDS.map((kind) => Type.Literal(kind)))

/** JSON-safe schemas for the representations that cross a boundary as JSON. */
export const DocumentDataSchema = Type.Object(
  {
    kind: Type.Literal('document'),
    id: Type.String({ minLength: 1 }),
    content: JsonObjectSchema,
    rawJson: Type.Optional(Type.Record(Type.String(), Type.String())),
    size: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)

export const EmbeddingDataSchema = Type.Object(
  {
    kind: Type.Literal('embedding'),
    id: Type.String({ minLength: 1 }),
    values: Type.Array(Type.Number()),
    sparse: Type.Optional(
      Type.Object({
        indices: Type.Array(Type.Integer({ minimum: 0 })),
        values: Type.Array(Type.Number()),
      }),
    ),
    metadata: Type.Optional(JsonObjectSchema),
  },
  { additionalProperties: false },
)

export const GraphDataSchema = Type.Object({
  kind: Type.Literal('graph'),
  nodes: Type.Array(
    Type.Object({
      id: Type.String({ minLength: 1 }),
      labels: Type.Array(Type.String({ minLength: 1 })),
      properties: Type.Record(Type.String(), Type.Unknown()),
    }),
  ),
  edges: Type.Array(
    Type.Object({
      id: Type.String({ minLength: 1 }),
      type: Type.String({ minLength: 1 }),
      from: Type.String({ minLength: 1 }),
      to: Type.String({ minLength: 1 }),
      properties: Type.Record(Type.String(), Type.Unknown()),
    }),
  ),
})

/** A message as JSON: the payload base64-encoded. */
export const MessageJsonSchema = Type.Object({
  kind: Type.Literal('message'),
  id: Type.String({ minLength: 1 }),
  subject: Type.Optional(Type.String()),
  payloadBase64: Type.String({ contentEncoding: 'base64' }),
  headers: Type.Optional(Type.Record(Type.String(), Type.String())),
  timestamp: Type.Optional(Type.String({ format: 'date-time' })),
})
export type MessageJson = Static<typeof MessageJsonSchema>

/** A short description of an item for error reports: its key or id, never its body. */
export function describeItem(data: Data): string {
  switch (data.kind) {
    case 'blob':
      return `blob ${JSON.stringify(data.key)}`
    case 'record':
      return data.wire ? `${data.wire.rows} rows (${data.wire.format})` : 'record'
    case 'embedding':
    case 'document':
    case 'message':
      return `${data.kind} ${JSON.stringify(data.id)}`
    case 'graph':
      return `graph (${data.nodes.length} nodes, ${data.edges.length} edges)`
  }
}

/** A rough size in bytes, for batching by bytes. Streamed blobs count their declared size. */
export function approximateSize(data: Data): number {
  switch (data.kind) {
    case 'blob':
      return data.body instanceof Uint8Array ? data.body.byteLength : (data.size ?? 0)
    case 'record': {
      if (data.wire) return wireSize(data.wire)
      let total = 0
      for (const key in data.values) total += key.length + approximateValueSize(data.values[key]!)
      return total
    }
    case 'embedding':
      return (
        data.id.length +
        data.values.length * 4 +
        (data.metadata ? JSON.stringify(data.metadata).length : 0)
      )
    case 'document':
      return data.id.length + (data.size ?? JSON.stringify(data.content).length)
    case 'message': {
      let total = data.id.length + data.payload.byteLength
      if (data.headers)
        for (const name in data.headers) total += name.length + data.headers[name]!.length + 4
      return total
    }
    case 'graph':
      return JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)).length
  }
}

function wireSize(wire: WireRows): number {
  if (wire.bytes) return wire.bytes.byteLength
  if (wire.size !== undefined) return wire.size
  let total = 0
  wire.columns.forEach((name, c) => {
    const column = wire.values?.[c] ?? []
    total += name.length * column.length
    for (let r = 0; r < column.length; r++) total += approximateValueSize(column[r]!)
  })
  return total
}

function approximateValueSize(value: SqlValue): number {
  if (value === null) return 4
  switch (typeof value) {
    case 'string':
      return value.length
    case 'number':
    case 'bigint':
      return 8
    case 'boolean':
      return 1
  }
  if (value instanceof Uint8Array) return value.byteLength
  if (Array.isArray(value)) {
    let total = 0
    for (const v of value) total += approximateValueSize(v as SqlValue)
    return total
  }
  return (value as TaggedValue).value.length
}

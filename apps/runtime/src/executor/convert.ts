import { createHash } from 'node:crypto'
import type { ConvertOptions, DeclaredColumn, EmbeddingOptions } from '@nvisy/protocol'
import {
  type BlobData,
  type ColumnType,
  canonicalJson,
  type Data,
  type DataKind,
  type DocumentData,
  documentJson,
  type EmbeddingData,
  exactNumberFields,
  isTaggedValue,
  iterateBytes,
  type JsonObject,
  type JsonValue,
  type MessageData,
  ProviderError,
  type RecordData,
  type SqlValue,
  type StreamSchema,
  sqlValuesToDocument,
  sqlValueToJson,
  tagged,
} from '@nvisy/provider-core'

export type ConvertFormat = 'jsonl' | 'csv'

/** A sink node's `convert` setting: a blob format, or the conversion options. */
export type ConvertSetting = ConvertFormat | ConvertOptions

/** What an edge's conversion knows besides the sink's setting. */
export interface ConvertContext {
  /** The source node's id (message header `nvisy-source-node`). */
  sourceNodeId?: string | undefined
  /** The source stream's primary key (from `describeStream`): record -> message ids. */
  primaryKey?: readonly string[] | undefined
}

export function convertFormat(setting: ConvertSetting | undefined): ConvertFormat | undefined {
  return typeof setting === 'string' ? setting : setting?.format
}

export function convertOptions(setting: ConvertSetting | undefined): ConvertOptions | undefined {
  return typeof setting === 'object' ? setting : undefined
}

const encoder = new TextEncoder()

/** An item a conversion could not produce: reported as an item failure of the sink. */
export interface ConversionFailure {
  failed: true
  item: string
  error: ProviderError
}

export type Converted = Data | ConversionFailure

/**
 * An edge's conversion: most produce exactly one item per source item and run as a plain
 * function (no promise or generator per item); parsing a blob into rows yields any number.
 */
export type Converter =
  | { many: false; convert: (item: Data, context: unknown) => Converted }
  | { many: true; convert: (item: Data, context: unknown) => AsyncIterable<Converted> }

export function isConversionFailure(value: Converted): value is ConversionFailure {
  return (value as ConversionFailure).failed === true
}

/** The built-in conversions, from the source's kind to the sink's kind. */
const CONVERSIONS: Record<string, true> = {
  'record>document': true,
  'record>blob': true,
  'document>blob': true,
  'blob>document': true,
  'blob>record': true,
  'document>message': true,
  'record>message': true,
  'message>document': true,
  /** Needs the sink's declared columns (`convert.columns`). */
  'document>record': true,
  /** Needs the sink's id and vector columns (`convert.embedding`). */
  'record>embedding': true,
}

export function conversionAllowed(from: DataKind, to: DataKind): boolean {
  return from === to || CONVERSIONS[`${from}>${to}`] === true
}

export function listConversions(): { from: DataKind; to: DataKind }[] {
  return Object.keys(CONVERSIONS).map((key) => {
    const [from, to] = key.split('>') as [DataKind, DataKind]
    return { from, to }
  })
}

/**
 * The converter for an edge, or undefined when the kinds cannot meet (document -> record
 * without declared columns and record -> embedding without `convert.embedding` included).
 */
export function converterFor(
  from: DataKind,
  to: DataKind,
  setting?: ConvertSetting,
  context: ConvertContext = {},
): Converter | undefined {
  if (from === to) return IDENTITY
  const format = convertFormat(setting)
  const options = convertOptions(setting)
  switch (`${from}>${to}`) {
    case 'record>document':
      return single((item, ctx) => recordToDocument(item as RecordData, ctx))
    case 'record>blob':
      return single((item, ctx) => recordToBlob(item as RecordData, ctx, format ?? 'jsonl'))
    case 'document>blob':
      return single((item) => toBlob(item as DocumentData, format ?? 'jsonl'))
    case 'blob>document':
      return { many: true, convert: (item) => parseBlob(item as BlobData, 'document', format) }
    case 'blob>record':
      return { many: true, convert: (item) => parseBlob(item as BlobData, 'record', format) }
    case 'document>message': {
      const headers = messageHeaders(context.sourceNodeId)
      return single((item) => documentToMessage(item as DocumentData, headers))
    }
    case 'record>message': {
      const headers = messageHeaders(context.sourceNodeId)
      const key = options?.key ?? (context.primaryKey?.length ? context.primaryKey : undefined)
      return single((item) => recordToMessage(item as RecordData, key, headers))
    }
    case 'message>document':
      return single((item) => messageToDocument(item as MessageData))
    case 'document>record': {
      const columns = options?.columns
      if (!columns) return undefined
      return single((item) => documentToRecord(item as DocumentData, columns))
    }
    case 'record>embedding': {
      const embedding = options?.embedding
      if (!embedding) return undefined
      return single((item) => recordToEmbedding(item as RecordData, embedding))
    }
    default:
      return undefined
  }
}

/** The conversion of an edge between two nodes of one kind: none. */
export const IDENTITY: Converter = { many: false, convert: (item) => item }

function single(fn: (item: Data, context: unknown) => Data): Converter {
  return {
    many: false,
    convert: (item, context) => {
      try {
        return fn(item, context)
      } catch (error) {
        return failure(itemLabel(item), error)
      }
    },
  }
}

function itemLabel(item: Data): string {
  switch (item.kind) {
    case 'blob':
      return `blob ${JSON.stringify(item.key)}`
    case 'document':
    case 'message':
      return `${item.kind} ${JSON.stringify(item.id)}`
    default:
      return item.kind
  }
}

/** Every item a conversion makes of `item`, one or many, as one stream (for rare paths such as dead letters). */
export async function* convertAll(
  converter: Converter,
  item: Data,
  context: unknown,
): AsyncGenerator<Converted> {
  if (converter.many) yield* converter.convert(item, context)
  else yield converter.convert(item, context)
}

function failure(item: string, error: unknown): ConversionFailure {
  const message = error instanceof Error ? error.message : String(error)
  return {
    failed: true,
    item,
    error: ProviderError.isInstance(error)
      ? error
      : new ProviderError({
          kind: 'data',
          operation: 'convert',
          message: `cannot convert ${item}: ${message}`,
        }),
  }
}

/** A stable text form of a JSON value (keys sorted), for ids made from a resume context. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'bigint' ? value.toString() : (JSON.stringify(value) ?? 'null')
  }
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`
}

function idOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value === 'bigint') return value.toString()
  return undefined
}

/**
 * A row as a document: the `id` column when there is one, else the row's resume context
 * (its ordering key, unique and stable), so replaying the row yields the same document id.
 * A JSON column's exact text travels in `rawJson` (`sqlValuesToDocument`), next to its parsed
 * value in `content`.
 */
export function recordToDocument(record: RecordData, context: unknown): DocumentData {
  const { content, rawJson } = sqlValuesToDocument(record.values)
  const id = idOf(record.values.id) ?? stableJson(context)
  return rawJson ? { kind: 'document', id, content, rawJson } : { kind: 'document', id, content }
}

const CSV_SPECIAL = /[",\r\n]/

function csvField(value: JsonValue): string {
  return csvText(value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value))
}

function csvText(text: string): string {
  return CSV_SPECIAL.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

function safeFileName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

/**
 * A document as one blob keyed by its id: one JSON line, or a CSV header and row. One blob
 * per item keeps writes idempotent: a replayed item rewrites the same key. Fields with exact
 * JSON text (`rawJson`) are written as that text.
 */
export function toBlob(document: DocumentData, format: ConvertFormat): BlobData {
  const key = `${safeFileName(document.id)}.${format}`
  let text: string
  if (format === 'jsonl') {
    text = `${documentJson(document.content, document.rawJson)}\n`
  } else {
    const { content, rawJson } = document
    const keys = Object.keys(content)
    const cell = (k: string) => {
      const value = content[k]!
      const raw = typeof value === 'string' || !rawJson ? undefined : rawJson[k]
      return raw === undefined ? csvField(value) : csvText(raw)
    }
    text = `${keys.map((k) => csvField(k)).join(',')}\n${keys.map(cell).join(',')}\n`
  }
  const body = encoder.encode(text)
  return {
    kind: 'blob',
    key,
    body,
    size: body.byteLength,
    contentType: format === 'jsonl' ? 'application/x-ndjson' : 'text/csv',
  }
}

/**
 * The headers of every message a conversion makes on one edge (shared: sinks read headers,
 * never change them): `content-type: application/json` and `nvisy-source-node`.
 */
export function messageHeaders(sourceNodeId: string | undefined): Record<string, string> {
  return Object.freeze({
    'content-type': 'application/json',
    ...(sourceNodeId ? { 'nvisy-source-node': sourceNodeId } : {}),
  }) as Record<string, string>
}

const JSON_HEADERS = messageHeaders(undefined)

export function documentToMessage(
  document: DocumentData,
  headers: Record<string, string> = JSON_HEADERS,
): MessageData {
  return {
    kind: 'message',
    id: document.id,
    payload: encoder.encode(documentJson(document.content, document.rawJson)),
    headers,
  }
}

function keyText(column: string, value: SqlValue | undefined): string {
  if (value === undefined || value === null)
    throw new ProviderError({
      kind: 'data',
      operation: 'convert',
      message: `record has no value in key column ${JSON.stringify(column)} (rule: message id from the key columns)`,
    })
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex')
  if (Array.isArray(value)) return canonicalJson(sqlValueToJson(value))
  return (value as { value: string }).value
}

/**
 * A row as a JSON message. The id is the row's key: the key column's value, or with several
 * key columns each value URI-encoded and joined with '/'; a row without key columns gets
 * `sha256:` and the hex SHA-256 of its canonical JSON (equal rows share an id). Replaying a
 * row yields the same id, so a sink that dedupes by id keeps one copy.
 */
export function recordToMessage(
  record: RecordData,
  key: readonly string[] | undefined,
  headers: Record<string, string> = JSON_HEADERS,
): MessageData {
  const { content, rawJson } = sqlValuesToDocument(record.values)
  let id: string
  if (key && key.length > 0) {
    id =
      key.length === 1
        ? keyText(key[0]!, record.values[key[0]!])
        : key.map((column) => encodeURIComponent(keyText(column, record.values[column]))).join('/')
  } else {
    id = `sha256:${createHash('sha256').update(canonicalJson(content)).digest('hex')}`
  }
  return {
    kind: 'message',
    id,
    payload: encoder.encode(documentJson(content, rawJson)),
    headers,
  }
}

/**
 * A row as one JSON object text, in column order. A JSON column's text is embedded as the
 * source holds it, never parsed and re-serialized, so values JavaScript cannot hold (integers
 * beyond 2^53, 1e400, duplicate keys) arrive unchanged.
 */
export function recordJson(record: RecordData): string {
  const { content, rawJson } = sqlValuesToDocument(record.values)
  return documentJson(content, rawJson)
}

function recordToBlob(record: RecordData, context: unknown, format: ConvertFormat): BlobData {
  return toBlob(recordToDocument(record, context), format)
}

/** The StreamSchema a sink's declared columns describe (document -> record), for `prepare`. */
export function declaredSchema(options: ConvertOptions | undefined): StreamSchema | undefined {
  if (!options?.columns) return undefined
  return {
    system: 'declared',
    columns: options.columns.map((column) => ({
      name: column.name,
      nativeType: nativeTypeOf(column.type as ColumnType),
      type: column.type as ColumnType,
      nullable: column.nullable !== false,
    })),
    primaryKey: [...(options.key ?? [])],
  }
}

function nativeTypeOf(type: ColumnType): string {
  const { type: name, ...rest } = type as { type: string } & Record<string, unknown>
  return Object.keys(rest).length === 0 ? name : `${name}${canonicalJson(rest)}`
}

const INTEGER = /^[+-]?\d+$/
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** One declared column's value from a document field, typed for the column. */
function columnValue(
  column: DeclaredColumn,
  type: ColumnType,
  raw: unknown,
  where: string,
): SqlValue {
  const refuse = (rule: string): never => {
    const shown =
      raw === null
        ? 'null'
        : Array.isArray(raw)
          ? 'an array'
          : typeof raw === 'object'
            ? 'an object'
            : typeof raw
    throw new ProviderError({
      kind: 'data',
      operation: 'convert',
      message: `${where}: column ${JSON.stringify(column.name)} (${type.type}) ${rule}, got ${shown}`,
    })
  }
  switch (type.type) {
    case 'boolean':
      if (typeof raw === 'boolean') return raw
      return refuse('takes true or false')
    case 'integer': {
      let big: bigint
      if (typeof raw === 'number' && Number.isInteger(raw)) big = BigInt(raw)
      else if (typeof raw === 'string' && INTEGER.test(raw)) big = BigInt(raw)
      else return refuse('takes an integer (a JSON number or a string of digits)')
      const bits = BigInt(type.bits)
      const min = type.unsigned ? 0n : -(1n << (bits - 1n))
      const max = type.unsigned ? (1n << bits) - 1n : (1n << (bits - 1n)) - 1n
      if (big < min || big > max) return refuse(`takes ${min}..${max}`)
      return type.bits === 64 || (type.bits === 32 && type.unsigned) ? big : Number(big)
    }
    case 'year':
      if (typeof raw === 'number' && Number.isInteger(raw)) return raw
      if (typeof raw === 'string' && INTEGER.test(raw)) return Number(raw)
      return refuse('takes a year number')
    case 'decimal':
      if (typeof raw === 'number' && Number.isFinite(raw)) return tagged('decimal', String(raw))
      if (typeof raw === 'string' && DECIMAL.test(raw)) return tagged('decimal', raw)
      return refuse('takes a decimal number or its text')
    case 'float':
      if (typeof raw === 'number') return raw
      if (typeof raw === 'string' && DECIMAL.test(raw)) return Number(raw)
      return refuse('takes a number')
    case 'bits':
      if (typeof raw === 'string' && /^[01]*$/.test(raw)) return tagged('bits', raw)
      return refuse("takes a bit string such as '0101'")
    case 'text':
    case 'uuid':
      if (typeof raw === 'string') return raw
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw)
      return refuse('takes a string')
    case 'enum':
      if (typeof raw === 'string' && type.values.includes(raw)) return raw
      return refuse(`takes one of ${type.values.map((v) => JSON.stringify(v)).join(', ')}`)
    case 'set': {
      const members = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : null
      if (!members || !members.every((m) => typeof m === 'string' && type.values.includes(m)))
        return refuse('takes an array (or comma list) of its values')
      return members.join(',')
    }
    case 'binary':
      if (typeof raw === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(raw))
        return new Uint8Array(Buffer.from(raw, 'base64'))
      return refuse('takes base64 text')
    case 'date':
      if (typeof raw === 'string' && /^\d{4,}-\d{2}-\d{2}$/.test(raw)) return tagged('date', raw)
      return refuse('takes a date YYYY-MM-DD')
    case 'time':
      if (typeof raw === 'string' && /^\d{2}:\d{2}(:\d{2}(\.\d+)?)?/.test(raw))
        return tagged('time', raw)
      return refuse('takes a time HH:MM:SS[.ffffff]')
    case 'duration':
      if (typeof raw === 'string' && raw.length > 0) return tagged('interval', raw)
      return refuse('takes an interval text')
    case 'timestamp':
      if (typeof raw === 'string' && !Number.isNaN(Date.parse(raw)))
        return tagged(type.withTimeZone ? 'timestamptz' : 'timestamp', raw)
      return refuse('takes an ISO 8601 timestamp')
    case 'json':
      return tagged('json', JSON.stringify(raw))
    case 'array': {
      if (!Array.isArray(raw)) return refuse('takes an array')
      return raw.map((element) =>
        element === null ? null : columnValue(column, type.of, element, where),
      )
    }
    case 'other':
      return refuse('has no declarable type')
  }
}

/**
 * A document as a row of the sink's declared columns, in declaration order: each value from
 * the document field of the column's name (or its `field`; `$id` is the document id), typed
 * for the column. A missing field is null; null in a column declared `nullable: false`, or a
 * value that does not fit the column's type, refuses the document (a `data` failure naming
 * the column and the rule). Fields that no column declares are not written.
 */
export function documentToRecord(
  document: DocumentData,
  columns: readonly DeclaredColumn[],
): RecordData {
  const where = `document ${JSON.stringify(document.id)}`
  const values: Record<string, SqlValue> = {}
  for (const column of columns) {
    const field = column.field ?? column.name
    const raw = field === '$id' ? document.id : document.content[field]
    if (raw === undefined || raw === null) {
      if (column.nullable === false)
        throw new ProviderError({
          kind: 'data',
          operation: 'convert',
          message: `${where}: column ${JSON.stringify(column.name)} is declared nullable: false and field ${JSON.stringify(field)} is ${raw === null ? 'null' : 'missing'}`,
        })
      values[column.name] = null
      continue
    }
    values[column.name] = columnValue(column, column.type as ColumnType, raw, where)
  }
  return { kind: 'record', values }
}

function refuseEmbedding(message: string): never {
  throw new ProviderError({ kind: 'data', operation: 'convert', message })
}

/** What a value is, for a refusal (never the value itself). */
function shownKind(value: unknown): string {
  if (value === null) return 'null'
  if (value instanceof Uint8Array) return 'binary'
  if (Array.isArray(value)) return 'an array'
  if (isTaggedValue(value)) return `${value.$type} text`
  return typeof value === 'object' ? 'an object' : typeof value
}

const INTEGER_TEXT = /^-?\d+$/

/** The embedding id from the id column: text, or an integer as its digits. */
function embeddingId(record: RecordData, column: string): string {
  const raw = record.values[column]
  const refuse = (rule: string): never =>
    refuseEmbedding(
      `record: id column ${JSON.stringify(column)} (convert.embedding.id) ${rule}, got ${raw === undefined ? 'no such column' : shownKind(raw)}`,
    )
  if (typeof raw === 'string') return raw.length > 0 ? raw : refuse('takes a non-empty text')
  if (typeof raw === 'number' && Number.isSafeInteger(raw)) return String(raw)
  if (typeof raw === 'bigint') return raw.toString()
  if (isTaggedValue(raw) && raw.$type === 'decimal' && INTEGER_TEXT.test(raw.value))
    return raw.value
  return refuse('takes text or an integer')
}

/** One vector element as a finite number. */
function vectorElement(value: unknown): number | undefined {
  if (typeof value === 'number') return value
  if (typeof value === 'bigint') return Number(value)
  if (isTaggedValue(value) && value.$type === 'decimal' && DECIMAL.test(value.value))
    return Number(value.value)
  return undefined
}

/**
 * The dense vector of the vector column: a number array (real[], float8[], numeric[]), a JSON
 * column holding one, or vector text such as pgvector's '[1,2,3]'. Every element must be a
 * finite number, and there must be `dimension` of them when it is declared.
 */
function embeddingVector(record: RecordData, options: EmbeddingOptions, where: string): number[] {
  const column = options.vector
  const raw = record.values[column]
  const name = `vector column ${JSON.stringify(column)} (convert.embedding.vector)`
  let elements: readonly unknown[]
  if (Array.isArray(raw)) {
    elements = raw
  } else if (typeof raw === 'string' || (isTaggedValue(raw) && raw.$type === 'json')) {
    const text = (typeof raw === 'string' ? raw : raw.value).trim()
    let parsed: unknown
    try {
      parsed = text.startsWith('[') ? JSON.parse(text) : undefined
    } catch {
      parsed = undefined
    }
    if (!Array.isArray(parsed))
      return refuseEmbedding(
        `${where}: ${name} takes a number array or vector text such as '[0.1,0.2,0.3]', got text that is not one`,
      )
    elements = parsed
  } else {
    return refuseEmbedding(
      `${where}: ${name} takes a number array or vector text such as '[0.1,0.2,0.3]', got ${raw === undefined ? 'no such column' : shownKind(raw)}`,
    )
  }
  if (elements.length === 0) return refuseEmbedding(`${where}: ${name} is an empty vector`)
  if (options.dimension !== undefined && elements.length !== options.dimension)
    return refuseEmbedding(
      `${where}: ${name} has ${elements.length} values, convert.embedding.dimension is ${options.dimension}`,
    )
  const values = new Array<number>(elements.length)
  for (let i = 0; i < elements.length; i++) {
    const value = vectorElement(elements[i])
    if (value === undefined)
      return refuseEmbedding(
        `${where}: ${name} element ${i} is ${shownKind(elements[i])}: a vector takes numbers only`,
      )
    if (!Number.isFinite(value))
      return refuseEmbedding(
        `${where}: ${name} element ${i} is ${Number.isNaN(value) ? 'NaN' : 'infinite'}: a vector takes finite numbers only`,
      )
    values[i] = value
  }
  return values
}

/**
 * A row as an embedding (record -> embedding), by the sink's `convert.embedding`: the id from
 * the `id` column (text, or an integer as its digits), the dense vector from the `vector`
 * column, and as metadata the `metadata` columns (default: every other column) in JSON form
 * (`sqlValueToJson`), null values left out. A missing or empty id, a vector that is not a
 * non-empty list of finite numbers, or one of another length than `dimension` refuses the row
 * (a `data` failure naming the column and the rule).
 */
export function recordToEmbedding(record: RecordData, options: EmbeddingOptions): EmbeddingData {
  const id = embeddingId(record, options.id)
  const where = `record ${JSON.stringify(id)}`
  const values = embeddingVector(record, options, where)
  const names =
    options.metadata ??
    Object.keys(record.values).filter((name) => name !== options.id && name !== options.vector)
  const metadata: JsonObject = {}
  let any = false
  for (const name of names) {
    const value = record.values[name]
    if (value === undefined)
      return refuseEmbedding(
        `${where}: metadata column ${JSON.stringify(name)} (convert.embedding.metadata) is not a column of the record`,
      )
    if (value === null) continue
    metadata[name] = sqlValueToJson(value)
    any = true
  }
  return any ? { kind: 'embedding', id, values, metadata } : { kind: 'embedding', id, values }
}

export function messageToDocument(message: MessageData): DocumentData {
  let content: unknown
  let rawJson: Record<string, string> | undefined
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(message.payload)
    content = JSON.parse(text)
    // Numbers JSON.parse does not hold exactly keep their text (a quick scan finds them).
    rawJson = exactNumberFields(text)
  } catch (error) {
    throw new ProviderError({
      kind: 'data',
      operation: 'convert',
      message: `message ${JSON.stringify(message.id)} has no JSON payload: ${(error as Error).message}`,
    })
  }
  if (content === null || typeof content !== 'object' || Array.isArray(content)) {
    throw new ProviderError({
      kind: 'data',
      operation: 'convert',
      message: `message ${JSON.stringify(message.id)} payload is not a JSON object`,
    })
  }
  return rawJson
    ? { kind: 'document', id: message.id, content: content as JsonObject, rawJson }
    : { kind: 'document', id: message.id, content: content as JsonObject }
}

function jsonToSql(value: unknown): SqlValue {
  if (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    typeof value === 'number'
  )
    return value
  return tagged('json', JSON.stringify(value))
}

function formatOf(blob: BlobData, format: ConvertFormat | undefined): ConvertFormat {
  if (format) return format
  return /\.csv$/i.test(blob.key) ? 'csv' : 'jsonl'
}

/** Parse a JSONL or CSV blob into documents or records, streaming its body. */
async function* parseBlob(
  blob: BlobData,
  to: 'document' | 'record',
  format?: ConvertFormat,
): AsyncGenerator<Converted> {
  const rows = formatOf(blob, format) === 'csv' ? csvRows(blob) : jsonlRows(blob)
  for await (const row of rows) {
    const where = `blob ${JSON.stringify(blob.key)} line ${row.line}`
    if ('error' in row) {
      yield failure(
        where,
        new ProviderError({
          kind: 'data',
          operation: 'convert',
          message: `${where}: ${row.error}`,
        }),
      )
      continue
    }
    const object = row.value
    const rawJson = row.rawJson
    if (to === 'document') {
      // A number id JSON.parse would change is read as written.
      const rawId = rawJson && Object.hasOwn(rawJson, 'id') ? rawJson.id : undefined
      yield {
        kind: 'document',
        id: rawId ?? idOf(object.id) ?? `${blob.key}:${row.line}`,
        content: object as JsonObject,
        ...(rawJson ? { rawJson } : {}),
      }
    } else {
      const values: Record<string, SqlValue> = {}
      for (const [key, value] of Object.entries(object)) {
        const raw = rawJson && Object.hasOwn(rawJson, key) ? rawJson[key] : undefined
        // A number past a double's precision is a decimal as written; an object or array
        // holding one is JSON text with the number as written.
        values[key] =
          raw === undefined
            ? jsonToSql(value)
            : typeof value === 'number'
              ? tagged('decimal', raw)
              : tagged('json', raw)
      }
      yield { kind: 'record', values }
    }
  }
}

type Row =
  | { line: number; value: Record<string, unknown>; rawJson?: Record<string, string> | undefined }
  | { line: number; error: string }

async function* textLines(blob: BlobData): AsyncGenerator<{ line: number; text: string }> {
  const decoder = new TextDecoder('utf-8')
  let rest = ''
  let line = 0
  for await (const chunk of iterateBytes(blob.body)) {
    rest += decoder.decode(chunk, { stream: true })
    let at = rest.indexOf('\n')
    while (at >= 0) {
      line++
      yield { line, text: rest.slice(0, at).replace(/\r$/, '') }
      rest = rest.slice(at + 1)
      at = rest.indexOf('\n')
    }
  }
  rest += decoder.decode()
  if (rest.length > 0) yield { line: line + 1, text: rest.replace(/\r$/, '') }
}

async function* jsonlRows(blob: BlobData): AsyncGenerator<Row> {
  for await (const { line, text } of textLines(blob)) {
    if (text.trim() === '') continue
    try {
      const value = JSON.parse(text)
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        yield { line, error: 'is not a JSON object' }
      } else {
        // Numbers JSON.parse does not hold exactly keep their text (a quick scan finds them).
        yield { line, value, rawJson: exactNumberFields(text) }
      }
    } catch (error) {
      yield { line, error: `invalid JSON: ${(error as Error).message}` }
    }
  }
}

/** RFC 4180 CSV: the first row is the header; quoted fields may hold commas, quotes and newlines. */
async function* csvRows(blob: BlobData): AsyncGenerator<Row> {
  const decoder = new TextDecoder('utf-8')
  let header: string[] | undefined
  let field = ''
  let record: string[] = []
  let quoted = false
  let afterQuote = false
  let line = 1
  let recordLine = 1
  const finish = function* (): Generator<Row> {
    record.push(field)
    field = ''
    const fields = record
    record = []
    if (fields.length === 1 && fields[0] === '') return
    if (!header) {
      header = fields
      return
    }
    if (fields.length !== header.length) {
      yield {
        line: recordLine,
        error: `has ${fields.length} fields, the header has ${header.length}`,
      }
      return
    }
    const value: Record<string, unknown> = {}
    header.forEach((name, i) => {
      value[name] = fields[i]
    })
    yield { line: recordLine, value }
  }
  const consume = function* (text: string): Generator<Row> {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!
      if (quoted) {
        if (c === '"') {
          quoted = false
          afterQuote = true
        } else {
          if (c === '\n') line++
          field += c
        }
        continue
      }
      if (c === '"') {
        if (afterQuote) field += '"'
        quoted = true
        afterQuote = false
        continue
      }
      afterQuote = false
      if (c === ',') {
        record.push(field)
        field = ''
      } else if (c === '\n') {
        yield* finish()
        line++
        recordLine = line
      } else if (c !== '\r') {
        field += c
      }
    }
  }
  for await (const chunk of iterateBytes(blob.body))
    yield* consume(decoder.decode(chunk, { stream: true }))
  yield* consume(decoder.decode())
  if (field !== '' || record.length > 0) yield* finish()
}

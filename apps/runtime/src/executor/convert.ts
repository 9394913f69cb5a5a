import {
  type BlobData,
  type Data,
  type DataKind,
  type DocumentData,
  iterateBytes,
  type JsonObject,
  type JsonValue,
  type MessageData,
  ProviderError,
  type RecordData,
  type SqlValue,
  sqlValueToJson,
  tagged,
} from '@nvisy/provider-core'

export type ConvertFormat = 'jsonl' | 'csv'

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
  'message>document': true,
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

/** The converter for an edge, or undefined when the kinds cannot meet. */
export function converterFor(
  from: DataKind,
  to: DataKind,
  format?: ConvertFormat,
): Converter | undefined {
  if (from === to) return IDENTITY
  switch (`${from}>${to}`) {
    case 'record>document':
      return single((item, context) => recordToDocument(item as RecordData, context))
    case 'record>blob':
      return single((item, context) =>
        toBlob(recordToDocument(item as RecordData, context), format ?? 'jsonl'),
      )
    case 'document>blob':
      return single((item) => toBlob(item as DocumentData, format ?? 'jsonl'))
    case 'blob>document':
      return { many: true, convert: (item) => parseBlob(item as BlobData, 'document', format) }
    case 'blob>record':
      return { many: true, convert: (item) => parseBlob(item as BlobData, 'record', format) }
    case 'document>message':
      return single((item) => documentToMessage(item as DocumentData))
    case 'message>document':
      return single((item) => messageToDocument(item as MessageData))
    default:
      return undefined
  }
}

const IDENTITY: Converter = { many: false, convert: (item) => item }

function single(fn: (item: Data, context: unknown) => Data): Converter {
  return {
    many: false,
    convert: (item, context) => {
      try {
        return fn(item, context)
      } catch (error) {
        return failure(item.kind === 'blob' ? `blob ${JSON.stringify(item.key)}` : item.kind, error)
      }
    },
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
 */
export function recordToDocument(record: RecordData, context: unknown): DocumentData {
  const content: JsonObject = {}
  for (const [key, value] of Object.entries(record.values)) content[key] = sqlValueToJson(value)
  const id = idOf(record.values.id) ?? stableJson(context)
  return { kind: 'document', id, content }
}

const CSV_SPECIAL = /[",\r\n]/

function csvField(value: JsonValue): string {
  const text = value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value)
  return CSV_SPECIAL.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

function safeFileName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

/**
 * A document as one blob keyed by its id: one JSON line, or a CSV header and row. One blob
 * per item keeps writes idempotent: a replayed item rewrites the same key.
 */
export function toBlob(document: DocumentData, format: ConvertFormat): BlobData {
  const key = `${safeFileName(document.id)}.${format}`
  let text: string
  if (format === 'jsonl') {
    text = `${JSON.stringify(document.content)}\n`
  } else {
    const keys = Object.keys(document.content)
    text = `${keys.map((k) => csvField(k)).join(',')}\n${keys.map((k) => csvField(document.content[k]!)).join(',')}\n`
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

/** Shared by every converted message: sinks read headers, never change them. */
const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json',
})

export function documentToMessage(document: DocumentData): MessageData {
  return {
    kind: 'message',
    id: document.id,
    payload: encoder.encode(JSON.stringify(document.content)),
    headers: JSON_HEADERS as Record<string, string>,
  }
}

export function messageToDocument(message: MessageData): DocumentData {
  let content: unknown
  try {
    content = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(message.payload))
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
  return { kind: 'document', id: message.id, content: content as JsonObject }
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
    if (to === 'document') {
      yield {
        kind: 'document',
        id: idOf(object.id) ?? `${blob.key}:${row.line}`,
        content: object as JsonObject,
      }
    } else {
      const values: Record<string, SqlValue> = {}
      for (const [key, value] of Object.entries(object)) values[key] = jsonToSql(value)
      yield { kind: 'record', values }
    }
  }
}

type Row = { line: number; value: Record<string, unknown> } | { line: number; error: string }

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
        yield { line, value }
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

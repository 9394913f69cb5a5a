import {
  backoffDelay,
  type ColumnType,
  type Data,
  describeItem,
  documentJson,
  JsonDuplicateKeyError,
  type PrepareResult,
  ProviderError,
  parseJsonExact,
  retry,
  type StreamSchema,
  sleep,
  toProviderError,
  type WriteFailure,
  type WriteResult,
} from '@nvisy/provider-core'
import type { BulkItemResult, SearchBackend } from './opensearch-client.js'
import { classifyOpenSearchError, kindOf } from './opensearch-errors.js'
import type { OpenSearchSinkStream } from './opensearch-schemas.js'

const MAX_ID_BYTES = 512

interface Entry {
  /** Position in the batch. */
  index: number
  /** The action line and the source line. */
  lines: [string, string]
  bytes: number
}

function itemError(item: Data, message: string): ProviderError {
  return new ProviderError({
    kind: 'data',
    operation: 'write',
    message: `${describeItem(item)}: ${message}`,
  })
}

/** The _id and _source of an item, or a data error naming what is wrong with it. */
export function toSource(
  item: Data,
  stream: OpenSearchSinkStream,
): { id: string; source: Record<string, unknown> } {
  let source: Record<string, unknown>
  if (item.kind === 'document') {
    // `_id` is a metadata field: the server refuses it inside a document. The item id is the _id.
    const { _id, ...rest } = item.content as Record<string, unknown>
    source = rest
    if (item.rawJson) checkRawJson(item, source, item.rawJson)
  } else if (item.kind === 'embedding') {
    if (item.sparse !== undefined)
      throw itemError(item, 'sparse values are not supported: only dense vectors are written')
    const field = stream.vectorField ?? 'embedding'
    source = { ...(item.metadata ?? {}), [field]: Array.from(item.values) }
    if (item.metadata && field in item.metadata)
      throw itemError(item, `metadata has a field named like vectorField ${JSON.stringify(field)}`)
  } else {
    throw itemError(
      item,
      `a ${item.kind} item cannot be written: the sink takes documents and embeddings`,
    )
  }
  let id = item.id
  if (stream.idField !== undefined) {
    const value = source[stream.idField]
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'bigint')
      throw itemError(
        item,
        `idField ${JSON.stringify(stream.idField)} is missing or not a string or number`,
      )
    id = String(value)
  }
  if (id.length === 0) throw itemError(item, 'the _id is empty')
  if (Buffer.byteLength(id) > MAX_ID_BYTES)
    throw itemError(item, `the _id is ${Buffer.byteLength(id)} bytes; the limit is ${MAX_ID_BYTES}`)
  return { id, source }
}

/**
 * Fields with exact JSON text are sent as that text (`documentJson`). OpenSearch parses a
 * document with strict duplicate detection and refuses an object that repeats a key
 * ("Duplicate field"): such a document is refused here, naming the field and the key.
 */
function checkRawJson(
  item: Data,
  source: Record<string, unknown>,
  rawJson: Readonly<Record<string, string>>,
): void {
  for (const field of Object.keys(rawJson)) {
    if (!Object.hasOwn(source, field)) continue
    try {
      parseJsonExact(rawJson[field]!)
    } catch (error) {
      throw itemError(
        item,
        error instanceof JsonDuplicateKeyError
          ? `field ${JSON.stringify(field)}: its JSON text repeats ${error.key === undefined ? 'a key' : `the key ${JSON.stringify(error.key)}`} in one object, which OpenSearch refuses; the document is refused rather than sent changed`
          : `field ${JSON.stringify(field)}: its JSON text is not valid JSON: ${(error as Error).message}`,
      )
    }
  }
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value
}

/** Split entries into _bulk requests closed by bytes and by items. An entry over the byte limit goes alone. */
export function chunkEntries<T extends { bytes: number }>(
  entries: readonly T[],
  maxBytes: number,
  maxItems: number,
): T[][] {
  const chunks: T[][] = []
  let current: T[] = []
  let bytes = 0
  for (const entry of entries) {
    if (current.length > 0 && (bytes + entry.bytes > maxBytes || current.length >= maxItems)) {
      chunks.push(current)
      current = []
      bytes = 0
    }
    current.push(entry)
    bytes += entry.bytes
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}

function failureOf(item: Data, result: BulkItemResult, product: string): ProviderError {
  const type = result.error?.type
  const reason = [result.error?.reason, result.error?.caused_by?.reason].filter(Boolean).join(': ')
  const kind = result.status === 409 ? 'data' : kindOf(result.status, type)
  return new ProviderError({
    kind: kind === 'config' ? 'data' : kind,
    operation: 'write',
    code: type ?? String(result.status),
    message: `${describeItem(item)}: ${product} refused it (${result.status}${type ? ` ${type}` : ''})${reason ? `: ${reason.slice(0, 500)}` : ''}`,
    ...(kind === 'rate_limited' ? { retryAfterMs: 1000 } : {}),
  })
}

const RETRY_STATUSES = new Set([429, 502, 503, 504])

/**
 * Write a batch with _bulk: `index` (replace by _id, idempotent) or `create`. Requests close
 * by bytes and items. An item the server refuses is reported in `failed` with its reason;
 * items rejected with 429 (or 503) are sent again with backoff, up to maxItemRetries.
 */
export async function writeDocuments(
  backend: SearchBackend,
  stream: OpenSearchSinkStream,
  batch: readonly Data[],
  signal: AbortSignal,
): Promise<WriteResult> {
  const failed: WriteFailure[] = []
  const entries: Entry[] = []
  const action = stream.action ?? 'index'
  for (let index = 0; index < batch.length; index++) {
    const item = batch[index]!
    try {
      const { id, source } = toSource(item, stream)
      const meta = JSON.stringify({ [action]: { _index: stream.index, _id: id } })
      // Fields with exact JSON text (a JSON column) go as that text: big numbers, key order.
      const body =
        item.kind === 'document'
          ? documentJson(source, item.rawJson, bigintSafe)
          : JSON.stringify(source, bigintSafe)
      entries.push({
        index,
        lines: [meta, body],
        bytes: Buffer.byteLength(meta) + Buffer.byteLength(body) + 2,
      })
    } catch (error) {
      failed.push({ index, error: toProviderError(error) })
    }
  }
  let written = 0
  const maxRetries = stream.maxItemRetries ?? 5
  const refresh = stream.refresh ?? 'false'
  const chunks = chunkEntries(
    entries,
    stream.maxBulkBytes ?? 5 * 1024 * 1024,
    stream.maxBulkItems ?? 1000,
  )
  while (chunks.length > 0) {
    const chunk = chunks.shift()!
    let pending = chunk
    for (let attempt = 0; pending.length > 0; attempt++) {
      const lines = pending.flatMap((entry) => entry.lines)
      let response: Awaited<ReturnType<SearchBackend['bulk']>>
      try {
        response = await retry(() => backend.bulk(lines, refresh, signal), {
          signal,
          maxAttempts: maxRetries + 1,
          classify: (error) => classifyOpenSearchError(error) ?? toProviderError(error),
        })
      } catch (error) {
        // 413: the body is over the server's http.max_content_length. Halve the request; a
        // single document over the limit fails alone.
        if (
          classifyOpenSearchError(error)?.code !== '413' &&
          (error as { code?: string })?.code !== '413'
        )
          throw error
        if (pending.length > 1) {
          const half = Math.ceil(pending.length / 2)
          chunks.unshift(pending.slice(0, half), pending.slice(half))
        } else {
          const entry = pending[0]!
          failed.push({
            index: entry.index,
            error: itemError(
              batch[entry.index]!,
              `${backend.product} refused it (413): the document (${entry.bytes} bytes) is over the server's request size limit (http.max_content_length)`,
            ),
          })
        }
        break
      }
      if (response.items.length !== pending.length)
        throw new ProviderError({
          kind: 'internal',
          operation: 'write',
          message: `${backend.product} answered ${response.items.length} bulk items for ${pending.length} actions`,
        })
      const again: Entry[] = []
      response.items.forEach((wrapper, i) => {
        const entry = pending[i]!
        const result = Object.values(wrapper)[0]!
        if (result.status >= 200 && result.status < 300) written++
        else if (RETRY_STATUSES.has(result.status) && attempt < maxRetries) again.push(entry)
        else
          failed.push({
            index: entry.index,
            error: failureOf(batch[entry.index]!, result, backend.product),
          })
      })
      pending = again
      if (pending.length > 0)
        await sleep(Math.max(100, backoffDelay(attempt + 1, 200, 10_000)), signal)
    }
  }
  failed.sort((a, b) => a.index - b.index)
  return { written, failed }
}

/** The mapping of a portable column type. */
export function mappingOf(type: ColumnType): Record<string, unknown> | undefined {
  switch (type.type) {
    case 'boolean':
      return { type: 'boolean' }
    case 'integer':
      if (type.bits === 64 && type.unsigned) return { type: 'unsigned_long' }
      if (type.bits === 64 || (type.bits === 32 && type.unsigned)) return { type: 'long' }
      if (type.bits <= 16 && !type.unsigned) return { type: type.bits === 8 ? 'byte' : 'short' }
      return { type: 'integer' }
    case 'float':
      return { type: type.bits === 32 ? 'float' : 'double' }
    case 'decimal':
      // Exact decimals travel as text: a double would round them.
      return { type: 'keyword' }
    case 'text':
    case 'enum':
      return { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } }
    case 'uuid':
    case 'set':
    case 'bits':
    case 'time':
    case 'duration':
      return { type: 'keyword' }
    case 'binary':
      return { type: 'binary' }
    case 'date':
      return { type: 'date', format: 'strict_date' }
    case 'timestamp':
      return { type: (type.precision ?? 0) > 3 ? 'date_nanos' : 'date' }
    case 'year':
      return { type: 'short' }
    case 'json':
      // Any JSON value (object, array or scalar, differing by row), kept in _source unparsed.
      return { type: 'object', enabled: false }
    case 'array':
      return mappingOf(type.of)
    default:
      return undefined
  }
}

/** A mapping for a described schema; columns with no portable type are refused. */
export function mappingForSchema(schema: StreamSchema): Record<string, unknown> {
  const properties: Record<string, unknown> = {}
  for (const column of schema.columns) {
    const mapping = mappingOf(column.type)
    if (!mapping)
      throw new ProviderError({
        kind: 'config',
        operation: 'prepare',
        message: `column ${JSON.stringify(column.name)} has type ${column.nativeType} with no portable equivalent: declare stream.mappings`,
      })
    properties[column.name] = mapping
  }
  return { properties }
}

/** Create the index when missing: from stream.mappings, else from the source's schema. */
export async function prepareIndex(
  backend: SearchBackend,
  stream: OpenSearchSinkStream,
  options: { signal: AbortSignal; schema?: StreamSchema | undefined; dryRun?: boolean | undefined },
): Promise<PrepareResult> {
  if (await backend.indexExists(stream.index, options.signal)) return { existed: true, actions: [] }
  const mappings =
    stream.mappings ?? (options.schema ? mappingForSchema(options.schema) : undefined)
  const body: Record<string, unknown> = {}
  if (mappings) body.mappings = mappings
  if (stream.settings) body.settings = stream.settings
  const action = `PUT /${stream.index} ${JSON.stringify(body)}`
  if (!options.dryRun) {
    try {
      await backend.createIndex(stream.index, body, options.signal)
    } catch (error) {
      // Created meanwhile by another writer: fine.
      const classified = classifyOpenSearchError(error)
      if (classified?.code !== 'resource_already_exists_exception') throw error
    }
  }
  return { existed: false, actions: [action] }
}

import {
  type ColumnInfo,
  type ColumnType,
  type Connection,
  defineProvider,
  ProviderError,
  SPECIFICATION_VERSION,
  type StreamInfo,
} from '@nvisy/provider-core'
import type { Client } from '@opensearch-project/opensearch'
import { OpenSearchBackend, openBackend, type SearchBackend } from './opensearch-client.js'
import { classifyOpenSearchError } from './opensearch-errors.js'
import {
  type OpenSearchContext,
  OpenSearchContextSchema,
  OpenSearchCredentialsSchema,
  OpenSearchParamsSchema,
  type OpenSearchSinkStream,
  OpenSearchSinkStreamSchema,
  type OpenSearchStream,
  OpenSearchStreamSchema,
} from './opensearch-schemas.js'
import { prepareIndex, writeDocuments } from './opensearch-sink.js'
import { readIndex } from './opensearch-source.js'
import { VERSION } from './version.js'

/** Server majors this provider reads and writes; 2.x from 2.4, where point in time search arrived. */
export const SUPPORTED_MAJORS = [2, 3] as const

const MAX_DISCOVERED = 1000

export interface OpenSearchProviderOptions {
  /** A client to use instead of one built from params and credentials; `close()` leaves it open. */
  client?: Client
}

export type OpenSearchConnection = Connection<
  OpenSearchStream,
  OpenSearchContext,
  OpenSearchSinkStream
>

/** The leaf fields of a mapping, as dotted paths with their type. */
export function mappingFields(
  properties: Record<string, unknown> | undefined,
  prefix = '',
): { name: string; type: string }[] {
  const out: { name: string; type: string }[] = []
  for (const [name, raw] of Object.entries(properties ?? {})) {
    const field = raw as { type?: string; properties?: Record<string, unknown> }
    if (
      field.properties &&
      (field.type === undefined || field.type === 'object' || field.type === 'nested')
    ) {
      out.push(...mappingFields(field.properties, `${prefix}${name}.`))
    } else out.push({ name: `${prefix}${name}`, type: field.type ?? 'object' })
  }
  return out
}

/** The portable type of a mapping type. */
export function columnTypeOf(type: string): ColumnType {
  switch (type) {
    case 'long':
      return { type: 'integer', bits: 64 }
    case 'integer':
      return { type: 'integer', bits: 32 }
    case 'short':
      return { type: 'integer', bits: 16 }
    case 'byte':
      return { type: 'integer', bits: 8 }
    case 'unsigned_long':
      return { type: 'integer', bits: 64, unsigned: true }
    case 'double':
      return { type: 'float', bits: 64 }
    case 'float':
    case 'half_float':
      return { type: 'float', bits: 32 }
    case 'scaled_float':
      return { type: 'float', bits: 64 }
    case 'boolean':
      return { type: 'boolean' }
    case 'date':
      return { type: 'timestamp', withTimeZone: true, precision: 3 }
    case 'date_nanos':
      return { type: 'timestamp', withTimeZone: true, precision: 9 }
    case 'binary':
      return { type: 'binary' }
    case 'text':
    case 'keyword':
    case 'match_only_text':
    case 'wildcard':
    case 'constant_keyword':
    case 'ip':
    case 'version':
      return { type: 'text' }
    case 'dense_vector':
    case 'knn_vector':
      return { type: 'array', of: { type: 'float', bits: 32 } }
    case 'object':
    case 'nested':
    case 'flattened':
      return { type: 'json' }
    default:
      return { type: 'other' }
  }
}

/** Top-level fields of a mapping as columns (objects as json); every field may be missing. */
export function mappingColumns(properties: Record<string, unknown> | undefined): ColumnInfo[] {
  return Object.entries(properties ?? {}).map(([name, raw]) => {
    const field = raw as { type?: string; properties?: unknown }
    const nativeType = field.type ?? 'object'
    return { name, nativeType, type: columnTypeOf(nativeType), nullable: true }
  })
}

export async function checkCluster(backend: SearchBackend, signal: AbortSignal): Promise<void> {
  const { number, distribution } = await backend.info(signal)
  if (distribution !== 'opensearch') {
    throw new ProviderError({
      kind: 'config',
      operation: 'check',
      message: `the server is not OpenSearch (version.distribution is ${JSON.stringify(distribution ?? null)}, version ${number}): use the provider of its product (Elasticsearch has its own)`,
    })
  }
  const [major, minor] = number.split('.').map(Number) as [number, number]
  if (!(SUPPORTED_MAJORS as readonly number[]).includes(major) || (major === 2 && minor < 4)) {
    throw new ProviderError({
      kind: 'config',
      operation: 'check',
      message: `OpenSearch ${number} is not supported: this provider (client 3.x) supports OpenSearch 2.4 and later 2.x, and 3.x (reads need point in time search)`,
    })
  }
  try {
    const { status } = await backend.health(signal)
    if (status === 'red')
      throw new ProviderError({
        kind: 'transient',
        operation: 'check',
        message: 'OpenSearch cluster health is red: some primary shards are unassigned',
      })
  } catch (error) {
    // A user without the cluster monitor permission may not read health: the version check stands.
    if (classifyOpenSearchError(error)?.kind === 'auth' && (error as any)?.meta?.statusCode === 403)
      return
    throw error
  }
}

function createConnection(backend: SearchBackend): OpenSearchConnection {
  const prepared = new Set<string>()
  return {
    async check() {
      await checkCluster(backend, new AbortController().signal)
    },
    async discover({ signal }) {
      const mappings = await backend.getMappings('*', signal)
      const dataStreams = new Set((await backend.dataStreams(signal)).map((s) => s.name))
      const streams: StreamInfo[] = []
      const names = Object.keys(mappings)
        .filter((name) => !name.startsWith('.'))
        .sort()
      // Backing indices of a data stream are read through the data stream.
      for (const stream of [...dataStreams].sort()) {
        const backing = names.find((name) => name.startsWith(`.ds-${stream}-`))
        streams.push({
          name: stream,
          type: 'data_stream',
          data: 'document',
          stream: { index: stream },
          fields: mappingFields(mappings[backing ?? '']?.mappings?.properties),
        })
      }
      for (const name of names) {
        if (streams.length >= MAX_DISCOVERED) break
        const fields = mappingFields(mappings[name]?.mappings?.properties)
        streams.push({ name, type: 'index', data: 'document', stream: { index: name }, fields })
        const vector = fields.find((f) => f.type === 'knn_vector')
        if (vector && streams.length < MAX_DISCOVERED) {
          streams.push({
            name: `${name} (embeddings: ${vector.name})`,
            type: 'index',
            data: 'embedding',
            stream: { index: name, data: 'embedding', vectorField: vector.name },
            fields,
            description: `The ${vector.name} knn_vector as embedding values, the other fields as metadata`,
          })
        }
      }
      return streams
    },
    async describeStream(stream, { signal }) {
      const mappings = await backend.getMappings(stream.index, signal)
      const names = Object.keys(mappings).sort()
      if (names.length === 0)
        throw new ProviderError({
          kind: 'not_found',
          operation: 'describe',
          message: `${stream.index} matches no index`,
        })
      // Several indices (a pattern, a data stream's backing indices): the union of their fields.
      const columns = new Map<string, ColumnInfo>()
      for (const name of names)
        for (const column of mappingColumns(mappings[name]?.mappings?.properties))
          if (!columns.has(column.name)) columns.set(column.name, column)
      return { system: 'opensearch', columns: [...columns.values()], primaryKey: [] }
    },
    read(stream, { after, signal }) {
      return readIndex(backend, stream, after, signal)
    },
    async write(stream, batch, { signal }) {
      if (stream.mappings && !prepared.has(stream.index)) {
        await prepareIndex(backend, stream, { signal })
        prepared.add(stream.index)
      }
      return writeDocuments(backend, stream, batch, signal)
    },
    async prepare(stream, options) {
      const result = await prepareIndex(backend, stream, options)
      if (!options.dryRun) prepared.add(stream.index)
      return result
    },
    async close() {
      await backend.close()
    },
  }
}

/** Create the OpenSearch provider. */
export function createOpenSearchProvider(options: OpenSearchProviderOptions = {}) {
  return defineProvider({
    id: 'opensearch',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'OpenSearch',
    description:
      'OpenSearch 2.x/3.x indices and data streams: read in a point in time with search_after as documents or embeddings (knn_vector), written with _bulk by _id',
    credentials: OpenSearchCredentialsSchema,
    params: OpenSearchParamsSchema,
    source: {
      data: ['document', 'embedding'],
      stream: OpenSearchStreamSchema,
      context: OpenSearchContextSchema,
      incremental: true,
      incrementalFor: (stream) => stream.sortField !== undefined,
      dataKindOf: (stream) => stream.data ?? 'document',
      describe: true,
      ordering:
        'sortField ascending (unique, growing; resumed with a range after the last value), else _shard_doc within one point in time',
    },
    sink: {
      data: ['document', 'embedding'],
      stream: OpenSearchSinkStreamSchema,
      idempotentBy: '_id (bulk index replaces; data.id or content[idField])',
      dataKindOf: (stream) => stream.data ?? 'document',
      prepare: true,
    },
    discover: true,
    classifyError: classifyOpenSearchError,
    async connect({ credentials, params }) {
      if (options.client) return createConnection(new OpenSearchBackend(options.client, false))
      return createConnection(await openBackend(credentials, params))
    },
  })
}

/** The OpenSearch provider with clients it owns. */
export const opensearchProvider = createOpenSearchProvider()
export type OpenSearchProvider = typeof opensearchProvider

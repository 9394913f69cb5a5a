import {
  type Connection,
  defineProvider,
  raceAbort,
  SPECIFICATION_VERSION,
  type StreamInfo,
} from '@nvisy/provider-core'
import type { Index, Pinecone } from '@pinecone-database/pinecone'
import {
  createPineconeClient,
  type IndexInfo,
  requireIndexOrHost,
  resolveIndex,
} from './pinecone-client.js'
import { classifyPineconeError } from './pinecone-errors.js'
import {
  type PineconeContext,
  PineconeContextSchema,
  PineconeCredentialsSchema,
  type PineconeParams,
  PineconeParamsSchema,
  type PineconeSinkStream,
  PineconeSinkStreamSchema,
  type PineconeStream,
  PineconeStreamSchema,
} from './pinecone-schemas.js'
import { deleteVectors, type SinkTarget, writeVectors } from './pinecone-sink.js'
import { readVectors } from './pinecone-source.js'
import { VERSION } from './version.js'

export interface PineconeProviderOptions {
  /**
   * A Pinecone client to use instead of one built from the credentials and params. The
   * credentials' apiKey is then not used. Without the provider's own fetch, statuses are
   * classified from the SDK's error classes (a 403 or 429 is recognised by its message).
   */
  client?: Pinecone
}

export type PineconeConnection = Connection<PineconeStream, PineconeContext, PineconeSinkStream>

const MAX_DISCOVERED = 1000

function createConnection(client: Pinecone, params: PineconeParams): PineconeConnection {
  let resolved: Promise<IndexInfo> | undefined
  const info = () => {
    resolved ??= resolveIndex(client, params)
    // A failed lookup is retried by the next call, not cached.
    resolved.catch(() => {
      resolved = undefined
    })
    return resolved
  }
  const indexes = new Map<string, Index>()
  let host: string | undefined
  const indexFor = (namespace: string): Index => {
    let index = indexes.get(namespace)
    if (!index) {
      index = client.index({ host: host!, namespace })
      indexes.set(namespace, index)
    }
    return index
  }
  const ready = async (signal?: AbortSignal) => {
    const resolvedInfo = await raceAbort(info(), signal)
    host = resolvedInfo.host
    return resolvedInfo
  }
  const defaultNamespace = params.namespace ?? ''
  const target: SinkTarget = {
    info: () => ready(),
    index: indexFor,
    namespace: (stream) => stream.namespace ?? defaultNamespace,
    dimensionChecked: false,
  }
  return {
    async check() {
      await ready()
      // The control plane accepted the key; prove the data plane does too.
      await indexFor(defaultNamespace).describeIndexStats()
    },
    async discover({ signal }) {
      const resolvedInfo = await ready(signal)
      const streams: StreamInfo[] = []
      let token: string | undefined
      do {
        const page = await raceAbort(
          indexFor(defaultNamespace).listNamespaces({
            limit: 100,
            ...(token ? { paginationToken: token } : {}),
          }),
          signal,
        )
        for (const namespace of page.namespaces ?? []) {
          if (streams.length >= MAX_DISCOVERED) return streams
          const name = namespace.name ?? ''
          streams.push({
            name: name === '' ? '(default namespace)' : name,
            type: 'namespace',
            data: 'embedding',
            stream: { namespace: name },
            description: `${namespace.recordCount ?? 0} vectors${resolvedInfo.dimension ? `, dimension ${resolvedInfo.dimension}` : ''}`,
          })
        }
        token = page.pagination?.next
      } while (token)
      return streams
    },
    async *read(stream, { after, signal }) {
      await ready(signal)
      yield* readVectors(indexFor(stream.namespace ?? defaultNamespace), stream, after, signal)
    },
    async write(stream, batch, { signal }) {
      await ready(signal)
      return writeVectors(target, stream, batch, signal)
    },
    async delete(stream, ids, { signal }) {
      await ready(signal)
      return deleteVectors(target, stream, ids, signal)
    },
    async close() {
      indexes.clear()
    },
  }
}

/** Create the Pinecone provider. Without options it builds its own client per connection. */
export function createPineconeProvider(options: PineconeProviderOptions = {}) {
  return defineProvider({
    id: 'pinecone',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Pinecone',
    description: 'Pinecone vector indexes: embeddings read by listing ids and written by upsert',
    credentials: PineconeCredentialsSchema,
    params: PineconeParamsSchema,
    source: {
      data: 'embedding',
      stream: PineconeStreamSchema,
      context: PineconeContextSchema,
      incremental: true,
      ordering: 'vector id, byte order (list pagination token of the page, then the last id read)',
    },
    sink: {
      data: 'embedding',
      stream: PineconeSinkStreamSchema,
      idempotentBy: 'vector id (upsert)',
      deletes: true,
    },
    discover: true,
    classifyError: classifyPineconeError,
    async connect({ credentials, params }) {
      requireIndexOrHost(params)
      const client = options.client ?? createPineconeClient(credentials, params)
      return createConnection(client, params)
    },
  })
}

/** The Pinecone provider with clients it owns. */
export const pineconeProvider = createPineconeProvider()
export type PineconeProvider = typeof pineconeProvider

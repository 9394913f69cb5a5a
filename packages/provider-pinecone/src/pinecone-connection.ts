import {
  type Connection,
  type Data,
  type ReadItem,
  type ReadOptions,
  raceAbort,
  type StreamInfo,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import type { Index, Pinecone } from '@pinecone-database/pinecone'
import {
  createPineconeClient,
  type IndexInfo,
  requireIndexOrHost,
  resolveIndex,
} from './pinecone-client.js'
import type {
  PineconeContext,
  PineconeCredentials,
  PineconeParams,
  PineconeSinkStream,
  PineconeStream,
} from './pinecone-schemas.js'
import { deleteVectors, type SinkTarget, writeVectors } from './pinecone-sink.js'
import { readVectors } from './pinecone-source.js'

const MAX_DISCOVERED = 1000

/**
 * A Pinecone connection: one client and one index, whose host (and dimension) is looked up
 * on first use; a data-plane handle per namespace.
 */
export class PineconeConnection
  implements Connection<PineconeStream, PineconeContext, PineconeSinkStream>
{
  readonly #client: Pinecone
  readonly #params: PineconeParams
  #resolved: Promise<IndexInfo> | undefined
  readonly #indexes = new Map<string, Index>()
  #host: string | undefined
  readonly #defaultNamespace: string
  readonly #target: SinkTarget

  constructor(client: Pinecone, params: PineconeParams) {
    this.#client = client
    this.#params = params
    this.#defaultNamespace = params.namespace ?? ''
    this.#target = {
      info: () => this.#ready(),
      index: (namespace) => this.#indexFor(namespace),
      namespace: (stream) => stream.namespace ?? this.#defaultNamespace,
      dimensionChecked: false,
    }
  }

  /**
   * A connection for validated params (index or host required), with `client` or else a client
   * built from the credentials and params. Nothing is sent until the first use.
   */
  static open(
    credentials: PineconeCredentials,
    params: PineconeParams,
    client?: Pinecone,
  ): PineconeConnection {
    requireIndexOrHost(params)
    return new PineconeConnection(client ?? createPineconeClient(credentials, params), params)
  }

  #info(): Promise<IndexInfo> {
    this.#resolved ??= resolveIndex(this.#client, this.#params)
    // A failed lookup is retried by the next call, not cached.
    this.#resolved.catch(() => {
      this.#resolved = undefined
    })
    return this.#resolved
  }

  #indexFor(namespace: string): Index {
    let index = this.#indexes.get(namespace)
    if (!index) {
      index = this.#client.index({ host: this.#host!, namespace })
      this.#indexes.set(namespace, index)
    }
    return index
  }

  async #ready(signal?: AbortSignal): Promise<IndexInfo> {
    const resolvedInfo = await raceAbort(this.#info(), signal)
    this.#host = resolvedInfo.host
    return resolvedInfo
  }

  async check(): Promise<void> {
    await this.#ready()
    // The control plane accepted the key; prove the data plane does too.
    await this.#indexFor(this.#defaultNamespace).describeIndexStats()
  }

  async discover({ signal }: { signal: AbortSignal }): Promise<StreamInfo[]> {
    const resolvedInfo = await this.#ready(signal)
    const streams: StreamInfo[] = []
    let token: string | undefined
    do {
      const page = await raceAbort(
        this.#indexFor(this.#defaultNamespace).listNamespaces({
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
  }

  async *read(
    stream: PineconeStream,
    { after, signal }: ReadOptions<PineconeContext>,
  ): AsyncGenerator<ReadItem<PineconeContext>> {
    await this.#ready(signal)
    yield* readVectors(
      this.#indexFor(stream.namespace ?? this.#defaultNamespace),
      stream,
      after,
      signal,
    )
  }

  async write(
    stream: PineconeSinkStream,
    batch: readonly Data[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    await this.#ready(signal)
    return writeVectors(this.#target, stream, batch, signal)
  }

  async delete(
    stream: PineconeSinkStream,
    ids: readonly string[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    await this.#ready(signal)
    return deleteVectors(this.#target, stream, ids, signal)
  }

  async close(): Promise<void> {
    this.#indexes.clear()
  }
}

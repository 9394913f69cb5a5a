import { readFile } from 'node:fs/promises'
import {
  type Connection,
  checkSearchHealth,
  type Data,
  type PrepareOptions,
  type PrepareResult,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  type StreamInfo,
  type StreamSchema,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import { Client } from '@opensearch-project/opensearch'
import {
  clientOptions,
  configError,
  OpenSearchBackend,
  type SearchBackend,
} from './opensearch-client.js'
import { classifyOpenSearchError } from './opensearch-errors.js'
import type {
  OpenSearchContext,
  OpenSearchCredentials,
  OpenSearchParams,
  OpenSearchSinkStream,
  OpenSearchStream,
} from './opensearch-schemas.js'
import { prepareIndex, writeDocuments } from './opensearch-sink.js'
import { describeIndex, discoverStreams, readIndex } from './opensearch-source.js'

/** Server majors this provider reads and writes; 2.x from 2.4, where point in time search arrived. */
export const SUPPORTED_MAJORS = [2, 3] as const

export async function checkCluster(backend: SearchBackend, signal: AbortSignal): Promise<void> {
  const { number, distribution } = await backend.info(signal)
  if (distribution !== 'opensearch') {
    throw new ProviderError({
      kind: 'config',
      operation: 'check',
      message: `the server is not OpenSearch (version.distribution is ${JSON.stringify(distribution ?? null)}, version ${number}): use the provider of its product (OpenSearch has its own)`,
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
  await checkSearchHealth(backend, classifyOpenSearchError, signal)
}

/** A connection to an OpenSearch cluster: owns its client (unless given one) and closes it. */
export class OpenSearchConnection
  implements Connection<OpenSearchStream, OpenSearchContext, OpenSearchSinkStream>
{
  readonly #backend: SearchBackend
  /** Indices this connection has created or checked from a sink stream's mappings. */
  readonly #prepared = new Set<string>()

  constructor(backend: SearchBackend) {
    this.#backend = backend
  }

  /** A connection over a client built from validated input; a CA file that cannot be read is a config error. */
  static async open(
    credentials: OpenSearchCredentials,
    params: OpenSearchParams,
  ): Promise<OpenSearchConnection> {
    let ca: string | undefined
    if (params.caFile !== undefined) {
      try {
        ca = await readFile(params.caFile, 'utf8')
      } catch (error) {
        throw configError(
          `params.caFile could not be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        )
      }
    }
    const options = clientOptions(credentials, params, ca)
    let client: Client
    try {
      client = new Client(options)
    } catch (error) {
      throw configError(
        `OpenSearch could not use the connection settings (${(error as Error).name}): check params.url / params.nodes and the TLS settings`,
      )
    }
    return new OpenSearchConnection(new OpenSearchBackend(client, true))
  }

  /** A connection over a client the caller owns: `close()` leaves it open. */
  static withClient(client: Client): OpenSearchConnection {
    return new OpenSearchConnection(new OpenSearchBackend(client, false))
  }

  async check(): Promise<void> {
    await checkCluster(this.#backend, new AbortController().signal)
  }

  discover({ signal }: { signal: AbortSignal }): Promise<StreamInfo[]> {
    return discoverStreams(this.#backend, signal)
  }

  describeStream(
    stream: OpenSearchStream,
    { signal }: { signal: AbortSignal },
  ): Promise<StreamSchema> {
    return describeIndex(this.#backend, stream, signal)
  }

  read(
    stream: OpenSearchStream,
    { after, signal }: ReadOptions<OpenSearchContext>,
  ): AsyncIterable<ReadItem<OpenSearchContext>> {
    return readIndex(this.#backend, stream, after, signal)
  }

  async write(
    stream: OpenSearchSinkStream,
    batch: readonly Data[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    if (stream.mappings && !this.#prepared.has(stream.index)) {
      await prepareIndex(this.#backend, stream, { signal })
      this.#prepared.add(stream.index)
    }
    return writeDocuments(this.#backend, stream, batch, signal)
  }

  async prepare(stream: OpenSearchSinkStream, options: PrepareOptions): Promise<PrepareResult> {
    const result = await prepareIndex(this.#backend, stream, options)
    if (!options.dryRun) this.#prepared.add(stream.index)
    return result
  }

  async close(): Promise<void> {
    await this.#backend.close()
  }
}

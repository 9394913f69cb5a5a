import { readFile } from 'node:fs/promises'
import { Client } from '@elastic/elasticsearch'
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
import {
  clientOptions,
  configError,
  ElasticsearchBackend,
  type SearchBackend,
} from './elasticsearch-client.js'
import { classifyElasticsearchError } from './elasticsearch-errors.js'
import type {
  ElasticsearchContext,
  ElasticsearchCredentials,
  ElasticsearchParams,
  ElasticsearchSinkStream,
  ElasticsearchStream,
} from './elasticsearch-schemas.js'
import { prepareIndex, writeDocuments } from './elasticsearch-sink.js'
import { describeIndex, discoverStreams, readIndex } from './elasticsearch-source.js'

/** Server majors this provider reads and writes (the 8.x client speaks to 8 and, compatibly, 9). */
export const SUPPORTED_MAJORS = [8, 9] as const

export async function checkCluster(backend: SearchBackend, signal: AbortSignal): Promise<void> {
  const { number } = await backend.info(signal)
  const major = Number(number.split('.')[0])
  if (!(SUPPORTED_MAJORS as readonly number[]).includes(major)) {
    throw new ProviderError({
      kind: 'config',
      operation: 'check',
      message: `Elasticsearch ${number} is not supported: this provider (client 8.x) supports Elasticsearch ${SUPPORTED_MAJORS.join('.x and ')}.x`,
    })
  }
  await checkSearchHealth(backend, classifyElasticsearchError, signal)
}

/** A connection to an Elasticsearch cluster: owns its client (unless given one) and closes it. */
export class ElasticsearchConnection
  implements Connection<ElasticsearchStream, ElasticsearchContext, ElasticsearchSinkStream>
{
  readonly #backend: SearchBackend
  /** Indices this connection has created or checked from a sink stream's mappings. */
  readonly #prepared = new Set<string>()

  constructor(backend: SearchBackend) {
    this.#backend = backend
  }

  /** A connection over a client built from validated input; a CA file that cannot be read is a config error. */
  static async open(
    credentials: ElasticsearchCredentials,
    params: ElasticsearchParams,
  ): Promise<ElasticsearchConnection> {
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
        `Elasticsearch could not use the connection settings (${(error as Error).name}): check params.url / params.nodes and the TLS settings`,
      )
    }
    return new ElasticsearchConnection(new ElasticsearchBackend(client, true))
  }

  /** A connection over a client the caller owns: `close()` leaves it open. */
  static withClient(client: Client): ElasticsearchConnection {
    return new ElasticsearchConnection(new ElasticsearchBackend(client, false))
  }

  async check(): Promise<void> {
    await checkCluster(this.#backend, new AbortController().signal)
  }

  discover({ signal }: { signal: AbortSignal }): Promise<StreamInfo[]> {
    return discoverStreams(this.#backend, signal)
  }

  describeStream(
    stream: ElasticsearchStream,
    { signal }: { signal: AbortSignal },
  ): Promise<StreamSchema> {
    return describeIndex(this.#backend, stream, signal)
  }

  read(
    stream: ElasticsearchStream,
    { after, signal }: ReadOptions<ElasticsearchContext>,
  ): AsyncIterable<ReadItem<ElasticsearchContext>> {
    return readIndex(this.#backend, stream, after, signal)
  }

  async write(
    stream: ElasticsearchSinkStream,
    batch: readonly Data[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    if (stream.mappings && !this.#prepared.has(stream.index)) {
      await prepareIndex(this.#backend, stream, { signal })
      this.#prepared.add(stream.index)
    }
    return writeDocuments(this.#backend, stream, batch, signal)
  }

  async prepare(stream: ElasticsearchSinkStream, options: PrepareOptions): Promise<PrepareResult> {
    const result = await prepareIndex(this.#backend, stream, options)
    if (!options.dryRun) this.#prepared.add(stream.index)
    return result
  }

  async close(): Promise<void> {
    await this.#backend.close()
  }
}

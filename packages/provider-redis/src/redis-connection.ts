import {
  type Connection,
  type Data,
  errorMessage,
  type Logger,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  raceAbort,
  type StreamInfo,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import {
  createRedisClient,
  openRedisClient,
  type RedisClient,
  scanTargets,
} from './redis-client.js'
import type {
  RedisContext,
  RedisCredentials,
  RedisParams,
  RedisSinkStream,
  RedisStream,
} from './redis-schemas.js'
import { deleteDocuments, writeDocuments, writeMessages } from './redis-sink.js'
import { readDocuments, readMessages } from './redis-source.js'

const MAX_DISCOVERED = 1000

/** A Redis connection: one ioredis client (Redis or Cluster), its errors logged once each. */
export class RedisConnection implements Connection<RedisStream, RedisContext, RedisSinkStream> {
  readonly #client: RedisClient
  /** Whether `close()` closes the client (false for a client the caller passed in). */
  readonly #owned: boolean
  #lastLogged = ''
  readonly #onError: (error: unknown) => void

  constructor(client: RedisClient, owned: boolean, logger: Logger) {
    this.#client = client
    this.#owned = owned
    this.#onError = (error: unknown) => {
      const message = errorMessage(error)
      if (message === this.#lastLogged) return
      this.#lastLogged = message
      logger.warn({ error: message }, 'redis connection error')
    }
    client.on('error', this.#onError)
    client.on('ready', () => {
      this.#lastLogged = ''
    })
  }

  /** Build a client from validated credentials and params and connect it (see redis-client.ts). */
  static async open(
    credentials: RedisCredentials,
    params: RedisParams,
    signal: AbortSignal,
    logger: Logger,
  ): Promise<RedisConnection> {
    const { client, markEstablished } = createRedisClient(credentials, params)
    await openRedisClient(client, signal, params.connectTimeoutMs ?? 10_000)
    markEstablished()
    return new RedisConnection(client, true, logger)
  }

  /**
   * Use a client the caller owns; a lazy one not yet connected is connected here. `close()`
   * leaves it open.
   */
  static async borrow(
    client: RedisClient,
    params: RedisParams,
    signal: AbortSignal,
    logger: Logger,
  ): Promise<RedisConnection> {
    if (client.status === 'wait')
      await openRedisClient(client, signal, params.connectTimeoutMs ?? 10_000)
    return new RedisConnection(client, false, logger)
  }

  async check(): Promise<void> {
    const reply = await this.#client.ping()
    if (reply !== 'PONG') {
      throw new ProviderError({
        kind: 'internal',
        message: `Redis answered PING with ${JSON.stringify(reply)}`,
      })
    }
  }

  async discover({ signal }: { signal: AbortSignal }): Promise<StreamInfo[]> {
    const streams: StreamInfo[] = []
    for (const { redis } of scanTargets(this.#client)) {
      let cursor = '0'
      do {
        const [next, keys] = await raceAbort(
          redis.scan(cursor, 'COUNT', 1000, 'TYPE', 'stream'),
          signal,
        )
        cursor = next
        for (const key of [...new Set(keys)].sort()) {
          if (streams.length >= MAX_DISCOVERED) return streams
          streams.push({
            name: key,
            type: 'stream',
            data: 'message',
            stream: { kind: 'stream', key },
          })
        }
      } while (cursor !== '0')
    }
    return streams
  }

  read(
    stream: RedisStream,
    { after, signal }: ReadOptions<RedisContext>,
  ): AsyncIterable<ReadItem<RedisContext>> {
    return stream.kind === 'stream'
      ? readMessages(this.#client, stream, after, signal)
      : readDocuments(this.#client, stream, after, signal)
  }

  write(
    stream: RedisSinkStream,
    batch: readonly Data[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    return stream.kind === 'stream'
      ? writeMessages(this.#client, stream, batch, signal)
      : writeDocuments(this.#client, stream, batch, signal)
  }

  async delete(
    stream: RedisSinkStream,
    ids: readonly string[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    if (stream.kind !== 'document') {
      throw new ProviderError({
        kind: 'config',
        message:
          'delete is supported for document streams only; stream entries are not addressed by message id',
      })
    }
    return deleteDocuments(this.#client, stream, ids, signal)
  }

  async close(): Promise<void> {
    const client = this.#client
    client.off('error', this.#onError)
    if (!this.#owned) return
    // Keep a listener: a late socket error after close must not become an unhandled event.
    client.on('error', () => {})
    try {
      await Promise.race([
        client.quit(),
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ])
    } catch {
      // The connection is already gone: nothing left to close gracefully.
    }
    client.disconnect()
  }
}

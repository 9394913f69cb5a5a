import {
  type Connection,
  defineProvider,
  errorMessage,
  type Logger,
  ProviderError,
  raceAbort,
  SPECIFICATION_VERSION,
  type StreamInfo,
} from '@nvisy/provider-core'
import {
  createRedisClient,
  openRedisClient,
  type RedisClient,
  scanTargets,
} from './redis-client.js'
import { classifyRedisError } from './redis-errors.js'
import {
  dataKindOf,
  type RedisContext,
  RedisContextSchema,
  RedisCredentialsSchema,
  RedisParamsSchema,
  type RedisSinkStream,
  RedisSinkStreamSchema,
  type RedisStream,
  RedisStreamSchema,
} from './redis-schemas.js'
import { deleteDocuments, writeDocuments, writeMessages } from './redis-sink.js'
import { readDocuments, readMessages } from './redis-source.js'
import { VERSION } from './version.js'

export interface RedisProviderOptions {
  /**
   * An ioredis client (Redis or Cluster) to use instead of one built from params and
   * credentials. The caller owns it: `close()` leaves it open. A lazy client not yet
   * connected is connected by `connect`. Give it `enableOfflineQueue: false` for fast failures.
   */
  client?: RedisClient
}

const MAX_DISCOVERED = 1000

export type RedisConnection = Connection<RedisStream, RedisContext, RedisSinkStream>

function createConnection(client: RedisClient, owned: boolean, logger: Logger): RedisConnection {
  let lastLogged = ''
  const onError = (error: unknown) => {
    const message = errorMessage(error)
    if (message === lastLogged) return
    lastLogged = message
    logger.warn({ error: message }, 'redis connection error')
  }
  client.on('error', onError)
  client.on('ready', () => {
    lastLogged = ''
  })
  return {
    async check() {
      const reply = await client.ping()
      if (reply !== 'PONG') {
        throw new ProviderError({
          kind: 'internal',
          message: `Redis answered PING with ${JSON.stringify(reply)}`,
        })
      }
    },
    async discover({ signal }) {
      const streams: StreamInfo[] = []
      for (const { redis } of scanTargets(client)) {
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
    },
    read(stream, { after, signal }) {
      return stream.kind === 'stream'
        ? readMessages(client, stream, after, signal)
        : readDocuments(client, stream, after, signal)
    },
    write(stream, batch, { signal }) {
      return stream.kind === 'stream'
        ? writeMessages(client, stream, batch, signal)
        : writeDocuments(client, stream, batch, signal)
    },
    async delete(stream, ids, { signal }) {
      if (stream.kind !== 'document') {
        throw new ProviderError({
          kind: 'config',
          message:
            'delete is supported for document streams only; stream entries are not addressed by message id',
        })
      }
      return deleteDocuments(client, stream, ids, signal)
    },
    async close() {
      client.off('error', onError)
      if (!owned) return
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
    },
  }
}

/**
 * Create the Redis provider. Without options it builds its own ioredis client per
 * connection from the validated params and credentials.
 */
export function createRedisProvider(options: RedisProviderOptions = {}) {
  return defineProvider({
    id: 'redis',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Redis',
    description:
      'Redis streams as messages (XRANGE/XADD) and JSON documents at keys under a prefix (SCAN/SET)',
    credentials: RedisCredentialsSchema,
    params: RedisParamsSchema,
    source: {
      data: ['message', 'document'],
      stream: RedisStreamSchema,
      context: RedisContextSchema,
      incremental: true,
      // A finished SCAN does not see keys added behind its cursor: only streams are incremental.
      incrementalFor: (stream) => stream.kind === 'stream',
      ordering:
        'stream: entry id (<ms>-<seq>), resumed with XRANGE (id; document: SCAN cursor then key within the page (no global order)',
      dataKindOf,
    },
    sink: {
      data: ['message', 'document'],
      stream: RedisSinkStreamSchema,
      idempotentBy:
        'stream: message id (dedupe key <stream>:nvisy-dedupe:<id>, set atomically with XADD, TTL dedupeTtlSeconds); document: key (prefix + id)',
      deletes: true,
      dataKindOf,
    },
    discover: true,
    classifyError: classifyRedisError,
    async connect({ credentials, params }, { signal, logger }) {
      if (options.client) {
        const client = options.client
        if (client.status === 'wait')
          await openRedisClient(client, signal, params.connectTimeoutMs ?? 10_000)
        return createConnection(client, false, logger)
      }
      const { client, markEstablished } = createRedisClient(credentials, params)
      await openRedisClient(client, signal, params.connectTimeoutMs ?? 10_000)
      markEstablished()
      return createConnection(client, true, logger)
    },
  })
}

/** The Redis provider with clients it owns. */
export const redisProvider = createRedisProvider()
export type RedisProvider = typeof redisProvider

import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import type { RedisClient } from './redis-client.js'
import { RedisConnection } from './redis-connection.js'
import { classifyRedisError } from './redis-errors.js'
import {
  dataKindOf,
  RedisContextSchema,
  RedisCredentialsSchema,
  RedisParamsSchema,
  RedisSinkStreamSchema,
  RedisStreamSchema,
} from './redis-schemas.js'
import { VERSION } from './version.js'

export interface RedisProviderOptions {
  /**
   * An ioredis client (Redis or Cluster) to use instead of one built from params and
   * credentials. The caller owns it: `close()` leaves it open. A lazy client not yet
   * connected is connected by `connect`. Give it `enableOfflineQueue: false` for fast failures.
   */
  client?: RedisClient
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
      if (options.client) return RedisConnection.borrow(options.client, params, signal, logger)
      return RedisConnection.open(credentials, params, signal, logger)
    },
  })
}

/** The Redis provider with clients it owns. */
export const redisProvider = createRedisProvider()
export type RedisProvider = typeof redisProvider

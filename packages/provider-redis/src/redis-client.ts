import type { ConnectionOptions } from 'node:tls'
import { ProviderError, raceAbort } from '@nvisy/provider-core'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import type { RedisCredentials, RedisParams } from './redis-schemas.js'

/** A standalone client or a cluster client: both speak the same commands. */
export type RedisClient = Redis | Cluster

export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true
}

function tlsOptions(tls: RedisParams['tls']): ConnectionOptions | undefined {
  if (tls === undefined || tls === false) return undefined
  if (tls === true) return {}
  const options: ConnectionOptions = { rejectUnauthorized: tls.rejectUnauthorized ?? true }
  if (tls.ca) options.ca = tls.ca
  if (tls.servername) options.servername = tls.servername
  return options
}

/**
 * Build an ioredis client that fails fast instead of waiting: no offline queue (a command
 * sent while disconnected fails at once with a transient error and the runtime retries),
 * one retry for a command in flight when the connection drops (every command this provider
 * sends is idempotent), and no reconnect loop until the first connection has succeeded, so
 * `connect` against a dead port fails in milliseconds.
 */
export function createRedisClient(
  credentials: RedisCredentials,
  params: RedisParams,
): { client: RedisClient; markEstablished: () => void } {
  let established = false
  const retryStrategy = (times: number) =>
    established ? Math.min(100 * 2 ** Math.min(times, 5), 3000) : null
  const common: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: params.connectTimeoutMs ?? 10_000,
    retryStrategy,
    connectionName: 'nvisy',
  }
  if (params.commandTimeoutMs !== undefined) common.commandTimeout = params.commandTimeoutMs
  if (credentials.username !== undefined) common.username = credentials.username
  if (credentials.password !== undefined) common.password = credentials.password
  const tls = tlsOptions(params.tls)
  if (tls) common.tls = tls

  let client: RedisClient
  if (params.cluster && params.cluster.length > 0) {
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retryStrategy,
      redisOptions: common,
    }
    client = new Cluster(
      params.cluster.map((node) => ({ host: node.host, port: node.port })),
      clusterOptions,
    )
  } else {
    client = new Redis({
      ...common,
      host: params.host ?? '127.0.0.1',
      port: params.port ?? 6379,
      db: params.db ?? 0,
    })
  }
  return {
    client,
    markEstablished: () => {
      established = true
    },
  }
}

/**
 * Connect a lazy client, waiting at most `timeoutMs` for it to be ready (ioredis's own
 * connectTimeout ends at the TCP connect, so a server that accepts and never answers, such
 * as the wrong service on the port or TLS expected, would otherwise hang). ioredis rejects
 * `connect()` with a bare "Connection is closed." and reports the reason (ECONNREFUSED,
 * WRONGPASS...) only through its `error` event, so the last such error is what this throws.
 * An abort disconnects at once.
 */
export async function openRedisClient(
  client: RedisClient,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<void> {
  let lastError: unknown
  const onError = (error: unknown) => {
    lastError = error
  }
  client.on('error', onError)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ProviderError({
            kind: 'transient',
            code: 'ETIMEDOUT',
            message: `Redis did not become ready within ${timeoutMs} ms (is it Redis on that port, and does it expect TLS?)`,
          }),
        ),
      timeoutMs,
    )
  })
  try {
    await raceAbort(Promise.race([client.connect(), deadline]), signal)
  } catch (error) {
    client.disconnect()
    if (signal.aborted || ProviderError.isInstance(error)) throw error
    throw lastError ?? error
  } finally {
    clearTimeout(timer)
    client.off('error', onError)
  }
}

/**
 * The nodes to SCAN: the client itself, or every cluster master in a stable order
 * (host:port), since SCAN walks one node's keyspace at a time.
 */
export function scanTargets(client: RedisClient): { node: string | undefined; redis: Redis }[] {
  if (!isCluster(client)) return [{ node: undefined, redis: client }]
  return client
    .nodes('master')
    .map((redis) => ({ node: `${redis.options.host}:${redis.options.port}`, redis }))
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
}

import { randomBytes } from 'node:crypto'
import type { ConnectInput } from '@nvisy/provider-core'
import { serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { Redis, type RedisOptions } from 'ioredis'

/** The Redis the tests use: NVISY_TEST_REDIS_URL (redis://[user:pass@]host:port[/db]) or 127.0.0.1:6379. */
export function redisTarget(db?: number): {
  host: string
  port: number
  db: number
  username?: string
  password?: string
  where: string
} {
  const url = new URL(process.env.NVISY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0')
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const port = url.port ? Number(url.port) : 6379
  const urlDb = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
  const target: ReturnType<typeof redisTarget> = {
    host,
    port,
    db: db ?? urlDb,
    where: `${host}:${port}`,
  }
  if (url.username) target.username = decodeURIComponent(url.username)
  if (url.password) target.password = decodeURIComponent(url.password)
  return target
}

export function redisInput(db?: number): ConnectInput {
  const t = redisTarget(db)
  const credentials: Record<string, string> = {}
  if (t.username) credentials.username = t.username
  if (t.password) credentials.password = t.password
  return { credentials, params: { host: t.host, port: t.port, db: t.db } }
}

/** A direct ioredis client for seeding and inspecting, outside the provider. */
export function adminClient(db?: number): Redis {
  const t = redisTarget(db)
  const options: RedisOptions = { host: t.host, port: t.port, db: t.db }
  if (t.username) options.username = t.username
  if (t.password) options.password = t.password
  return new Redis(options)
}

export function redisSkipReason(): Promise<string | false> {
  const t = redisTarget()
  return serviceSkipReason('Redis', t.where, () => tcpReachable(t.host, t.port))
}

export function randomSuffix(): string {
  return randomBytes(5).toString('hex')
}

/** Delete every key under a prefix (SCAN + UNLINK). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.unlink(...keys)
  } while (cursor !== '0')
}

/** An ACL user with a password, for the refused-credentials test. Remove it with `ACL DELUSER`. */
export async function createAclUser(redis: Redis): Promise<string> {
  const user = `nvisy-test-${randomSuffix()}`
  await redis.call('ACL', 'SETUSER', user, 'on', `>pw-${randomSuffix()}`, '~*', '+@all')
  return user
}

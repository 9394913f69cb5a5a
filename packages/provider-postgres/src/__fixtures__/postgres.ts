import { randomBytes } from 'node:crypto'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import pg from 'pg'

/** The test server: NVISY_TEST_POSTGRES_URL, or the machine's PostgreSQL 15 (trust auth, db test). */
export const TEST_URL =
  process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export function skipReason(): Promise<string | false> {
  const { host, port } = hostPort(TEST_URL, 5432)
  return serviceSkipReason('PostgreSQL', `${host}:${port}`, () => tcpReachable(host, port))
}

/** A schema name of its own for one test file, so files run in parallel. */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`
}

export function adminPool(): pg.Pool {
  return new pg.Pool({ connectionString: TEST_URL, max: 2 })
}

/** Provider input for the test server, with `schema` as the default schema. */
export function testInput(schema: string, extra: Record<string, unknown> = {}) {
  return { credentials: { url: TEST_URL }, params: { schema, ...extra } }
}

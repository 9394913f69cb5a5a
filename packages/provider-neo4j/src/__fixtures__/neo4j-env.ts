import { startNeo4jEmulator } from '@nvisy/emulators'
import type { ConnectInput } from '@nvisy/provider-core'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import neo4j, { type Driver } from 'neo4j-driver'

/** A real server when NVISY_TEST_NEO4J_URL is set, otherwise the project's Bolt emulator in-process. */
export const realUrl = process.env.NVISY_TEST_NEO4J_URL || undefined
const realUser = process.env.NVISY_TEST_NEO4J_USER ?? 'neo4j'
const realPassword = process.env.NVISY_TEST_NEO4J_PASSWORD ?? ''
const realDatabase = process.env.NVISY_TEST_NEO4J_DATABASE || undefined

export const EMULATOR_USER = 'neo4j'
export const EMULATOR_PASSWORD = 'emulator-password'

export interface Neo4jTestTarget {
  url: string
  user: string
  password: string
  database: string | undefined
  driver: Driver
  input(): ConnectInput
  badInput(canary: string): ConnectInput
  close(): Promise<void>
}

export async function neo4jSkipReason(): Promise<string | false> {
  if (!realUrl) return false
  const { host, port } = hostPort(realUrl.replace(/^(bolt|neo4j)(\+s|\+ssc)?:/, 'http:'), 7687)
  return serviceSkipReason('Neo4j', realUrl, () => tcpReachable(host, port))
}

export async function openNeo4jTarget(): Promise<Neo4jTestTarget> {
  let url: string
  let user = realUser
  let password = realPassword
  let close = async () => {}
  if (realUrl) url = realUrl
  else {
    const emulator = await startNeo4jEmulator({
      port: 0,
      auth: { user: EMULATOR_USER, password: EMULATOR_PASSWORD },
    })
    url = emulator.url
    user = EMULATOR_USER
    password = EMULATOR_PASSWORD
    close = () => emulator.close()
  }
  const database = realUrl ? realDatabase : undefined
  const driver = neo4j.driver(url, neo4j.auth.basic(user, password), { useBigInt: true })
  return {
    url,
    user,
    password,
    database,
    driver,
    input: () => ({
      credentials: { user, password },
      params: { url, ...(database ? { database } : {}) },
    }),
    badInput: (canary) => ({
      credentials: { user, password: canary },
      params: { url, ...(database ? { database } : {}) },
    }),
    async close() {
      await driver.close()
      await close()
    },
  }
}

/** Run one auto-commit query with the test's own driver. */
export async function cypher(
  target: Neo4jTestTarget,
  query: string,
  params: Record<string, unknown> = {},
) {
  const session = target.driver.session({ database: target.database })
  try {
    return await session.executeWrite((tx) => tx.run(query, params))
  } finally {
    await session.close()
  }
}

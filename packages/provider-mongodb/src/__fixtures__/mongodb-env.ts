// Where the tests find MongoDB: NVISY_TEST_MONGODB_URL (a real server; it may hold
// credentials) or, by default, the project's wire-protocol emulator started on a free port
// with one SCRAM user, so authentication is tested too.
import { randomBytes } from 'node:crypto'
import { type MongoEmulator, startMongoEmulator } from '@nvisy/emulators'
import type { ConnectInput } from '@nvisy/provider-core'
import { serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { MongoClient } from 'mongodb'

export const realUrl = process.env.NVISY_TEST_MONGODB_URL

const EMULATOR_USER = 'nvisy'
const EMULATOR_PASSWORD = `pw-${randomBytes(8).toString('hex')}`

/** A URL with its password hidden, for skip messages. */
function shown(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@')
}

export async function mongoSkipReason(): Promise<string | false> {
  if (!realUrl) return false
  const match = /^mongodb:\/\/(?:[^@/]*@)?([^/,?]+)/.exec(realUrl)
  if (!match) return false // mongodb+srv: let the driver find it
  const [host, port] = match[1]!.startsWith('[')
    ? [match[1]!.slice(1, match[1]!.indexOf(']')), match[1]!.split(']:')[1]]
    : match[1]!.split(':')
  return serviceSkipReason('MongoDB', shown(realUrl), () =>
    tcpReachable(host!, Number(port ?? 27017)),
  )
}

export interface MongoTarget {
  label: string
  database: string
  /** A driver client for seeding and checking, connected. */
  client: MongoClient
  input(): ConnectInput
  badInput(canary: string): ConnectInput
  close(): Promise<void>
}

export async function openMongoTarget(): Promise<MongoTarget> {
  const database = `nvisy_test_${randomBytes(4).toString('hex')}`
  let emulator: MongoEmulator | undefined
  let url: string
  let input: () => ConnectInput
  let badInput: (canary: string) => ConnectInput
  let client: MongoClient
  if (realUrl) {
    url = realUrl
    client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 })
    input = () => ({
      credentials: { connectionString: realUrl },
      params: { database, serverSelectionTimeoutMS: 5000 },
    })
    badInput = (canary) => {
      const parsed = new URL(realUrl)
      parsed.username = parsed.username || 'nvisy-no-such-user'
      parsed.password = canary
      return {
        credentials: { connectionString: parsed.toString() },
        params: { database, serverSelectionTimeoutMS: 5000 },
      }
    }
  } else {
    emulator = await startMongoEmulator({ port: 0, users: { [EMULATOR_USER]: EMULATOR_PASSWORD } })
    url = emulator.url
    client = new MongoClient(url, {
      auth: { username: EMULATOR_USER, password: EMULATOR_PASSWORD },
      serverSelectionTimeoutMS: 5000,
    })
    input = () => ({
      credentials: { username: EMULATOR_USER, password: EMULATOR_PASSWORD },
      params: { url: emulator!.url, database, serverSelectionTimeoutMS: 5000 },
    })
    badInput = (canary) => ({
      credentials: { username: EMULATOR_USER, password: canary },
      params: { url: emulator!.url, database, serverSelectionTimeoutMS: 5000 },
    })
  }
  await client.connect()
  return {
    label: emulator ? 'emulator' : 'server',
    database,
    client,
    input,
    badInput,
    async close() {
      await client
        .db(database)
        .dropDatabase()
        .catch(() => {})
      await client.close()
      await emulator?.close()
    },
  }
}

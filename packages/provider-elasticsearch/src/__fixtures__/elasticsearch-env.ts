// Where the tests find Elasticsearch: NVISY_TEST_ELASTICSEARCH_URL (a real cluster, with
// NVISY_TEST_ELASTICSEARCH_API_KEY or NVISY_TEST_ELASTICSEARCH_USERNAME/_PASSWORD when it has
// security on) or, by default, the project's search emulator on a free port with one user,
// so authentication is tested too.
import { randomBytes } from 'node:crypto'
import { Client } from '@elastic/elasticsearch'
import { type SearchEmulator, startSearchEmulator } from '@nvisy/emulators'
import type { ConnectInput } from '@nvisy/provider-core'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'

export const realUrl = process.env.NVISY_TEST_ELASTICSEARCH_URL
const realApiKey = process.env.NVISY_TEST_ELASTICSEARCH_API_KEY
const realUser = process.env.NVISY_TEST_ELASTICSEARCH_USERNAME
const realPassword = process.env.NVISY_TEST_ELASTICSEARCH_PASSWORD

export async function elasticsearchSkipReason(): Promise<string | false> {
  if (!realUrl) return false
  const { host, port } = hostPort(realUrl, realUrl.startsWith('https') ? 443 : 9200)
  return serviceSkipReason('Elasticsearch', realUrl, () => tcpReachable(host, port))
}

export interface ElasticsearchTarget {
  label: string
  /** A prefix for index names unique to this run. */
  prefix: string
  client: Client
  emulator: SearchEmulator | undefined
  input(): ConnectInput
  badInput(canary: string): ConnectInput
  /** Make writes visible to searches (a no-op on the emulator, a _refresh on a cluster). */
  refresh(index: string): Promise<void>
  close(): Promise<void>
}

export async function openElasticsearchTarget(): Promise<ElasticsearchTarget> {
  const prefix = `nvisy-test-${randomBytes(4).toString('hex')}`
  let emulator: SearchEmulator | undefined
  let credentials: Record<string, string>
  let url: string
  if (realUrl) {
    url = realUrl
    credentials = realApiKey
      ? { apiKey: realApiKey }
      : realUser && realPassword
        ? { username: realUser, password: realPassword }
        : {}
  } else {
    const password = `pw-${randomBytes(8).toString('hex')}`
    emulator = await startSearchEmulator({ flavor: 'elasticsearch', users: { elastic: password } })
    url = emulator.url
    credentials = { username: 'elastic', password }
  }
  const client = new Client({
    node: url,
    ...(credentials.apiKey
      ? { auth: { apiKey: credentials.apiKey } }
      : credentials.username
        ? { auth: { username: credentials.username, password: credentials.password! } }
        : {}),
  })
  return {
    label: emulator ? 'emulator' : 'cluster',
    prefix,
    client,
    emulator,
    input: () => ({ credentials, params: { url, requestTimeoutMs: 10_000, maxRetries: 0 } }),
    badInput: (canary) => ({
      credentials: credentials.apiKey
        ? { apiKey: canary }
        : { username: credentials.username ?? 'elastic', password: canary },
      params: { url, requestTimeoutMs: 10_000, maxRetries: 0 },
    }),
    async refresh(index) {
      if (!emulator) await client.indices.refresh({ index })
    },
    async close() {
      await client.indices.delete({ index: `${prefix}*` }, { ignore: [404] }).catch(() => {})
      await client.close()
      await emulator?.close()
    },
  }
}

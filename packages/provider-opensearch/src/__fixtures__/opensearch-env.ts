// Where the tests find OpenSearch: NVISY_TEST_OPENSEARCH_URL (a real cluster, with
// NVISY_TEST_OPENSEARCH_USERNAME/_PASSWORD when it has the security plugin on) or, by default, the project's search emulator on a free port with one user,
// so authentication is tested too.
import { randomBytes } from 'node:crypto'
import { type SearchEmulator, startSearchEmulator } from '@nvisy/emulators'
import type { ConnectInput } from '@nvisy/provider-core'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { Client } from '@opensearch-project/opensearch'

export const realUrl = process.env.NVISY_TEST_OPENSEARCH_URL
const realUser = process.env.NVISY_TEST_OPENSEARCH_USERNAME
const realPassword = process.env.NVISY_TEST_OPENSEARCH_PASSWORD

export async function opensearchSkipReason(): Promise<string | false> {
  if (!realUrl) return false
  const { host, port } = hostPort(realUrl, realUrl.startsWith('https') ? 443 : 9200)
  return serviceSkipReason('OpenSearch', realUrl, () => tcpReachable(host, port))
}

export interface OpenSearchTarget {
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

export async function openOpenSearchTarget(): Promise<OpenSearchTarget> {
  const prefix = `nvisy-test-${randomBytes(4).toString('hex')}`
  let emulator: SearchEmulator | undefined
  let credentials: Record<string, string>
  let url: string
  if (realUrl) {
    url = realUrl
    credentials = realUser && realPassword ? { username: realUser, password: realPassword } : {}
  } else {
    const password = `pw-${randomBytes(8).toString('hex')}`
    emulator = await startSearchEmulator({ flavor: 'opensearch', users: { admin: password } })
    url = emulator.url
    credentials = { username: 'admin', password }
  }
  const client = new Client({
    node: url,
    ...(credentials.username
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
      credentials: { username: credentials.username ?? 'admin', password: canary },
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

import type { Data, MessageData } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import { afterAll, beforeAll } from 'vitest'
import {
  NATS_URL,
  natsSkipReason,
  startAuthServer,
  TestStream,
} from './__fixtures__/nats-test-server.js'
import { natsProvider } from './nats-provider.js'

const skip = await natsSkipReason()
const stream = new TestStream({ max_msg_size: 64 * 1024 })
const sourceSubjects = `${stream.prefix}.src.>`
const sinkSubjects = `${stream.prefix}.sink.>`
const encoder = new TextEncoder()
const decoder = new TextDecoder()

let authServer: Awaited<ReturnType<typeof startAuthServer>> | undefined
beforeAll(async () => {
  if (!skip) authServer = await startAuthServer()
}, 30_000)
afterAll(async () => {
  await authServer?.stop()
})

function itemNumberOf(payload: Uint8Array): number {
  return (JSON.parse(decoder.decode(payload)) as { i: number }).i
}

runProviderConformance({
  name: 'nats',
  provider: natsProvider,
  skip,
  input: () => ({ credentials: {}, params: { servers: NATS_URL, stream: stream.name } }),
  badCredentials: {
    input: (canary) => ({
      credentials: { user: 'u', password: canary },
      params: { servers: authServer!.url, timeoutMs: 5_000 },
    }),
    kind: 'auth',
  },
  badParams: {
    input: { credentials: {}, params: { servers: NATS_URL, tls: 'sometimes' } },
    path: '/params/tls',
  },
  fixture: {
    stream: { subject: sourceSubjects },
    setup: () => stream.reset(),
    teardown: () => stream.destroy(),
    // Recreating the stream (not purging it) also forgets the duplicate window's message ids.
    clear: () => stream.reset(),
    async seed(from, count) {
      for (let i = from; i < from + count; i++) {
        await stream.publish(`${stream.prefix}.src.${i}`, JSON.stringify({ i }))
      }
    },
    itemNumber: (data: Data) => itemNumberOf((data as MessageData).payload),
    sink: {
      stream: {},
      makeItem: (i): MessageData => ({
        kind: 'message',
        id: `item-${i}`,
        subject: `${stream.prefix}.sink.${i}`,
        payload: encoder.encode(JSON.stringify({ i })),
        headers: { 'x-item': String(i) },
      }),
      // Larger than the stream's max_msg_size: the server refuses this message alone.
      makeBadItem: (): MessageData => ({
        kind: 'message',
        id: 'item-too-large',
        subject: `${stream.prefix}.sink.bad`,
        payload: new Uint8Array(100 * 1024),
      }),
      async storedItems() {
        const stored = await stream.stored(sinkSubjects)
        return stored.map((m) => itemNumberOf(m.data))
      },
    },
  },
})

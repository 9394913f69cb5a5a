import type { DocumentData } from '@nvisy/provider-core'
import { runProviderConformance } from './conformance.js'
import {
  createMemoryProvider,
  type MemoryProviderBug,
  memoryItemId,
  memoryStore,
  seedMemoryStore,
} from './memory-provider.js'

/** The conformance suite on the in-memory provider, correct or with one deliberate bug. */
export function runMemoryConformance(name: string, bug?: MemoryProviderBug): void {
  const store = `conformance-${name}-${process.pid}`
  runProviderConformance({
    name,
    provider: createMemoryProvider(bug ? { bug } : {}),
    input: () => ({ credentials: { password: 'secret' }, params: { store } }),
    badCredentials: {
      input: (canary) => ({ credentials: { password: canary }, params: { store } }),
    },
    badParams: {
      input: { credentials: { password: 'secret' }, params: { store: 42 } },
      path: '/params/store',
    },
    fixture: {
      stream: {},
      async clear() {
        memoryStore(store).source.length = 0
        memoryStore(store).sink.length = 0
      },
      async seed(from, count) {
        seedMemoryStore(store, from, count)
      },
      itemNumber: (data) => (data as DocumentData).content.n as number,
      sink: {
        stream: {},
        makeItem: (i) => ({ kind: 'document', id: memoryItemId(i), content: { n: i } }),
        makeBadItem: () => ({ kind: 'document', id: '', content: { n: -1 } }),
        storedItems: async () => memoryStore(store).sink.map((d) => d.content.n as number),
      },
    },
  })
}

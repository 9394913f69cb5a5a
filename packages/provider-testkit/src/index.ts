export { pseudoRandomChunks, sha256Of } from './bytes.js'
export { runProviderConformance } from './conformance.js'
export {
  createMemoryProvider,
  type MemoryProviderBug,
  type MemoryStore,
  memoryItemId,
  memoryStore,
  memoryStores,
  seedMemoryStore,
} from './memory-provider.js'
export { collect, type ReadAllOptions, readAll } from './read-all.js'
export {
  freePort,
  hostPort,
  serviceSkipReason,
  servicesRequired,
  tcpReachable,
} from './services.js'
export type { ConformanceFixture, ConformanceOptions } from './types.js'
export { VERSION } from './version.js'

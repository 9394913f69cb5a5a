export { SearchApiError } from './errors.js'
export type { FieldMapping, Json, JsonObject, StoredDoc } from './query.js'
export {
  type SearchEmulator,
  type SearchEmulatorOptions,
  SearchEmulatorServer,
  type SearchFault,
  type SearchFlavor,
  type SearchRequestLog,
  startSearchEmulator,
} from './server.js'

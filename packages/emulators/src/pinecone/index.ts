export { GRPC, PineconeApiError } from './errors.js'
export {
  MAX_REQUEST_BYTES,
  type PineconeEmulator,
  type PineconeEmulatorOptions,
  PineconeEmulatorServer,
  type PineconeFault,
  type PineconeRequestLog,
  startPineconeEmulator,
} from './server.js'
export {
  compareIds,
  type IndexSpec,
  LIMITS as PINECONE_LIMITS,
  type Metric,
  PineconeIndex,
} from './store.js'

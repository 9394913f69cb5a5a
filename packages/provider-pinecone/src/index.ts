export { PineconeConnection } from './pinecone-connection.js'
export {
  classifyPineconeError,
  PineconeHttpError,
  statusPreservingFetch,
} from './pinecone-errors.js'
export {
  createPineconeProvider,
  type PineconeProvider,
  type PineconeProviderOptions,
  pineconeProvider,
} from './pinecone-provider.js'
export { compareIds, PINECONE_LIMITS } from './pinecone-records.js'
export {
  type PineconeContext,
  PineconeContextSchema,
  type PineconeCredentials,
  PineconeCredentialsSchema,
  type PineconeParams,
  PineconeParamsSchema,
  type PineconeSinkStream,
  PineconeSinkStreamSchema,
  type PineconeStream,
  PineconeStreamSchema,
} from './pinecone-schemas.js'
export { VERSION } from './version.js'

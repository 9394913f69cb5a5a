export { clientSettings } from './mongodb-client.js'
export { MongoConnection } from './mongodb-connection.js'
export {
  afterValue,
  fromExtendedJson,
  idFromString,
  idToString,
  resumeFilter,
  toCanonical,
} from './mongodb-documents.js'
export { classifyMongoError } from './mongodb-errors.js'
export {
  createMongoProvider,
  type MongoProvider,
  type MongoProviderOptions,
  mongoProvider,
} from './mongodb-provider.js'
export {
  type MongoContext,
  MongoContextSchema,
  type MongoCredentials,
  MongoCredentialsSchema,
  type MongoParams,
  MongoParamsSchema,
  type MongoSinkStream,
  MongoSinkStreamSchema,
  type MongoStream,
  MongoStreamSchema,
} from './mongodb-schemas.js'
export { VERSION } from './version.js'

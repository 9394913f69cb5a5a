export { FsConnection, type FsConnectionOptions } from './fs-connection.js'
export { classifyFsError } from './fs-errors.js'
export { compareKeys } from './fs-paths.js'
export {
  createFsProvider,
  type FsProvider,
  type FsProviderOptions,
  fsProvider,
} from './fs-provider.js'
export {
  type FsBlobContext,
  FsBlobContextSchema,
  type FsBlobSinkStream,
  FsBlobSinkStreamSchema,
  type FsBlobStream,
  FsBlobStreamSchema,
  type FsContext,
  FsContextSchema,
  type FsCredentials,
  FsCredentialsSchema,
  type FsDocumentContext,
  FsDocumentContextSchema,
  type FsDocumentStream,
  FsDocumentStreamSchema,
  type FsParams,
  FsParamsSchema,
  type FsSinkStream,
  FsSinkStreamSchema,
  type FsStream,
  FsStreamSchema,
} from './fs-schemas.js'
export { VERSION } from './version.js'

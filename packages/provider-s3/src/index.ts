export { createS3ClientConfig, S3Connection } from './s3-connection.js'
export { classifyS3Error } from './s3-errors.js'
export { decodeMetadataValue, encodeMetadataValue } from './s3-metadata.js'
export {
  createS3Provider,
  type S3Provider,
  type S3ProviderOptions,
  s3Provider,
} from './s3-provider.js'
export {
  S3Context,
  S3ContextSchema,
  S3Credentials,
  S3CredentialsSchema,
  S3Params,
  S3ParamsSchema,
  S3SinkStream,
  S3SinkStreamSchema,
  S3Stream,
  S3StreamSchema,
} from './s3-schemas.js'
export { VERSION } from './version.js'

import { s3Provider } from './s3-provider.js'
export default s3Provider

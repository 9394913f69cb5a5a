export { classifyS3Error } from './s3-errors.js'
export { decodeMetadataValue, encodeMetadataValue } from './s3-metadata.js'
export {
  createS3ClientConfig,
  createS3Provider,
  type S3ProviderOptions,
  s3Provider,
} from './s3-provider.js'
export { S3Context, S3Credentials, S3Params, S3SinkStream, S3Stream } from './s3-schemas.js'
export { VERSION } from './version.js'

import { s3Provider } from './s3-provider.js'
export default s3Provider

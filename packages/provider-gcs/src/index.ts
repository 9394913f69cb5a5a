export { createGcsStorageOptions, GcsConnection } from './gcs-connection.js'
export { classifyGcsError } from './gcs-errors.js'
export {
  createGcsProvider,
  type GcsProvider,
  type GcsProviderOptions,
  gcsProvider,
} from './gcs-provider.js'
export {
  GcsContext,
  GcsContextSchema,
  GcsCredentials,
  GcsCredentialsSchema,
  GcsParams,
  GcsParamsSchema,
  GcsSinkStream,
  GcsSinkStreamSchema,
  GcsStream,
  GcsStreamSchema,
} from './gcs-schemas.js'
export { VERSION } from './version.js'

import { gcsProvider } from './gcs-provider.js'
export default gcsProvider

export { classifyGcsError } from './gcs-errors.js'
export {
  createGcsProvider,
  createGcsStorageOptions,
  type GcsProviderOptions,
  gcsProvider,
} from './gcs-provider.js'
export { GcsContext, GcsCredentials, GcsParams, GcsSinkStream, GcsStream } from './gcs-schemas.js'
export { VERSION } from './version.js'

import { gcsProvider } from './gcs-provider.js'
export default gcsProvider

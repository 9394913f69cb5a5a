import type { Storage } from '@google-cloud/storage'
import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import { GcsConnection } from './gcs-connection.js'
import { classifyGcsError } from './gcs-errors.js'
import {
  GcsContextSchema,
  GcsCredentialsSchema,
  GcsParamsSchema,
  GcsSinkStreamSchema,
  GcsStreamSchema,
} from './gcs-schemas.js'
import { VERSION } from './version.js'

export interface GcsProviderOptions {
  /** Use this client instead of creating one from the connection's params and credentials. */
  storage?: Storage
}

/** Google Cloud Storage: objects as streamed blobs, resumable by name, idempotent by name. */
export function createGcsProvider(options: GcsProviderOptions = {}) {
  return defineProvider({
    id: 'gcs',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Google Cloud Storage',
    description: 'Objects in a Cloud Storage bucket as blobs',
    credentials: GcsCredentialsSchema,
    params: GcsParamsSchema,
    source: {
      data: 'blob',
      stream: GcsStreamSchema,
      context: GcsContextSchema,
      incremental: true,
      ordering: 'object name (UTF-8 binary order)',
      partition: true,
    },
    sink: { data: 'blob', stream: GcsSinkStreamSchema, idempotentBy: 'object name' },
    discover: true,
    classifyError: classifyGcsError,
    async connect(input) {
      return GcsConnection.open(input, options.storage)
    },
  })
}

export const gcsProvider = createGcsProvider()

export type GcsProvider = typeof gcsProvider

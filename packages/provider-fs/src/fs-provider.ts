import { resolve } from 'node:path'
import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import { FsConnection } from './fs-connection.js'
import { classifyFsError } from './fs-errors.js'
import {
  FsContextSchema,
  FsCredentialsSchema,
  FsParamsSchema,
  FsSinkStreamSchema,
  FsStreamSchema,
} from './fs-schemas.js'
import { VERSION } from './version.js'

export interface FsProviderOptions {
  /** What a relative `params.root` is resolved against. Default: the process working directory. */
  baseDir?: string
  /** Blobs written at once within one batch. Default 8. */
  writeConcurrency?: number
  /** The longest JSONL line read or written, in bytes. Default 64 MiB. */
  maxLineBytes?: number
}

/** The `fs` provider: a local directory, files as blobs and JSON Lines files as documents. */
export function createFsProvider(options: FsProviderOptions = {}) {
  const writeConcurrency = Math.max(1, options.writeConcurrency ?? 8)
  const maxLineBytes = Math.max(1024, options.maxLineBytes ?? 64 * 1024 * 1024)
  return defineProvider({
    id: 'fs',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Local directory',
    description:
      'Files under a local directory as blobs, and JSON Lines files as documents. Needs no server.',
    credentials: FsCredentialsSchema,
    params: FsParamsSchema,
    source: {
      data: ['blob', 'document'],
      stream: FsStreamSchema,
      context: FsContextSchema,
      incremental: true,
      partition: true,
      ordering:
        'blob: file key (path relative to root), byte-wise; document: line (byte offset) in the JSONL file',
      dataKindOf: (stream) => stream.kind,
    },
    sink: {
      data: ['blob', 'document'],
      stream: FsSinkStreamSchema,
      idempotentBy:
        'blob: file key (same key overwrites, atomically); document: document id (an id already in the file is not appended again)',
      dataKindOf: (stream) => stream.kind,
    },
    discover: true,
    classifyError: classifyFsError,
    async connect({ params }, { logger }) {
      return new FsConnection({
        root: resolve(options.baseDir ?? process.cwd(), params.root),
        readOnly: params.readOnly === true,
        writeConcurrency,
        maxLineBytes,
        logger,
      })
    },
  })
}

export type FsProvider = ReturnType<typeof createFsProvider>

/** The `fs` provider with default options. */
export const fsProvider: FsProvider = createFsProvider()

import {
  type Data,
  type DocumentData,
  describeItem,
  ProviderError,
  raceAbort,
  type WriteFailure,
  type WriteResult,
} from '@nvisy/provider-core'
import { type AnyBulkWriteOperation, BSON, type Db, type Document } from 'mongodb'
import { fromDocumentData, idFromString } from './mongodb-documents.js'
import { classifyMongoError, DOCUMENT_ERROR_CODES } from './mongodb-errors.js'
import type { MongoSinkStream } from './mongodb-schemas.js'

const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

interface BulkError {
  name?: string
  code?: unknown
  writeErrors?: unknown
  writeConcernError?: unknown
  err?: unknown
}

interface WriteErrorLike {
  index: number
  code: number
  errmsg?: string
  err?: { index: number; code: number; errmsg?: string }
}

function writeErrorsOf(error: BulkError): WriteErrorLike[] {
  const list = error.writeErrors
  if (list === undefined) return []
  const entries = (Array.isArray(list) ? list : [list]) as WriteErrorLike[]
  return entries.map((entry) => (entry.err ? entry.err : entry))
}

function documentError(item: Data, code: number, message: string): ProviderError {
  return new ProviderError({
    kind: 'data',
    message: `${describeItem(item)}: MongoDB refused the document (code ${code}): ${message}`,
    code: String(code),
  })
}

/**
 * Upsert documents by `_id` with one unordered bulkWrite of replaceOne operations. A
 * document the server refuses (duplicate key on a unique index, validation, too large) is
 * reported in `failed` with its batch index; any other error fails the whole batch.
 */
export async function writeDocuments(
  db: Db,
  stream: MongoSinkStream,
  batch: readonly Data[],
  signal: AbortSignal,
): Promise<WriteResult> {
  const mode = stream.idMode ?? 'auto'
  const failed: WriteFailure[] = []
  const operations: AnyBulkWriteOperation<Document>[] = []
  const positions: number[] = []
  for (let index = 0; index < batch.length; index++) {
    const item = batch[index]!
    try {
      const doc = fromDocumentData(item as DocumentData, mode)
      operations.push({ replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true } })
      positions.push(index)
    } catch (error) {
      failed.push({ index, error: error as ProviderError })
    }
  }
  if (operations.length === 0) return { written: 0, failed }
  const collection = db.collection(stream.collection)
  let refused = 0
  try {
    await raceAbort(collection.bulkWrite(operations, { ordered: false }), signal)
  } catch (raw) {
    const error = raw as BulkError
    const writeErrors = writeErrorsOf(error)
    if (writeErrors.length === 0) {
      if (isTooLarge(raw))
        return writeWithoutOversized(db, stream, batch, signal, failed, operations, positions)
      throw raw
    }
    if (error.writeConcernError || error.err) {
      // Written but not acknowledged as the write concern asked: replaying the batch is safe.
      const concern = classifyMongoError(raw)
      if (concern && concern.kind !== 'data') throw raw
    }
    for (const writeError of writeErrors) {
      if (!DOCUMENT_ERROR_CODES.has(writeError.code)) throw raw
    }
    for (const writeError of writeErrors) {
      const index = positions[writeError.index]!
      failed.push({
        index,
        error: documentError(batch[index]!, writeError.code, writeError.errmsg ?? 'write error'),
      })
      refused++
    }
  }
  failed.sort((a, b) => a.index - b.index)
  return { written: operations.length - refused, failed }
}

function isTooLarge(error: unknown): boolean {
  const message = (error as { message?: unknown })?.message
  return typeof message === 'string' && /larger than the maximum|too large/i.test(message)
}

/** The driver refused the batch for an oversized document: fail those alone and write the rest. */
async function writeWithoutOversized(
  db: Db,
  stream: MongoSinkStream,
  batch: readonly Data[],
  signal: AbortSignal,
  failed: WriteFailure[],
  operations: AnyBulkWriteOperation<Document>[],
  positions: number[],
): Promise<WriteResult> {
  const keep: Data[] = []
  const keepPositions: number[] = []
  operations.forEach((operation, i) => {
    const doc = (operation as { replaceOne: { replacement: Document } }).replaceOne.replacement
    const index = positions[i]!
    if (BSON.calculateObjectSize(doc) > MAX_DOCUMENT_BYTES) {
      failed.push({
        index,
        error: documentError(batch[index]!, 10334, 'the document is larger than 16 MiB'),
      })
    } else {
      keep.push(batch[index]!)
      keepPositions.push(index)
    }
  })
  if (keep.length === operations.length)
    throw new ProviderError({ kind: 'internal', message: 'MongoDB refused the batch as too large' })
  const rest = await writeDocuments(db, stream, keep, signal)
  for (const failure of rest.failed)
    failed.push({ index: keepPositions[failure.index]!, error: failure.error })
  failed.sort((a, b) => a.index - b.index)
  return { written: rest.written, failed }
}

/** Delete documents by id (`data.id` form); an id already absent counts as written. */
export async function deleteDocuments(
  db: Db,
  stream: MongoSinkStream,
  ids: readonly string[],
  signal: AbortSignal,
): Promise<WriteResult> {
  if (ids.length === 0) return { written: 0, failed: [] }
  const mode = stream.idMode ?? 'auto'
  const values = ids.map((id) => idFromString(id, mode))
  await raceAbort(
    db.collection(stream.collection).deleteMany({ _id: { $in: values } } as Document),
    signal,
  )
  return { written: ids.length, failed: [] }
}

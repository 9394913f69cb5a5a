// The sink's prepare: make sure the collection exists (or refuse with create 'never') and,
// when the documents' _id is not the source's primary key, that a unique index on the key's
// fields exists, so the key stays unique in MongoDB as it was in the source.
import {
  type PrepareOptions,
  type PrepareResult,
  ProviderError,
  raceAbort,
  type StreamSchema,
} from '@nvisy/provider-core'
import type { Db, Document } from 'mongodb'
import type { MongoSinkStream } from './mongodb-schemas.js'

/** The name of the unique index made from a source's primary key. */
export const KEY_INDEX_NAME = 'nvisy_primary_key'

const NAMESPACE_EXISTS = 48

/**
 * The key fields to index: the source's primary key, unless the converted document's id is
 * already that key (a single `id` column becomes the document id; `_id` is the id).
 */
export function keyIndexFields(
  stream: MongoSinkStream,
  schema: StreamSchema | undefined,
): string[] | undefined {
  if (stream.keyIndex === false || !schema || schema.primaryKey.length === 0) return undefined
  const key = schema.primaryKey
  if (key.length === 1 && (key[0] === 'id' || key[0] === '_id')) return undefined
  for (const field of key) {
    if (field.includes('.') || field.startsWith('$') || field.includes('\u0000'))
      throw new ProviderError({
        kind: 'config',
        operation: 'prepare',
        stream: stream.collection,
        message: `primary key column ${JSON.stringify(field)} cannot be indexed as a top-level MongoDB field (a name with '.' or a leading '$' is a path or an operator); set keyIndex: false on the sink to go without the index`,
      })
  }
  return key
}

function sameKey(index: Document, fields: string[]): boolean {
  const key = index.key as Record<string, unknown> | undefined
  if (!key) return false
  const names = Object.keys(key)
  return (
    names.length === fields.length &&
    names.every((name, i) => name === fields[i] && key[name] === 1)
  )
}

export async function prepareCollection(
  db: Db,
  stream: MongoSinkStream,
  options: PrepareOptions,
): Promise<PrepareResult> {
  const { signal, dryRun = false } = options
  const name = stream.collection
  const fields = keyIndexFields(stream, options.schema)
  const found = await raceAbort(db.listCollections({ name }, { nameOnly: true }).toArray(), signal)
  const existed = found.length > 0
  const actions: string[] = []
  if (!existed) {
    if ((stream.create ?? 'ifMissing') === 'never')
      throw new ProviderError({
        kind: 'not_found',
        operation: 'prepare',
        stream: name,
        message: `collection ${JSON.stringify(name)} does not exist in database ${JSON.stringify(db.databaseName)} and the sink's create is 'never' (create it, or set create: 'ifMissing')`,
      })
    actions.push(`db.createCollection(${JSON.stringify(name)})`)
    if (!dryRun) {
      try {
        await raceAbort(db.createCollection(name), signal)
      } catch (error) {
        // Created meanwhile by another run: what we wanted.
        if ((error as { code?: unknown }).code !== NAMESPACE_EXISTS) throw error
      }
    }
  }
  if (fields) {
    const present =
      existed &&
      (await raceAbort(db.collection(name).listIndexes().toArray(), signal)).some(
        (index) => sameKey(index, fields) && index.unique === true,
      )
    if (!present) {
      const spec = Object.fromEntries(fields.map((field) => [field, 1 as const]))
      actions.push(
        `db.getCollection(${JSON.stringify(name)}).createIndex(${JSON.stringify(spec)}, { unique: true, name: ${JSON.stringify(KEY_INDEX_NAME)} })`,
      )
      if (!dryRun)
        await raceAbort(
          db.collection(name).createIndex(spec, { unique: true, name: KEY_INDEX_NAME }),
          signal,
        )
    }
  }
  return { existed, actions }
}

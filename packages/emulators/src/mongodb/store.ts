// In-memory databases and collections: documents kept as the driver sent them, an _id
// index, unique secondary indexes, optional query validators, and mingo for filters.
import { ObjectId } from 'bson'
import { Context, Query } from 'mingo'
import {
  compareValues,
  type Doc,
  describeValue,
  getPath,
  indexKey,
  sortComparator,
  toNumber,
  toView,
} from './bson-values.js'
import { CommandError, failedToParse, WriteError } from './command-error.js'

export interface IndexSpec {
  name: string
  key: Doc
  unique?: boolean
  sparse?: boolean
  [option: string]: unknown
}

const TYPE_ALIASES: Record<string, (value: unknown) => boolean> = {
  double: (v) => typeof v === 'number',
  number: (v) => typeof v === 'number',
  decimal: (v) => typeof v === 'number',
  int: (v) => typeof v === 'number' && Number.isInteger(v),
  long: (v) => typeof v === 'number' && Number.isInteger(v),
  string: (v) => typeof v === 'string',
  object: (v) =>
    v !== null &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    !(v instanceof Date) &&
    !(v instanceof RegExp) &&
    (v as { _bsontype?: string })._bsontype === undefined,
  array: (v) => Array.isArray(v),
  binData: (v) => v instanceof Uint8Array || (v as { _bsontype?: string })?._bsontype === 'Binary',
  undefined: (v) => v === undefined,
  objectId: (v) => (v as { _bsontype?: string })?._bsontype === 'ObjectId',
  bool: (v) => typeof v === 'boolean',
  date: (v) => v instanceof Date,
  null: (v) => v === null,
  regex: (v) => v instanceof RegExp || (v as { _bsontype?: string })?._bsontype === 'BSONRegExp',
  timestamp: (v) => (v as { _bsontype?: string })?._bsontype === 'Timestamp',
  minKey: (v) => (v as { _bsontype?: string })?._bsontype === 'MinKey',
  maxKey: (v) => (v as { _bsontype?: string })?._bsontype === 'MaxKey',
}
const TYPE_NUMBERS: Record<number, string> = {
  1: 'double',
  2: 'string',
  3: 'object',
  4: 'array',
  5: 'binData',
  6: 'undefined',
  7: 'objectId',
  8: 'bool',
  9: 'date',
  10: 'null',
  11: 'regex',
  16: 'int',
  17: 'timestamp',
  18: 'long',
  19: 'decimal',
  [-1]: 'minKey',
  127: 'maxKey',
}

function typePredicate(spec: unknown): (value: unknown) => boolean {
  const names = (Array.isArray(spec) ? spec : [spec]).map((entry) => {
    const name = typeof entry === 'number' ? TYPE_NUMBERS[entry] : String(entry)
    const test = name === undefined ? undefined : TYPE_ALIASES[name]
    if (!test) throw new CommandError(2, 'BadValue', `Unknown type name alias: ${String(entry)}`)
    return test
  })
  return (value) => names.some((test) => test(value))
}

/** mingo's own $type knows no objectId/binData/timestamp: filters use this one instead. */
export const QUERY_CONTEXT = Context.init({
  query: {
    $bsonType: (selector: string, spec: unknown) => {
      const test = typePredicate(spec)
      return (obj: Doc) => {
        const value = getPath(obj, selector)
        if (value === undefined) return false
        if (test(value)) return true
        return Array.isArray(value) && value.some((element) => test(element))
      }
    },
  } as never,
})

function rewriteTypeOperator(filter: unknown): unknown {
  if (Array.isArray(filter)) return filter.map(rewriteTypeOperator)
  if (filter === null || typeof filter !== 'object') return filter
  if ((filter as { _bsontype?: string })._bsontype !== undefined) return filter
  if (filter instanceof Date || filter instanceof RegExp) return filter
  const out: Doc = {}
  for (const [key, value] of Object.entries(filter as Doc)) {
    out[key === '$type' ? '$bsonType' : key] = rewriteTypeOperator(value)
  }
  return out
}

/** A compiled filter over stored documents. */
export function compileFilter(filter: Doc | undefined): (doc: Doc) => boolean {
  if (!filter || Object.keys(filter).length === 0) return () => true
  let query: Query
  try {
    query = new Query(rewriteTypeOperator(toView(filter)) as Doc, { context: QUERY_CONTEXT })
  } catch (error) {
    throw new CommandError(2, 'BadValue', (error as Error).message)
  }
  return (doc) => query.test(toView(doc) as Doc)
}

function isOperatorObject(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  if ((value as { _bsontype?: string })._bsontype !== undefined) return false
  if (value instanceof Date || value instanceof RegExp) return false
  return Object.keys(value).some((key) => key.startsWith('$'))
}

/** The _id of an equality filter `{ _id: value }`, for an index lookup. */
export function equalityId(filter: Doc | undefined): { id: unknown } | undefined {
  if (!filter) return undefined
  const keys = Object.keys(filter)
  if (keys.length !== 1 || keys[0] !== '_id') return undefined
  const value = filter._id
  if (isOperatorObject(value)) {
    const ops = Object.keys(value as Doc)
    if (ops.length === 1 && ops[0] === '$eq') return { id: (value as Doc).$eq }
    return undefined
  }
  if (value instanceof RegExp || Array.isArray(value)) return undefined
  return { id: value }
}

export class Collection {
  readonly docs = new Map<string, Doc>()
  readonly indexes: IndexSpec[] = [{ name: '_id_', key: { _id: 1 } }]
  /** index name -> index key of the indexed fields -> _id index key */
  private readonly unique = new Map<string, Map<string, string>>()
  validator: Doc | undefined
  private validatorTest: ((doc: Doc) => boolean) | undefined
  readonly uuid = new ObjectId()

  constructor(
    readonly db: string,
    readonly name: string,
  ) {}

  get ns(): string {
    return `${this.db}.${this.name}`
  }

  setValidator(validator: Doc | undefined): void {
    this.validator = validator
    this.validatorTest =
      validator && Object.keys(validator).length > 0 ? compileFilter(validator) : undefined
  }

  /** Documents matching a filter, in natural (insertion) order. */
  match(filter: Doc | undefined): Doc[] {
    const byId = equalityId(filter)
    if (byId) {
      const doc = this.docs.get(indexKey(byId.id))
      return doc ? [doc] : []
    }
    const all = [...this.docs.values()]
    if (!filter || Object.keys(filter).length === 0) return all
    const test = compileFilter(filter)
    return all.filter(test)
  }

  find(options: { filter?: Doc; sort?: Doc; skip?: number; limit?: number }): Doc[] {
    let docs = this.match(options.filter)
    const comparator = options.sort ? sortComparator(options.sort) : undefined
    if (comparator) docs.sort(comparator)
    if (options.skip) docs = docs.slice(options.skip)
    if (options.limit) docs = docs.slice(0, options.limit)
    return docs
  }

  private uniqueKeys(doc: Doc): { index: IndexSpec; key: string }[] {
    const keys: { index: IndexSpec; key: string }[] = []
    for (const index of this.indexes) {
      if (!index.unique) continue
      const fields = Object.keys(index.key)
      const values = fields.map((field) => getPath(doc, field))
      if (index.sparse && values.every((v) => v === undefined)) continue
      keys.push({ index, key: values.map((v) => indexKey(v)).join('\u0000') })
    }
    return keys
  }

  private duplicateKey(index: IndexSpec, doc: Doc): WriteError {
    const keyValue: Doc = {}
    for (const field of Object.keys(index.key)) keyValue[field] = getPath(doc, field) ?? null
    const shown = Object.entries(keyValue)
      .map(([field, value]) => `${field}: ${describeValue(value)}`)
      .join(', ')
    return new WriteError(
      11000,
      `E11000 duplicate key error collection: ${this.ns} index: ${index.name} dup key: { ${shown} }`,
      { keyPattern: index.key, keyValue },
    )
  }

  private validate(doc: Doc): void {
    if (this.validatorTest && !this.validatorTest(doc)) {
      throw new WriteError(121, 'Document failed validation', {
        errInfo: {
          failingDocumentId: doc._id,
          details: { operatorName: '$and', schemaRulesNotSatisfied: [] },
        },
      })
    }
  }

  /** Check a new version of a document against the unique indexes; `previous` is its old _id key. */
  private checkUnique(
    doc: Doc,
    idKey: string,
    previous: string | undefined,
  ): { index: IndexSpec; key: string }[] {
    if (previous === undefined && this.docs.has(idKey))
      throw this.duplicateKey(this.indexes[0]!, doc)
    const keys = this.uniqueKeys(doc)
    for (const { index, key } of keys) {
      const owner = this.unique.get(index.name)?.get(key)
      if (owner !== undefined && owner !== (previous ?? idKey)) throw this.duplicateKey(index, doc)
    }
    return keys
  }

  insert(input: Doc): Doc {
    checkId(input._id)
    const doc: Doc =
      input._id === undefined ? { _id: new ObjectId(), ...input } : moveIdFirst(input)
    this.validate(doc)
    const idKey = indexKey(doc._id)
    const keys = this.checkUnique(doc, idKey, undefined)
    this.docs.set(idKey, doc)
    for (const { index, key } of keys) this.unique.get(index.name)!.set(key, idKey)
    return doc
  }

  replace(previous: Doc, next: Doc): void {
    const idKey = indexKey(previous._id)
    if (compareValues(previous._id, next._id) !== 0 || next._id === undefined) {
      throw new WriteError(
        66,
        `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${describeValue(next._id)}`,
      )
    }
    this.validate(next)
    const keys = this.checkUnique(next, idKey, idKey)
    for (const { index, key } of this.uniqueKeys(previous)) this.unique.get(index.name)!.delete(key)
    this.docs.set(idKey, next)
    for (const { index, key } of keys) this.unique.get(index.name)!.set(key, idKey)
  }

  remove(doc: Doc): void {
    const idKey = indexKey(doc._id)
    for (const { index, key } of this.uniqueKeys(doc)) this.unique.get(index.name)!.delete(key)
    this.docs.delete(idKey)
  }

  createIndex(spec: IndexSpec): boolean {
    const existing = this.indexes.find((index) => index.name === spec.name)
    if (existing) {
      if (
        JSON.stringify(toView(existing.key)) !== JSON.stringify(toView(spec.key)) ||
        !!existing.unique !== !!spec.unique
      ) {
        throw new CommandError(
          86,
          'IndexKeySpecsConflict',
          `An existing index has the same name as the requested index. Requested index: ${JSON.stringify(toView(spec))}, existing index: ${JSON.stringify(toView(existing))}`,
        )
      }
      return false
    }
    const sameKey = this.indexes.find(
      (index) => JSON.stringify(toView(index.key)) === JSON.stringify(toView(spec.key)),
    )
    if (sameKey) {
      if (!!sameKey.unique === !!spec.unique) return false
      throw new CommandError(
        85,
        'IndexOptionsConflict',
        `An equivalent index already exists with a different name and options. Requested index: ${JSON.stringify(toView(spec))}, existing index: ${JSON.stringify(toView(sameKey))}`,
      )
    }
    if (spec.unique) {
      const entries = new Map<string, string>()
      this.indexes.push(spec)
      try {
        for (const [idKey, doc] of this.docs) {
          for (const { index, key } of this.uniqueKeys(doc)) {
            if (index !== spec) continue
            if (entries.has(key)) {
              const error = this.duplicateKey(spec, doc)
              throw new CommandError(
                11000,
                'DuplicateKey',
                `Index build failed: ${this.uuid.toHexString()}: Collection ${this.ns} ( ${this.uuid.toHexString()} ) :: caused by :: ${error.message}`,
                error.details,
              )
            }
            entries.set(key, idKey)
          }
        }
      } catch (error) {
        this.indexes.pop()
        throw error
      }
      this.unique.set(spec.name, entries)
      return true
    }
    this.indexes.push(spec)
    return true
  }

  dropIndex(name: string): void {
    if (name === '_id_') throw new CommandError(72, 'InvalidOptions', 'cannot drop _id index')
    const at = this.indexes.findIndex((index) => index.name === name)
    if (at < 0) throw new CommandError(27, 'IndexNotFound', `index not found with name [${name}]`)
    this.indexes.splice(at, 1)
    this.unique.delete(name)
  }
}

function checkId(id: unknown): void {
  if (Array.isArray(id)) throw new WriteError(53, `The '_id' value cannot be of type array`)
  if (id instanceof RegExp) throw new WriteError(53, `The '_id' value cannot be of type regex`)
}

function moveIdFirst(doc: Doc): Doc {
  if (Object.keys(doc)[0] === '_id') return doc
  const { _id, ...rest } = doc
  return { _id, ...rest }
}

export class Database {
  readonly collections = new Map<string, Collection>()
  constructor(readonly name: string) {}

  get(name: string): Collection | undefined {
    return this.collections.get(name)
  }

  getOrCreate(name: string): { collection: Collection; created: boolean } {
    let collection = this.collections.get(name)
    if (collection) return { collection, created: false }
    if (name.length === 0 || name.includes('$') || name.startsWith('system.')) {
      throw new CommandError(
        73,
        'InvalidNamespace',
        `Invalid collection name: ${this.name}.${name}`,
      )
    }
    collection = new Collection(this.name, name)
    this.collections.set(name, collection)
    return { collection, created: true }
  }
}

export class Store {
  readonly databases = new Map<string, Database>()

  db(name: string): Database {
    if (!/^[^/\\. "$*<>:|?]{1,63}$/.test(name)) {
      throw new CommandError(73, 'InvalidNamespace', `Invalid database name: '${name}'`)
    }
    let db = this.databases.get(name)
    if (!db) {
      db = new Database(name)
      this.databases.set(name, db)
    }
    return db
  }
}

/** Parse a projection into an include/exclude plan (no positional or $slice operators). */
export function compileProjection(projection: Doc | undefined): ((doc: Doc) => Doc) | undefined {
  if (!projection || Object.keys(projection).length === 0) return undefined
  const include: string[] = []
  const exclude: string[] = []
  let keepId = true
  for (const [path, raw] of Object.entries(projection)) {
    if (
      raw !== null &&
      typeof raw === 'object' &&
      (raw as { _bsontype?: string })._bsontype === undefined
    ) {
      throw failedToParse(`projection operators are not supported by the emulator: ${path}`)
    }
    const on = typeof raw === 'boolean' ? raw : toNumber(raw) !== 0
    if (path === '_id') {
      keepId = on
      continue
    }
    ;(on ? include : exclude).push(path)
  }
  if (include.length > 0 && exclude.length > 0) {
    throw new CommandError(
      31254,
      'Location31254',
      `Cannot do exclusion on field ${exclude[0]} in inclusion projection`,
    )
  }
  if (include.length > 0) {
    return (doc) => {
      const out: Doc = {}
      if (keepId && doc._id !== undefined) out._id = doc._id
      for (const path of include) copyPath(doc, out, path.split('.'))
      return out
    }
  }
  return (doc) => {
    let out: Doc = { ...doc }
    if (!keepId) delete out._id
    for (const path of exclude) out = removePath(out, path.split('.'))
    return out
  }
}

function isPlainObject(value: unknown): value is Doc {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(value instanceof Date) &&
    !(value instanceof RegExp) &&
    (value as { _bsontype?: string })._bsontype === undefined
  )
}

function copyPath(source: Doc, target: Doc, parts: string[]): void {
  const [head, ...rest] = parts as [string, ...string[]]
  if (!(head in source)) return
  const value = source[head]
  if (rest.length === 0) {
    target[head] = value
    return
  }
  if (isPlainObject(value)) {
    const child = isPlainObject(target[head]) ? (target[head] as Doc) : {}
    copyPath(value, child, rest)
    target[head] = child
  } else if (Array.isArray(value)) {
    target[head] = value.filter(isPlainObject).map((element) => {
      const child: Doc = {}
      copyPath(element, child, rest)
      return child
    })
  }
}

function removePath(doc: Doc, parts: string[]): Doc {
  const [head, ...rest] = parts as [string, ...string[]]
  if (!(head in doc)) return doc
  const out = { ...doc }
  if (rest.length === 0) {
    delete out[head]
    return out
  }
  const value = out[head]
  if (isPlainObject(value)) out[head] = removePath(value, rest)
  else if (Array.isArray(value))
    out[head] = value.map((v) => (isPlainObject(v) ? removePath(v, rest) : v))
  return out
}

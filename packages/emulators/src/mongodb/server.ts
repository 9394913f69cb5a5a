// A MongoDB wire-protocol server on an in-memory store, for tests of code that uses the
// unmodified official driver. It behaves as a standalone mongod 7.0 (no replica set, so
// no change streams and no real transactions).
import { createServer, type Server, type Socket } from 'node:net'
import { Binary, BSON, type Document, Long, ObjectId } from 'bson'
import { Aggregator } from 'mingo'
import { type Doc, indexKey, toNumber, toView } from './bson-values.js'
import { badValue, CommandError, typeMismatch, WriteError } from './command-error.js'
import { authenticationFailed, ScramConversation, ScramUsers } from './scram.js'
import {
  type Collection,
  compileProjection,
  equalityId,
  type IndexSpec,
  QUERY_CONTEXT,
  Store,
} from './store.js'
import { applyUpdate, checkUpdate, isOperatorUpdate } from './update.js'
import { encodeReply, parseMessage, type Request } from './wire.js'

export interface MongoEmulatorOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string
  /**
   * Require SCRAM-SHA-256 authentication with these users (name -> password). Without it
   * every command runs unauthenticated, and any authentication attempt fails (code 18), as
   * on a mongod that has no users.
   */
  users?: Record<string, string>
}

export interface MongoEmulator {
  /** A connection string for the driver (no credentials in it). */
  url: string
  port: number
  host: string
  close(): Promise<void>
}

const MAX_BSON_SIZE = 16 * 1024 * 1024
const DEFAULT_BATCH = 101
const BATCH_BYTES = MAX_BSON_SIZE - 64 * 1024

const NO_AUTH_COMMANDS = new Set([
  'hello',
  'ismaster',
  'isMaster',
  'saslStart',
  'saslContinue',
  'ping',
  'buildInfo',
  'buildinfo',
  'endSessions',
  'logout',
])

interface ServerCursor {
  ns: string
  docs: Doc[]
  position: number
  project: ((doc: Doc) => Doc) | undefined
}

interface ConnectionState {
  id: number
  user: string | undefined
  conversation: ScramConversation | undefined
}

function int(value: unknown, fallback: number): number {
  if (value === undefined || value === null) return fallback
  const n = toNumber(value)
  return Number.isFinite(n) ? Math.trunc(n) : fallback
}

function bool(value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback
  if (typeof value === 'boolean') return value
  return toNumber(value) !== 0
}

function asDoc(value: unknown, field: string): Doc | undefined {
  if (value === undefined || value === null) return undefined
  if (
    typeof value !== 'object' ||
    Array.isArray(value) ||
    (value as { _bsontype?: string })._bsontype
  ) {
    throw typeMismatch(`BSON field '${field}' is the wrong type, expected type 'object'`)
  }
  return value as Doc
}

function collectionName(command: Document, name: string): string {
  const value = command[name]
  if (typeof value !== 'string') {
    throw new CommandError(
      73,
      'InvalidNamespace',
      `collection name has invalid type ${typeof value}`,
    )
  }
  return value
}

function writeErrorEntry(index: number, error: unknown): Doc {
  if (error instanceof WriteError)
    return { index, code: error.code, errmsg: error.message, ...error.details }
  if (error instanceof CommandError) return { index, code: error.code, errmsg: error.message }
  return { index, code: 1, errmsg: (error as Error).message ?? String(error) }
}

export class MongoEmulatorServer {
  readonly store = new Store()
  private readonly cursors = new Map<string, ServerCursor>()
  private nextCursorId = 1n
  private nextConnectionId = 1
  private readonly users: ScramUsers | undefined
  private readonly sockets = new Set<Socket>()
  private server: Server | undefined

  constructor(private readonly options: MongoEmulatorOptions = {}) {
    this.users = options.users ? new ScramUsers(options.users) : undefined
  }

  async listen(): Promise<MongoEmulator> {
    const host = this.options.host ?? '127.0.0.1'
    const server = createServer((socket) => this.accept(socket))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.options.port ?? 0, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const urlHost = host.includes(':') ? `[${host}]` : host
    return {
      url: `mongodb://${urlHost}:${port}/?directConnection=true`,
      port,
      host,
      close: () => this.close(),
    }
  }

  async close(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = undefined
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket)
    socket.setNoDelay(true)
    const state: ConnectionState = {
      id: this.nextConnectionId++,
      user: undefined,
      conversation: undefined,
    }
    let buffered: Buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      const replies: Buffer[] = []
      while (buffered.length >= 4) {
        const length = buffered.readInt32LE(0)
        if (length < 16 || length > 48_000_000 + 1024) {
          socket.destroy()
          return
        }
        if (buffered.length < length) break
        const message = buffered.subarray(0, length)
        buffered = buffered.subarray(length)
        let request: Request
        try {
          request = parseMessage(message)
        } catch {
          socket.destroy()
          return
        }
        const reply = this.run(request.command, state)
        if (!request.noReply) replies.push(encodeReply(request, reply))
      }
      if (buffered.length === 0) buffered = Buffer.alloc(0)
      if (replies.length > 0)
        socket.write(replies.length === 1 ? replies[0]! : Buffer.concat(replies))
    })
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.sockets.delete(socket))
  }

  /** Run one command and return its reply document (errors become `ok: 0` replies). */
  run(command: Document, state: ConnectionState): Document {
    const name = Object.keys(command)[0] ?? ''
    try {
      if (this.users && state.user === undefined && !NO_AUTH_COMMANDS.has(name)) {
        throw new CommandError(13, 'Unauthorized', `Command ${name} requires authentication`)
      }
      return this.dispatch(name, command, state)
    } catch (error) {
      if (error instanceof CommandError) return error.toReply()
      if (error instanceof WriteError) {
        return { ok: 0, errmsg: error.message, code: error.code, ...error.details }
      }
      return {
        ok: 0,
        errmsg: (error as Error)?.message ?? String(error),
        code: 1,
        codeName: 'InternalError',
      }
    }
  }

  private dispatch(name: string, command: Document, state: ConnectionState): Document {
    const dbName = typeof command.$db === 'string' ? command.$db : 'test'
    switch (name) {
      case 'hello':
      case 'ismaster':
      case 'isMaster':
        return this.hello(command, state)
      case 'ping':
      case 'endSessions':
      case 'killAllSessions':
      case 'killSessions':
      case 'refreshSessions':
      case 'abortTransaction':
      case 'commitTransaction':
      case 'logout':
        return { ok: 1 }
      case 'buildInfo':
      case 'buildinfo':
        return {
          version: '7.0.0',
          gitVersion: 'nvisy-emulator',
          versionArray: [7, 0, 0, 0],
          bits: 64,
          maxBsonObjectSize: MAX_BSON_SIZE,
          ok: 1,
        }
      case 'whatsmyuri':
        return { you: '127.0.0.1:0', ok: 1 }
      case 'connectionStatus':
        return {
          authInfo: {
            authenticatedUsers: state.user ? [{ user: state.user, db: 'admin' }] : [],
            authenticatedUserRoles: [],
          },
          ok: 1,
        }
      case 'saslStart':
        return this.saslStart(command, state)
      case 'saslContinue':
        return this.saslContinue(command, state)
      case 'insert':
        return this.insert(dbName, command)
      case 'update':
        return this.update(dbName, command)
      case 'delete':
        return this.delete(dbName, command)
      case 'find':
        return this.find(dbName, command)
      case 'getMore':
        return this.getMore(command)
      case 'killCursors':
        return this.killCursors(command)
      case 'count':
        return this.count(dbName, command)
      case 'distinct':
        return this.distinct(dbName, command)
      case 'aggregate':
        return this.aggregate(dbName, command)
      case 'create':
        return this.create(dbName, command)
      case 'collMod':
        return this.collMod(dbName, command)
      case 'createIndexes':
        return this.createIndexes(dbName, command)
      case 'listIndexes':
        return this.listIndexes(dbName, command)
      case 'dropIndexes':
        return this.dropIndexes(dbName, command)
      case 'listCollections':
        return this.listCollections(dbName, command)
      case 'drop':
        return this.drop(dbName, command)
      case 'dropDatabase':
        this.store.databases.delete(dbName)
        return { dropped: dbName, ok: 1 }
      case 'listDatabases':
        return this.listDatabases(command)
    }
    throw new CommandError(59, 'CommandNotFound', `no such command: '${name}'`)
  }

  private hello(command: Document, state: ConnectionState): Document {
    const reply: Document = {
      helloOk: true,
      ismaster: true,
      isWritablePrimary: true,
      maxBsonObjectSize: MAX_BSON_SIZE,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: state.id,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
    }
    if (typeof command.saslSupportedMechs === 'string') {
      reply.saslSupportedMechs = ['SCRAM-SHA-256']
    }
    reply.ok = 1
    return reply
  }

  private saslStart(command: Document, state: ConnectionState): Document {
    if (!this.users || command.mechanism !== 'SCRAM-SHA-256') throw authenticationFailed()
    const conversation = new ScramConversation(this.users)
    const payload = command.payload as Binary
    const reply = conversation.start(Buffer.from(payload.buffer))
    state.conversation = conversation
    return { conversationId: 1, done: false, payload: new Binary(reply), ok: 1 }
  }

  private saslContinue(command: Document, state: ConnectionState): Document {
    const conversation = state.conversation
    if (!conversation) {
      if (state.user !== undefined)
        return { conversationId: 1, done: true, payload: new Binary(Buffer.alloc(0)), ok: 1 }
      throw new CommandError(17, 'ProtocolError', 'No SASL session state found')
    }
    state.conversation = undefined
    const payload = command.payload as Binary
    const { user, reply } = conversation.finish(Buffer.from(payload.buffer))
    state.user = user
    return { conversationId: 1, done: true, payload: new Binary(reply), ok: 1 }
  }

  // ---- writes ----------------------------------------------------------------------------

  private insert(dbName: string, command: Document): Document {
    const name = collectionName(command, 'insert')
    const documents = command.documents as Doc[] | undefined
    if (!Array.isArray(documents))
      throw typeMismatch("BSON field 'insert.documents' is missing but a required field")
    const ordered = bool(command.ordered, true)
    const { collection } = this.store.db(dbName).getOrCreate(name)
    let n = 0
    const writeErrors: Doc[] = []
    for (let i = 0; i < documents.length; i++) {
      try {
        collection.insert(documents[i]!)
        n++
      } catch (error) {
        writeErrors.push(writeErrorEntry(i, error))
        if (ordered) break
      }
    }
    return writeErrors.length > 0 ? { n, writeErrors, ok: 1 } : { n, ok: 1 }
  }

  private update(dbName: string, command: Document): Document {
    const name = collectionName(command, 'update')
    const updates = command.updates as Doc[] | undefined
    if (!Array.isArray(updates))
      throw typeMismatch("BSON field 'update.updates' is missing but a required field")
    const ordered = bool(command.ordered, true)
    const db = this.store.db(dbName)
    let n = 0
    let nModified = 0
    const upserted: Doc[] = []
    const writeErrors: Doc[] = []
    for (let i = 0; i < updates.length; i++) {
      const spec = updates[i]!
      try {
        const result = this.updateOne(db.getOrCreate(name).collection, spec)
        n += result.matched
        nModified += result.modified
        if (result.upsertedId !== undefined) {
          n += 1
          upserted.push({ index: i, _id: result.upsertedId })
        }
      } catch (error) {
        if (error instanceof CommandError && !(error instanceof WriteError)) {
          writeErrors.push({ index: i, code: error.code, errmsg: error.message })
        } else {
          writeErrors.push(writeErrorEntry(i, error))
        }
        if (ordered) break
      }
    }
    const reply: Document = { n, nModified }
    if (upserted.length > 0) reply.upserted = upserted
    if (writeErrors.length > 0) reply.writeErrors = writeErrors
    reply.ok = 1
    return reply
  }

  private updateOne(
    collection: Collection,
    spec: Doc,
  ): { matched: number; modified: number; upsertedId?: unknown } {
    const filter = asDoc(spec.q, 'q') ?? {}
    const update = spec.u
    if (Array.isArray(update)) {
      throw new CommandError(
        238,
        'NotImplemented',
        'pipeline-style updates are not supported by the emulator',
      )
    }
    const modifier = asDoc(update, 'u') ?? {}
    checkUpdate(modifier)
    const operators = isOperatorUpdate(modifier)
    const multi = bool(spec.multi, false)
    if (multi && !operators)
      throw new CommandError(
        9,
        'FailedToParse',
        'multi update is not supported for replacement-style update',
      )
    const matches = collection.match(filter)
    const targets = multi ? matches : matches.slice(0, 1)
    let modified = 0
    for (const doc of targets) {
      const next = operators
        ? applyUpdate(doc, modifier, false)
        : { _id: doc._id, ...withoutId(modifier, doc._id) }
      if (indexKey(next) !== indexKey(doc)) {
        collection.replace(doc, next)
        modified++
      }
    }
    if (targets.length > 0 || !bool(spec.upsert, false))
      return { matched: targets.length, modified }
    // Upsert: the new document takes the equality fields of the filter.
    const base: Doc = {}
    const byId = equalityId(filter)
    if (byId) base._id = byId.id
    else {
      for (const [key, value] of Object.entries(filter)) {
        if (key.startsWith('$') || key.includes('.')) continue
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
          const keys = Object.keys(value)
          if (keys.some((k) => k.startsWith('$'))) {
            if (keys.length === 1 && keys[0] === '$eq') base[key] = (value as Doc).$eq
            continue
          }
        }
        base[key] = value
      }
    }
    let doc: Doc
    if (operators) {
      doc = applyUpdate(base, modifier, true)
    } else {
      if (
        modifier._id !== undefined &&
        base._id !== undefined &&
        indexKey(modifier._id) !== indexKey(base._id)
      ) {
        throw new WriteError(
          66,
          "The _id field cannot be changed in an upsert: the replacement's _id differs from the query's",
        )
      }
      doc = { ...modifier }
      if (doc._id === undefined && base._id !== undefined) doc = { _id: base._id, ...doc }
    }
    if (doc._id === undefined) doc = { _id: new ObjectId(), ...doc }
    const inserted = collection.insert(doc)
    return { matched: 0, modified: 0, upsertedId: inserted._id }
  }

  private delete(dbName: string, command: Document): Document {
    const name = collectionName(command, 'delete')
    const deletes = command.deletes as Doc[] | undefined
    if (!Array.isArray(deletes))
      throw typeMismatch("BSON field 'delete.deletes' is missing but a required field")
    const ordered = bool(command.ordered, true)
    const collection = this.store.db(dbName).get(name)
    let n = 0
    const writeErrors: Doc[] = []
    for (let i = 0; i < deletes.length; i++) {
      const spec = deletes[i]!
      try {
        if (!collection) continue
        const limit = int(spec.limit, 0)
        if (limit !== 0 && limit !== 1)
          throw new CommandError(
            9,
            'FailedToParse',
            'The limit field in delete objects must be 0 or 1',
          )
        const matches = collection.match(asDoc(spec.q, 'q') ?? {})
        for (const doc of limit === 1 ? matches.slice(0, 1) : matches) {
          collection.remove(doc)
          n++
        }
      } catch (error) {
        writeErrors.push(writeErrorEntry(i, error))
        if (ordered) break
      }
    }
    return writeErrors.length > 0 ? { n, writeErrors, ok: 1 } : { n, ok: 1 }
  }

  // ---- reads -----------------------------------------------------------------------------

  private openCursor(
    ns: string,
    docs: Doc[],
    batchSize: number,
    singleBatch: boolean,
    project?: (doc: Doc) => Doc,
  ): Document {
    const cursor: ServerCursor = { ns, docs, position: 0, project }
    const firstBatch = this.takeBatch(cursor, batchSize)
    let id = Long.ZERO
    if (!singleBatch && cursor.position < docs.length) {
      const key = this.nextCursorId++
      id = Long.fromBigInt(key)
      this.cursors.set(key.toString(), cursor)
    }
    return { cursor: { firstBatch, id, ns }, ok: 1 }
  }

  private takeBatch(cursor: ServerCursor, batchSize: number): Doc[] {
    const remaining = cursor.docs.length - cursor.position
    const wanted = batchSize > 0 ? Math.min(batchSize, remaining) : remaining
    const batch: Doc[] = []
    let bytes = 0
    while (batch.length < wanted) {
      const raw = cursor.docs[cursor.position]!
      const doc = cursor.project ? cursor.project(raw) : raw
      if (wanted > DEFAULT_BATCH || batchSize <= 0) {
        bytes += BSON.calculateObjectSize(doc)
        if (bytes > BATCH_BYTES && batch.length > 0) break
      }
      batch.push(doc)
      cursor.position++
    }
    return batch
  }

  private find(dbName: string, command: Document): Document {
    const name = collectionName(command, 'find')
    const collection = this.store.db(dbName).get(name)
    const ns = `${dbName}.${name}`
    const filter = asDoc(command.filter, 'filter')
    const sort = asDoc(command.sort, 'sort')
    const project = compileProjection(asDoc(command.projection, 'projection'))
    const skip = int(command.skip, 0)
    let limit = int(command.limit, 0)
    let singleBatch = bool(command.singleBatch, false)
    if (skip < 0) throw badValue('skip value must be non-negative')
    if (limit < 0) {
      limit = -limit
      singleBatch = true
    }
    const batchSize = int(command.batchSize, DEFAULT_BATCH)
    if (batchSize < 0) throw badValue('batchSize value must be non-negative')
    const docs = collection ? collection.find({ filter, sort, skip, limit }) : []
    if (command.batchSize !== undefined && batchSize === 0)
      return this.openCursor(ns, docs, 0, false, project)
    return this.openCursor(ns, docs, batchSize, singleBatch, project)
  }

  private getMore(command: Document): Document {
    const raw = command.getMore
    const id =
      typeof raw === 'object' && raw !== null && (raw as Long)._bsontype === 'Long'
        ? (raw as Long).toBigInt()
        : BigInt(int(raw, 0))
    const cursor = this.cursors.get(id.toString())
    if (!cursor) throw new CommandError(43, 'CursorNotFound', `cursor id ${id} not found`)
    const batchSize = int(command.batchSize, 0)
    const nextBatch = this.takeBatch(cursor, batchSize)
    const done = cursor.position >= cursor.docs.length
    if (done) this.cursors.delete(id.toString())
    return {
      cursor: { nextBatch, id: done ? Long.ZERO : Long.fromBigInt(id), ns: cursor.ns },
      ok: 1,
    }
  }

  private killCursors(command: Document): Document {
    const ids = (command.cursors as unknown[] | undefined) ?? []
    const killed: Long[] = []
    const notFound: Long[] = []
    for (const raw of ids) {
      const long = Long.fromValue(raw as Long)
      if (this.cursors.delete(long.toBigInt().toString())) killed.push(long)
      else notFound.push(long)
    }
    return {
      cursorsKilled: killed,
      cursorsNotFound: notFound,
      cursorsAlive: [],
      cursorsUnknown: [],
      ok: 1,
    }
  }

  private count(dbName: string, command: Document): Document {
    const collection = this.store.db(dbName).get(collectionName(command, 'count'))
    if (!collection) return { n: 0, ok: 1 }
    const docs = collection.find({
      filter: asDoc(command.query, 'query'),
      skip: int(command.skip, 0),
      limit: Math.abs(int(command.limit, 0)),
    })
    return { n: docs.length, ok: 1 }
  }

  private distinct(dbName: string, command: Document): Document {
    const collection = this.store.db(dbName).get(collectionName(command, 'distinct'))
    const key = command.key
    if (typeof key !== 'string') throw typeMismatch("BSON field 'distinct.key' is the wrong type")
    const seen = new Map<string, unknown>()
    for (const doc of collection ? collection.match(asDoc(command.query, 'query')) : []) {
      let value: unknown = doc
      for (const part of key.split('.'))
        value = value && typeof value === 'object' ? (value as Doc)[part] : undefined
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== undefined && !seen.has(indexKey(v))) seen.set(indexKey(v), v)
      }
    }
    return { values: [...seen.values()], ok: 1 }
  }

  private aggregate(dbName: string, command: Document): Document {
    const pipeline = command.pipeline as Doc[] | undefined
    if (!Array.isArray(pipeline))
      throw typeMismatch("BSON field 'aggregate.pipeline' is missing but a required field")
    const stages = pipeline.map((stage) => Object.keys(stage)[0])
    if (stages.includes('$changeStream')) {
      throw new CommandError(
        40573,
        'Location40573',
        'The $changeStream stage is only supported on replica sets',
      )
    }
    for (const stage of ['$out', '$merge']) {
      if (stages.includes(stage))
        throw new CommandError(238, 'NotImplemented', `${stage} is not supported by the emulator`)
    }
    const db = this.store.db(dbName)
    const target = command.aggregate
    const collection = typeof target === 'string' ? db.get(target) : undefined
    const ns = typeof target === 'string' ? `${dbName}.${target}` : `${dbName}.$cmd.aggregate`
    // mingo works on views (numbers for numeric wrappers); a view that comes out unchanged
    // maps back to its stored document, so $match/$sort/$limit keep every BSON type.
    const originals = new WeakMap<object, Doc>()
    const views: Doc[] = []
    for (const doc of collection?.docs.values() ?? []) {
      const view = toView(doc) as Doc
      originals.set(view, doc)
      views.push(view)
    }
    const viewPipeline = pipeline.map((stage) => {
      const [operator] = Object.keys(stage)
      const body = toView(stage[operator!])
      return { [operator!]: operator === '$match' ? renameType(body) : body }
    })
    let output: Doc[]
    try {
      output = new Aggregator(viewPipeline, {
        collectionResolver: (name) =>
          [...(db.get(name)?.docs.values() ?? [])].map((d) => toView(d) as Doc),
        context: QUERY_CONTEXT,
      }).run(views) as Doc[]
    } catch (error) {
      if (error instanceof CommandError) throw error
      throw new CommandError(15952, 'Location15952', (error as Error).message)
    }
    const docs = output.map((doc) => originals.get(doc) ?? doc)
    const cursorOptions = asDoc(command.cursor, 'cursor') ?? {}
    return this.openCursor(ns, docs, int(cursorOptions.batchSize, DEFAULT_BATCH), false)
  }

  // ---- catalog ---------------------------------------------------------------------------

  private create(dbName: string, command: Document): Document {
    const name = collectionName(command, 'create')
    const db = this.store.db(dbName)
    if (db.get(name))
      throw new CommandError(48, 'NamespaceExists', `Collection ${dbName}.${name} already exists.`)
    const { collection } = db.getOrCreate(name)
    collection.setValidator(asDoc(command.validator, 'validator'))
    return { ok: 1 }
  }

  private collMod(dbName: string, command: Document): Document {
    const name = collectionName(command, 'collMod')
    const collection = this.store.db(dbName).get(name)
    if (!collection)
      throw new CommandError(26, 'NamespaceNotFound', `ns does not exist: ${dbName}.${name}`)
    if (command.validator !== undefined)
      collection.setValidator(asDoc(command.validator, 'validator'))
    return { ok: 1 }
  }

  private createIndexes(dbName: string, command: Document): Document {
    const name = collectionName(command, 'createIndexes')
    const specs = command.indexes as IndexSpec[] | undefined
    if (!Array.isArray(specs) || specs.length === 0)
      throw badValue('Must specify at least one index to create')
    const { collection, created } = this.store.db(dbName).getOrCreate(name)
    const before = collection.indexes.length
    for (const spec of specs) {
      if (!spec.key || typeof spec.key !== 'object' || Object.keys(spec.key).length === 0) {
        throw new CommandError(67, 'CannotCreateIndex', 'Index keys cannot be empty.')
      }
      if (typeof spec.name !== 'string') throw typeMismatch("The field 'name' must be a string")
      collection.createIndex({
        ...spec,
        unique: bool(spec.unique, false),
        sparse: bool(spec.sparse, false),
      })
    }
    return {
      numIndexesBefore: before,
      numIndexesAfter: collection.indexes.length,
      createdCollectionAutomatically: created,
      ok: 1,
    }
  }

  private listIndexes(dbName: string, command: Document): Document {
    const name = collectionName(command, 'listIndexes')
    const collection = this.store.db(dbName).get(name)
    if (!collection)
      throw new CommandError(26, 'NamespaceNotFound', `ns does not exist: ${dbName}.${name}`)
    const docs = collection.indexes.map((index) => {
      const doc: Doc = { v: 2, key: index.key, name: index.name }
      if (index.unique) doc.unique = true
      if (index.sparse) doc.sparse = true
      return doc
    })
    return this.openCursor(`${dbName}.${name}`, docs, 0, true)
  }

  private dropIndexes(dbName: string, command: Document): Document {
    const name = collectionName(command, 'dropIndexes')
    const collection = this.store.db(dbName).get(name)
    if (!collection)
      throw new CommandError(26, 'NamespaceNotFound', `ns not found ${dbName}.${name}`)
    const before = collection.indexes.length
    const target = command.index
    const names =
      target === '*'
        ? collection.indexes.filter((index) => index.name !== '_id_').map((index) => index.name)
        : Array.isArray(target)
          ? target.map(String)
          : typeof target === 'string'
            ? [target]
            : collection.indexes
                .filter((index) => indexKey(index.key) === indexKey(target))
                .map((index) => index.name)
    if (names.length === 0) throw new CommandError(27, 'IndexNotFound', "can't find index with key")
    for (const indexName of names) collection.dropIndex(indexName)
    return { nIndexesWas: before, ok: 1 }
  }

  private listCollections(dbName: string, command: Document): Document {
    const db = this.store.databases.get(dbName)
    const filter = asDoc(command.filter, 'filter')
    const nameOnly = bool(command.nameOnly, false)
    let docs: Doc[] = [...(db?.collections.values() ?? [])].map((collection) =>
      nameOnly
        ? { name: collection.name, type: 'collection' }
        : {
            name: collection.name,
            type: 'collection',
            options: collection.validator ? { validator: collection.validator } : {},
            info: { readOnly: false, uuid: new Binary(Buffer.from(collection.uuid.id), 4) },
            idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
          },
    )
    if (filter && Object.keys(filter).length > 0) {
      const originals = new WeakMap<object, Doc>()
      const views = docs.map((doc) => {
        const view = toView(doc) as Doc
        originals.set(view, doc)
        return view
      })
      docs = new Aggregator([{ $match: toView(filter) as Doc }])
        .run(views)
        .map((v) => originals.get(v as object) ?? (v as Doc))
    }
    return this.openCursor(`${dbName}.$cmd.listCollections`, docs, 0, true)
  }

  private drop(dbName: string, command: Document): Document {
    const name = collectionName(command, 'drop')
    const db = this.store.databases.get(dbName)
    const collection = db?.get(name)
    db?.collections.delete(name)
    return { nIndexesWas: collection?.indexes.length ?? 0, ns: `${dbName}.${name}`, ok: 1 }
  }

  private listDatabases(command: Document): Document {
    const nameOnly = bool(command.nameOnly, false)
    const databases = [...this.store.databases.values()]
      .filter((db) => db.collections.size > 0)
      .map((db) =>
        nameOnly
          ? { name: db.name }
          : { name: db.name, sizeOnDisk: 8192 * db.collections.size, empty: false },
      )
    return nameOnly
      ? { databases, ok: 1 }
      : { databases, totalSize: databases.length * 8192, totalSizeMb: 0, ok: 1 }
  }
}

function withoutId(doc: Doc, id: unknown): Doc {
  if (doc._id === undefined) return doc
  if (indexKey(doc._id) !== indexKey(id)) {
    throw new WriteError(
      66,
      `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${String(doc._id)}`,
    )
  }
  const { _id, ...rest } = doc
  return rest
}

function renameType(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(renameType)
  if (value === null || typeof value !== 'object' || (value as { _bsontype?: string })._bsontype)
    return value
  if (value instanceof Date || value instanceof RegExp) return value
  const out: Doc = {}
  for (const [key, v] of Object.entries(value as Doc))
    out[key === '$type' ? '$bsonType' : key] = renameType(v)
  return out
}

/** Start an emulator; `port: 0` (the default) listens on a free port. */
export async function startMongoEmulator(
  options: MongoEmulatorOptions = {},
): Promise<MongoEmulator> {
  return new MongoEmulatorServer(options).listen()
}

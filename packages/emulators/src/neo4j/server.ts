import { createServer, type Server, type Socket } from 'node:net'
import { execute, nodeElementId, parseCypher, relElementId, type Statement } from './cypher.js'
import {
  CypherError,
  emptyStats,
  Graph,
  type NodeRecord,
  type RelRecord,
  type Stats,
  type UndoLog,
} from './graph.js'
import { chunkMessage, Decoder, Encoder, isMap, Struct, type Value } from './packstream.js'

export type Neo4jEmulatorAuth = { user: string; password: string } | { token: string }

export interface Neo4jEmulatorOptions {
  /** Default 0: a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** Credentials the server accepts (basic or bearer). Without it any credentials pass. */
  auth?: Neo4jEmulatorAuth
  /** Database names; the first is the default (home) database. Default `['neo4j']`. */
  databases?: string[]
  /** How long a transaction waits for the database lock before a transient error. Default 30 s. */
  lockTimeoutMs?: number
}

export interface EmulatedNode {
  id: bigint
  elementId: string
  labels: string[]
  properties: Record<string, Value>
}

export interface EmulatedRelationship {
  id: bigint
  elementId: string
  type: string
  start: bigint
  end: bigint
  properties: Record<string, Value>
}

/** A test's view of one database: committed and uncommitted state as stored. */
export interface Neo4jGraphView {
  readonly name: string
  nodes(label?: string): EmulatedNode[]
  relationships(type?: string): EmulatedRelationship[]
  constraints(): { name: string; label: string; property: string }[]
  clear(): void
}

export interface Neo4jEmulator {
  /** bolt://host:port */
  url: string
  /** neo4j://host:port (routing through ROUTE, answered with this server for every role) */
  routingUrl: string
  host: string
  port: number
  /** The default database. */
  graph: Neo4jGraphView
  database(name: string): Neo4jGraphView
  /** Connections currently open. */
  readonly connections: number
  close(): Promise<void>
}

const SERVER_AGENT = 'Neo4j/5.26.0'

// Request signatures.
const HELLO = 0x01
const GOODBYE = 0x02
const RESET = 0x0f
const RUN = 0x10
const BEGIN = 0x11
const COMMIT = 0x12
const ROLLBACK = 0x13
const DISCARD = 0x2f
const PULL = 0x3f
const TELEMETRY = 0x54
const ROUTE = 0x66
const LOGON = 0x6a
const LOGOFF = 0x6b
// Response signatures.
const SUCCESS = 0x70
const RECORD = 0x71
const IGNORED = 0x7e
const FAILURE = 0x7f

class DatabaseLock {
  private held = false
  private readonly waiters: (() => void)[] = []

  acquire(timeoutMs: number): Promise<void> {
    if (!this.held) {
      this.held = true
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(grant)
        if (i >= 0) this.waiters.splice(i, 1)
        reject(
          new CypherError(
            'Neo.TransientError.Transaction.LockClientStopped',
            `The transaction could not acquire the database lock within ${timeoutMs} ms`,
          ),
        )
      }, timeoutMs)
      this.waiters.push(grant)
    })
  }

  release(): void {
    const next = this.waiters.shift()
    if (next) next()
    else this.held = false
  }
}

interface Database {
  graph: Graph
  lock: DatabaseLock
}

interface PendingResult {
  qid: bigint
  fields: string[]
  records: Value[][]
  at: number
  stats: Stats
  type: 'r' | 'w' | 'rw'
  db: string
  bookmark: string | undefined
}

interface Transaction {
  db: Database
  mode: 'r' | 'w'
  undo: UndoLog
  locked: boolean
  results: Map<bigint, PendingResult>
  nextQid: bigint
}

function nodeStruct(node: NodeRecord): Struct {
  return new Struct(0x4e, [node.id, [...node.labels], { ...node.props }, nodeElementId(node)])
}

function relStruct(rel: RelRecord): Struct {
  return new Struct(0x52, [
    rel.id,
    rel.start.id,
    rel.end.id,
    rel.type,
    { ...rel.props },
    relElementId(rel),
    nodeElementId(rel.start),
    nodeElementId(rel.end),
  ])
}

function statsMap(stats: Stats): Record<string, Value> {
  const out: Record<string, Value> = {}
  const put = (key: string, n: number) => {
    if (n > 0) out[key] = BigInt(n)
  }
  put('nodes-created', stats.nodesCreated)
  put('nodes-deleted', stats.nodesDeleted)
  put('relationships-created', stats.relationshipsCreated)
  put('relationships-deleted', stats.relationshipsDeleted)
  put('properties-set', stats.propertiesSet)
  put('labels-added', stats.labelsAdded)
  put('constraints-added', stats.constraintsAdded)
  return out
}

/** Does a handshake offer (4 bytes: reserved, range, minor, major) include Bolt 5.4? */
function offersBolt54(offer: Buffer): boolean {
  const range = offer[1]!
  const minor = offer[2]!
  const major = offer[3]!
  return major === 5 && minor >= 4 && minor - range <= 4
}

class BoltConnection {
  private handshakeDone = false
  private pending: Buffer = Buffer.alloc(0)
  private messageParts: Buffer[] = []
  private readonly queue: Struct[] = []
  private processing = false
  private authenticated = false
  private failed = false
  private closed = false
  private tx: Transaction | undefined
  private autoResult: PendingResult | undefined
  private routingAddress: string | undefined
  private readonly encoder = new Encoder()
  private outgoing: Buffer[] = []

  constructor(
    private readonly socket: Socket,
    private readonly server: EmulatorServer,
    private readonly connectionId: string,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (data) => this.onData(data))
    socket.on('close', () => this.onClose())
    socket.on('error', () => {})
  }

  private onClose(): void {
    this.closed = true
    this.abortTransaction()
    this.server.forget(this)
  }

  destroy(): void {
    this.socket.destroy()
  }

  private onData(data: Buffer): void {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data])
    if (!this.handshakeDone) {
      if (this.pending.length < 20) return
      if (this.pending.readUInt32BE(0) !== 0x6060b017) {
        this.socket.destroy()
        return
      }
      let accepted = false
      for (let i = 0; i < 4; i++) {
        if (offersBolt54(this.pending.subarray(4 + i * 4, 8 + i * 4))) accepted = true
      }
      this.pending = this.pending.subarray(20)
      if (!accepted) {
        this.socket.end(Buffer.from([0, 0, 0, 0]))
        return
      }
      this.handshakeDone = true
      this.socket.write(Buffer.from([0, 0, 4, 5]))
    }
    let offset = 0
    while (this.pending.length - offset >= 2) {
      const size = this.pending.readUInt16BE(offset)
      if (this.pending.length - offset - 2 < size) break
      if (size === 0) {
        if (this.messageParts.length > 0) {
          const message =
            this.messageParts.length === 1
              ? this.messageParts[0]!
              : Buffer.concat(this.messageParts)
          this.messageParts = []
          try {
            const decoded = new Decoder(message).read()
            if (!(decoded instanceof Struct)) throw new Error('message is not a structure')
            this.queue.push(decoded)
          } catch {
            this.socket.destroy()
            return
          }
        }
      } else {
        this.messageParts.push(Buffer.from(this.pending.subarray(offset + 2, offset + 2 + size)))
      }
      offset += 2 + size
    }
    this.pending = this.pending.subarray(offset)
    void this.process()
  }

  private async process(): Promise<void> {
    if (this.processing) return
    this.processing = true
    try {
      while (this.queue.length > 0 && !this.closed) {
        const message = this.queue.shift()!
        const maybe = this.handle(message)
        if (maybe) await maybe
      }
    } finally {
      this.processing = false
      this.flush()
    }
  }

  private send(signature: number, fields: Value[]): void {
    this.encoder.write(new Struct(signature, fields))
    this.outgoing.push(chunkMessage(this.encoder.take()))
    if (this.outgoing.length >= 256) this.flush()
  }

  private flush(): void {
    if (this.outgoing.length === 0 || this.closed) return
    const data = this.outgoing.length === 1 ? this.outgoing[0]! : Buffer.concat(this.outgoing)
    this.outgoing = []
    this.socket.write(data)
  }

  private success(meta: Record<string, Value> = {}): void {
    this.send(SUCCESS, [meta])
  }

  private failure(code: string, message: string): void {
    this.failed = true
    this.send(FAILURE, [{ code, message }])
  }

  private fail(error: unknown): void {
    if (error instanceof CypherError) this.failure(error.code, error.message)
    else
      this.failure(
        'Neo.DatabaseError.General.UnknownError',
        error instanceof Error ? error.message : String(error),
      )
  }

  private abortTransaction(): void {
    const tx = this.tx
    this.tx = undefined
    if (!tx) return
    for (let i = tx.undo.length - 1; i >= 0; i--) tx.undo[i]!()
    tx.undo.length = 0
    if (tx.locked) tx.db.lock.release()
  }

  private handle(message: Struct): Promise<void> | undefined {
    const signature = message.signature
    const fields = message.fields
    if (signature === GOODBYE) {
      this.abortTransaction()
      this.flush()
      this.socket.end()
      this.closed = true
      return undefined
    }
    if (signature === RESET) {
      this.abortTransaction()
      this.autoResult = undefined
      this.failed = false
      this.success()
      return undefined
    }
    if (this.failed) {
      this.send(IGNORED, [])
      return undefined
    }
    switch (signature) {
      case HELLO: {
        const extra = isMap(fields[0]) ? fields[0] : {}
        const routing = extra.routing
        if (isMap(routing) && typeof routing.address === 'string')
          this.routingAddress = routing.address
        // Bolt 5.0 carried the credentials in HELLO; 5.1+ sends LOGON.
        this.success({ server: SERVER_AGENT, connection_id: this.connectionId, hints: {} })
        return undefined
      }
      case LOGON: {
        const auth = isMap(fields[0]) ? fields[0] : {}
        if (!this.server.accepts(auth)) {
          this.failure(
            'Neo.ClientError.Security.Unauthorized',
            'The client is unauthorized due to authentication failure.',
          )
          this.flush()
          this.socket.end()
          this.closed = true
          return undefined
        }
        this.authenticated = true
        this.success()
        return undefined
      }
      case LOGOFF:
        this.authenticated = false
        this.success()
        return undefined
      case TELEMETRY:
        this.success()
        return undefined
    }
    if (!this.authenticated) {
      this.failure(
        'Neo.ClientError.Security.Unauthorized',
        'The client is not authenticated: send LOGON first.',
      )
      return undefined
    }
    switch (signature) {
      case ROUTE:
        return this.route(fields)
      case BEGIN:
        return this.begin(fields)
      case RUN:
        return this.run(fields)
      case PULL:
      case DISCARD:
        this.pull(fields, signature === DISCARD)
        return undefined
      case COMMIT: {
        if (!this.tx) {
          this.failure('Neo.ClientError.Request.Invalid', 'COMMIT outside a transaction')
          return undefined
        }
        const tx = this.tx
        this.tx = undefined
        tx.undo.length = 0
        if (tx.locked) tx.db.lock.release()
        this.success({ bookmark: this.server.nextBookmark() })
        return undefined
      }
      case ROLLBACK:
        if (!this.tx) {
          this.failure('Neo.ClientError.Request.Invalid', 'ROLLBACK outside a transaction')
          return undefined
        }
        this.abortTransaction()
        this.success()
        return undefined
      default:
        this.failure(
          'Neo.ClientError.Request.Invalid',
          `message 0x${signature.toString(16)} is not supported by this emulator`,
        )
        return undefined
    }
  }

  private route(fields: Value[]): undefined {
    const context = isMap(fields[0]) ? fields[0] : {}
    const extra = isMap(fields[2]) ? fields[2] : {}
    const name = typeof extra.db === 'string' ? extra.db : this.server.defaultDatabase
    if (!this.server.database(name)) {
      this.failure(
        'Neo.ClientError.Database.DatabaseNotFound',
        `Database does not exist. Database name: '${name}'.`,
      )
      return undefined
    }
    const address =
      (typeof context.address === 'string' ? context.address : undefined) ??
      this.routingAddress ??
      this.server.address
    const servers = ['WRITE', 'READ', 'ROUTE'].map((role) => ({ addresses: [address], role }))
    this.success({ rt: { ttl: 300n, db: name, servers } })
    return undefined
  }

  private resolveDatabase(
    extra: Record<string, Value>,
  ): { name: string; db: Database } | undefined {
    const name =
      typeof extra.db === 'string' && extra.db !== '' ? extra.db : this.server.defaultDatabase
    const db = this.server.database(name)
    if (!db) {
      this.failure(
        'Neo.ClientError.Database.DatabaseNotFound',
        `Database does not exist. Database name: '${name}'.`,
      )
      return undefined
    }
    return { name, db }
  }

  private begin(fields: Value[]): undefined {
    if (this.tx) {
      this.failure('Neo.ClientError.Request.Invalid', 'BEGIN inside a transaction')
      return undefined
    }
    const extra = isMap(fields[0]) ? fields[0] : {}
    const resolved = this.resolveDatabase(extra)
    if (!resolved) return undefined
    this.tx = {
      db: resolved.db,
      mode: extra.mode === 'r' ? 'r' : 'w',
      undo: [],
      locked: false,
      results: new Map(),
      nextQid: 0n,
    }
    this.success()
    return undefined
  }

  private async run(fields: Value[]): Promise<void> {
    const [query, params, extra] = fields
    if (typeof query !== 'string' || !isMap(params)) {
      this.failure(
        'Neo.ClientError.Request.Invalid',
        'RUN needs a query string and a parameter map',
      )
      return
    }
    const tx = this.tx
    let dbName: string
    let db: Database
    if (tx) {
      db = tx.db
      dbName = db.graph.name
    } else {
      const resolved = this.resolveDatabase(isMap(extra) ? extra : {})
      if (!resolved) return
      dbName = resolved.name
      db = resolved.db
    }
    let statement: Statement
    try {
      statement = this.server.parse(query)
    } catch (error) {
      this.abortTransaction()
      this.fail(error)
      return
    }
    const readOnly = tx ? tx.mode === 'r' : isMap(extra) && extra.mode === 'r'
    if (readOnly && statement.writes) {
      this.abortTransaction()
      this.failure(
        'Neo.ClientError.Statement.AccessMode',
        'Writing in read access mode not allowed.',
      )
      return
    }
    try {
      if (tx && !tx.locked) {
        this.flush()
        await db.lock.acquire(this.server.lockTimeoutMs)
        if (this.tx !== tx) {
          db.lock.release()
          return
        }
        tx.locked = true
      } else if (!tx) {
        this.flush()
        await db.lock.acquire(this.server.lockTimeoutMs)
      }
    } catch (error) {
      this.abortTransaction()
      this.fail(error)
      return
    }
    const undo: UndoLog = tx ? tx.undo : []
    const stats = emptyStats()
    try {
      const result = execute(statement, {
        graph: db.graph,
        params,
        undo,
        stats,
        nodeStruct,
        relStruct,
      })
      const pending: PendingResult = {
        qid: tx ? tx.nextQid++ : -1n,
        fields: result.fields,
        records: result.records,
        at: 0,
        stats,
        type: statement.writes ? (result.fields.length > 0 ? 'rw' : 'w') : 'r',
        db: dbName,
        bookmark: tx ? undefined : this.server.nextBookmark(),
      }
      if (tx) {
        tx.results.set(pending.qid, pending)
        this.success({ fields: result.fields, t_first: 0n, qid: pending.qid })
      } else {
        this.autoResult = pending
        this.success({ fields: result.fields, t_first: 0n })
      }
    } catch (error) {
      if (tx) this.abortTransaction()
      else for (let i = undo.length - 1; i >= 0; i--) undo[i]!()
      this.fail(error)
    } finally {
      if (!tx) db.lock.release()
    }
  }

  private pull(fields: Value[], discard: boolean): void {
    const extra = isMap(fields[0]) ? fields[0] : {}
    const n = typeof extra.n === 'bigint' ? extra.n : -1n
    const qid = typeof extra.qid === 'bigint' ? extra.qid : -1n
    let result: PendingResult | undefined
    if (this.tx) {
      result = qid === -1n ? [...this.tx.results.values()].pop() : this.tx.results.get(qid)
    } else result = this.autoResult
    if (!result) {
      this.failure('Neo.ClientError.Request.Invalid', 'There is no result to PULL or DISCARD')
      return
    }
    const end =
      n < 0n ? result.records.length : Math.min(result.records.length, result.at + Number(n))
    if (!discard) for (let i = result.at; i < end; i++) this.send(RECORD, [result.records[i]!])
    result.at = discard ? (n < 0n ? result.records.length : end) : end
    if (result.at < result.records.length) {
      this.success({ has_more: true })
      return
    }
    if (this.tx) this.tx.results.delete(result.qid)
    else this.autoResult = undefined
    const meta: Record<string, Value> = { type: result.type, t_last: 0n, db: result.db }
    const stats = statsMap(result.stats)
    if (Object.keys(stats).length > 0) meta.stats = stats
    if (result.bookmark) meta.bookmark = result.bookmark
    this.success(meta)
  }
}

class EmulatorServer {
  readonly databases = new Map<string, Database>()
  readonly defaultDatabase: string
  readonly lockTimeoutMs: number
  private readonly connections = new Set<BoltConnection>()
  private readonly statements = new Map<string, Statement>()
  private bookmark = 0
  private connectionCount = 0
  address = ''

  constructor(private readonly options: Neo4jEmulatorOptions) {
    const names = options.databases?.length ? options.databases : ['neo4j']
    for (const name of names)
      this.databases.set(name, { graph: new Graph(name), lock: new DatabaseLock() })
    this.defaultDatabase = names[0]!
    this.lockTimeoutMs = options.lockTimeoutMs ?? 30_000
  }

  get openConnections(): number {
    return this.connections.size
  }

  accept(socket: Socket): void {
    this.connections.add(new BoltConnection(socket, this, `bolt-${++this.connectionCount}`))
  }

  forget(connection: BoltConnection): void {
    this.connections.delete(connection)
  }

  destroyAll(): void {
    for (const connection of this.connections) connection.destroy()
  }

  database(name: string): Database | undefined {
    return this.databases.get(name)
  }

  nextBookmark(): string {
    return `FB:emulator:${++this.bookmark}`
  }

  parse(query: string): Statement {
    let statement = this.statements.get(query)
    if (!statement) {
      statement = parseCypher(query)
      if (this.statements.size > 1000) this.statements.clear()
      this.statements.set(query, statement)
    }
    return statement
  }

  accepts(auth: Record<string, Value>): boolean {
    const expected = this.options.auth
    if (!expected) return true
    if ('token' in expected) return auth.scheme === 'bearer' && auth.credentials === expected.token
    return (
      auth.scheme === 'basic' &&
      auth.principal === expected.user &&
      auth.credentials === expected.password
    )
  }
}

function view(graph: Graph): Neo4jGraphView {
  return {
    name: graph.name,
    nodes(label) {
      const out: EmulatedNode[] = []
      for (const node of graph.nodes.values()) {
        if (label !== undefined && !node.labels.has(label)) continue
        out.push({
          id: node.id,
          elementId: nodeElementId(node),
          labels: [...node.labels],
          properties: { ...node.props },
        })
      }
      return out
    },
    relationships(type) {
      const out: EmulatedRelationship[] = []
      for (const rel of graph.rels.values()) {
        if (type !== undefined && rel.type !== type) continue
        out.push({
          id: rel.id,
          elementId: relElementId(rel),
          type: rel.type,
          start: rel.start.id,
          end: rel.end.id,
          properties: { ...rel.props },
        })
      }
      return out
    },
    constraints() {
      return [...graph.constraints.values()].map((c) => ({ ...c }))
    },
    clear() {
      graph.clear()
    },
  }
}

/**
 * Start a Bolt 5.4 server over an in-memory graph that the unmodified `neo4j-driver` talks
 * to (bolt:// and neo4j://). It runs the Cypher subset in cypher.ts; see README.md.
 */
export async function startNeo4jEmulator(
  options: Neo4jEmulatorOptions = {},
): Promise<Neo4jEmulator> {
  const host = options.host ?? '127.0.0.1'
  const state = new EmulatorServer(options)
  const server: Server = createServer((socket) => state.accept(socket))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const hostForUrl = host.includes(':') ? `[${host}]` : host
  state.address = `${hostForUrl}:${port}`
  let closing: Promise<void> | undefined
  return {
    url: `bolt://${hostForUrl}:${port}`,
    routingUrl: `neo4j://${hostForUrl}:${port}`,
    host,
    port,
    graph: view(state.databases.get(state.defaultDatabase)!.graph),
    database(name) {
      const db = state.database(name)
      if (!db) throw new Error(`the emulator has no database ${JSON.stringify(name)}`)
      return view(db.graph)
    },
    get connections() {
      return state.openConnections
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        state.destroyAll()
      })
      return closing
    },
  }
}

// The exactness matrix, document and message side (issue 14): the MySQL trap table copied by
// `nvisy run` into a JSONL file (fs), a MongoDB collection (the project's wire-protocol
// emulator, or NVISY_TEST_MONGODB_URL), a JetStream stream and a Redis stream (record ->
// document and record -> message conversions). Each destination is read back with the
// system's own client as text, parsed without loss, and compared field by field with the
// canonical text the SOURCE DATABASE computed in SQL (support/document-canonical.ts).
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect as natsConnect } from '@nats-io/transport-node'
import { type MongoEmulator, startMongoEmulator } from '@nvisy/emulators'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { Redis } from 'ioredis'
import { BSON, MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NULL_MARK } from './support/canonical.js'
import { CLI, describeRun, itemFailures, runPipeline, scratchDir } from './support/cli.js'
import { MysqlScratch, mysqlSkipReason } from './support/databases.js'
import {
  documentCanonical,
  expectedCanonical,
  type Json,
  parseLossless,
  repeatsKey,
} from './support/document-canonical.js'
import { bulkRows, KEY, TRAP_COLUMNS, TRAP_ROWS, TRAP_TABLE } from './support/traps.js'

const ROWS = TRAP_ROWS.concat(bulkRows(Number(process.env.NVISY_MATRIX_DOCUMENT_ROWS ?? 500)))
const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
const REDIS_URL = process.env.NVISY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const MONGO_URL = process.env.NVISY_TEST_MONGODB_URL
const natsAddress = hostPort(NATS_URL, 4222)
const redisAddress = hostPort(REDIS_URL, 6379)

const skip =
  (await mysqlSkipReason()) ||
  (existsSync(CLI) ? false : `${CLI} is missing: run pnpm --filter @nvisy/runtime... build`)
const natsSkip = await serviceSkipReason('NATS (JetStream)', NATS_URL, () =>
  tcpReachable(natsAddress.host, natsAddress.port),
)
const redisSkip = await serviceSkipReason('Redis', REDIS_URL, () =>
  tcpReachable(redisAddress.host, redisAddress.port),
)

/** Width of each float column (FLOAT is 32-bit: a document may hold its shortest decimal). */
const FLOAT_BITS: Record<string, number> = { 'f.Float': 32 }

/** Canonical Extended JSON (MongoDB's own text) to plain JSON nodes: numbers keep their digits. */
function fromExtendedJson(node: Json): Json {
  if (node.t === 'arr') return { t: 'arr', v: node.v.map(fromExtendedJson) }
  if (node.t !== 'obj') return node
  if (node.v.length === 1) {
    const [name, value] = node.v[0]!
    if (
      (name === '$numberInt' ||
        name === '$numberLong' ||
        name === '$numberDecimal' ||
        name === '$numberDouble') &&
      value.t === 'str'
    )
      return /^-?[\d.]+([eE][+-]?\d+)?$/.test(value.v) ? { t: 'num', v: value.v } : value
    if (name === '$binary' && value.t === 'obj') {
      const base64 = value.v.find(([k]) => k === 'base64')?.[1]
      if (base64) return base64
    }
  }
  return { t: 'obj', v: node.v.map(([k, v]) => [k, fromExtendedJson(v)] as [string, Json]) }
}

describe.skipIf(skip)('exactness matrix: documents and messages through nvisy run', () => {
  const my = new MysqlScratch()
  let work: Awaited<ReturnType<typeof scratchDir>>
  /** key -> the source database's canonical text per column, in comparison form. */
  const expected = new Map<string, string[]>()
  /**
   * Keys of the rows whose JSON column repeats a key in an object (MariaDB keeps JSON text as
   * written). A MongoDB document cannot hold a repeated key: those rows are refused, naming
   * the column, never stored with the key collapsed.
   */
  const repeatedKey = new Set<string>()
  const JSON_COLUMN = TRAP_COLUMNS.findIndex((column) => column.kind === 'json')

  function source() {
    return {
      id: 'src',
      role: 'source',
      provider: 'mysql',
      connection: my.connection(),
      stream: { table: TRAP_TABLE, database: my.database, pageSize: 1000 },
    }
  }

  function pipeline(id: string, sink: object) {
    return {
      id,
      nodes: [source(), { id: 'dst', role: 'sink', batch: { maxItems: 500 }, ...sink }],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 1000 },
    }
  }

  /** Compare destination rows (parsed objects) with the source's canonical rows (`only` those keys). */
  function compare(rows: Json[], only: ReadonlySet<string> = new Set(expected.keys())) {
    const differences: string[] = []
    const seen = new Map<string, number>()
    for (const row of rows) {
      if (row.t !== 'obj') {
        differences.push(`not an object: ${JSON.stringify(row).slice(0, 200)}`)
        continue
      }
      const fields = new Map(row.v)
      const key = documentCanonical('int', fields.get(KEY))
      seen.set(key, (seen.get(key) ?? 0) + 1)
      const want = only.has(key) ? expected.get(key) : undefined
      if (!want) {
        differences.push(
          `key ${key}: ${expected.has(key) ? 'not expected here' : 'not in the source'}`,
        )
        continue
      }
      TRAP_COLUMNS.forEach((column, i) => {
        const got = documentCanonical(
          column.kind,
          fields.get(column.name),
          FLOAT_BITS[column.name] ?? 64,
        )
        if (got !== want[i]) differences.push(`key ${key} ${column.name}: ${want[i]} != ${got}`)
      })
    }
    for (const key of only) if (!seen.has(key)) differences.push(`key ${key}: missing`)
    for (const [key, n] of seen) if (n > 1) differences.push(`key ${key}: ${n} copies`)
    expect(rows.length, 'items in the destination').toBe(only.size)
    expect(differences.slice(0, 15), `first differences (source != destination)`).toEqual([])
  }

  function expectCompleted(run: Awaited<ReturnType<typeof runPipeline>>) {
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    expect(run.summary?.stats.failedItems, describeRun(run)).toBe(0)
  }

  beforeAll(async () => {
    work = await scratchDir('documents')
    await my.create()
    await my.createTrapTable(TRAP_TABLE)
    await my.insertRows(TRAP_TABLE, ROWS)
    for (const [key, row] of await my.canonicalRows(TRAP_TABLE)) {
      expected.set(
        key,
        row.map((text, i) => expectedCanonical(TRAP_COLUMNS[i]!.kind, text)),
      )
      const json = row[JSON_COLUMN]!
      if (
        json !== NULL_MARK &&
        repeatsKey(parseLossless(Buffer.from(json, 'hex').toString('utf8')))
      )
        repeatedKey.add(key)
    }
  })

  afterAll(async () => {
    await my.drop()
    await work?.cleanup()
  })

  // A JSON column's text reaches the file verbatim (DocumentData.rawJson): repeated keys, 1e400
  // and integers past 2^53 included.
  it('MySQL -> JSONL file (fs): every value exact', async () => {
    const root = join(work.dir, 'fs')
    await mkdir(root)
    const run = await runPipeline(
      work.dir,
      pipeline('my-to-jsonl', {
        provider: 'fs',
        connection: { params: { root } },
        stream: { kind: 'document', file: 'rows.jsonl' },
      }),
    )
    expectCompleted(run)
    const text = await readFile(join(root, 'rows.jsonl'), 'utf8')
    const lines = text.split('\n').filter((line) => line.length > 0)
    compare(lines.map(parseLossless))
  })

  describe('MongoDB', () => {
    let emulator: MongoEmulator | undefined
    let client: MongoClient
    let connection: object
    const database = `nvisy_matrix_${randomBytes(4).toString('hex')}`

    beforeAll(async () => {
      if (MONGO_URL) {
        client = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 })
        connection = { credentials: { connectionString: MONGO_URL }, params: { database } }
      } else {
        const password = `pw-${randomBytes(8).toString('hex')}`
        emulator = await startMongoEmulator({ port: 0, users: { nvisy: password } })
        client = new MongoClient(emulator.url, {
          auth: { username: 'nvisy', password },
          serverSelectionTimeoutMS: 5000,
        })
        connection = {
          credentials: { username: 'nvisy', password },
          params: { url: emulator.url, database },
        }
      }
      await client.connect()
    })

    afterAll(async () => {
      await client
        ?.db(database)
        .dropDatabase()
        .catch(() => {})
      await client?.close()
      await emulator?.close()
    })

    // JSON column numbers are typed from their text (int64, Decimal128 for 1e400 and integers
    // past 2^63); a row whose JSON repeats a key is refused naming the column and goes, exact,
    // to the dead-letter JSONL file.
    it('MySQL -> MongoDB: every value exact (read back as canonical Extended JSON); a repeated JSON key is refused naming the column', async () => {
      const deadRoot = join(work.dir, 'mongo-dead')
      await mkdir(deadRoot)
      const run = await runPipeline(work.dir, {
        id: 'my-to-mongo',
        nodes: [
          source(),
          {
            id: 'dst',
            role: 'sink',
            batch: { maxItems: 500 },
            provider: 'mongodb',
            connection,
            stream: { collection: 'trap rows' },
            deadLetter: 'dead',
          },
          {
            id: 'dead',
            role: 'sink',
            provider: 'fs',
            connection: { params: { root: deadRoot } },
            stream: { kind: 'document', file: 'refused.jsonl' },
          },
        ],
        edges: [{ from: 'src', to: 'dst' }],
        options: { checkpointEveryItems: 1000 },
      })
      expect(run.code, describeRun(run)).toBe(0)
      expect(run.summary?.status, describeRun(run)).toBe('completed')
      expect(run.summary?.stats.failedItems, describeRun(run)).toBe(repeatedKey.size)
      expect(run.summary?.stats.deadLettered, describeRun(run)).toBe(repeatedKey.size)
      const failures = itemFailures(run)
      expect(failures, describeRun(run)).toHaveLength(repeatedKey.size)
      for (const failure of failures) {
        expect(failure.nodeId).toBe('dst')
        expect(failure.kind).toBe('data')
        expect(failure.message).toMatch(
          /field "J son": its JSON text repeats (the key "[^"]*"|a key) in one object, and a MongoDB document cannot hold a repeated key/,
        )
      }
      const stored = new Set([...expected.keys()].filter((key) => !repeatedKey.has(key)))
      const docs = await client.db(database).collection('trap rows').find({}).toArray()
      compare(
        docs.map((doc) => {
          const { _id, ...rest } = doc
          return fromExtendedJson(parseLossless(BSON.EJSON.stringify(rest, { relaxed: false })))
        }),
        stored,
      )
      // The refused rows are not lost: the dead-letter file holds them exactly.
      const dead = existsSync(join(deadRoot, 'refused.jsonl'))
        ? await readFile(join(deadRoot, 'refused.jsonl'), 'utf8')
        : ''
      compare(
        dead
          .split('\n')
          .filter((line) => line.length > 0)
          .map(parseLossless),
        repeatedKey,
      )
    })

    it('MySQL -> MongoDB without a dead-letter sink: a repeated JSON key fails the run naming the column', async (context) => {
      if (repeatedKey.size === 0)
        context.skip('the source keeps no repeated JSON key (MySQL normalizes JSON)')
      const run = await runPipeline(
        work.dir,
        pipeline('my-to-mongo-strict', {
          provider: 'mongodb',
          connection,
          stream: { collection: 'strict rows' },
        }),
      )
      expect(run.code, describeRun(run)).toBe(1)
      expect(run.summary?.status, describeRun(run)).toBe('failed')
      expect(run.summary?.error?.kind, describeRun(run)).toBe('data')
      expect(run.summary?.error?.message, describeRun(run)).toMatch(
        /failure budget spent.*field "J son": its JSON text repeats (the key "[^"]*"|a key) in one object/,
      )
    })
  })

  describe.skipIf(natsSkip)('JetStream', () => {
    const suffix = randomBytes(4).toString('hex')
    const name = `NVISY_MATRIX_${suffix}`
    const subject = `nvisymatrix.${suffix}.rows`
    let nc: Awaited<ReturnType<typeof natsConnect>>

    beforeAll(async () => {
      nc = await natsConnect({ servers: NATS_URL })
      const jsm = await jetstreamManager(nc)
      await jsm.streams.add({ name, subjects: [`nvisymatrix.${suffix}.>`] })
    })

    afterAll(async () => {
      if (!nc) return
      const jsm = await jetstreamManager(nc)
      await jsm.streams.delete(name).catch(() => {})
      await nc.drain()
    })

    it('MySQL -> JetStream (record -> message, one pipeline): every value exact, no duplicate', async () => {
      const run = await runPipeline(
        work.dir,
        pipeline('my-to-jetstream', {
          provider: 'nats',
          connection: { params: { servers: [NATS_URL] }, credentials: {} },
          stream: { subject, stream: name },
        }),
      )
      expectCompleted(run)
      const js = jetstream(nc)
      const consumer = await js.consumers.get(name)
      const payloads: Json[] = []
      const total = (await (await jetstreamManager(nc)).streams.info(name)).state.messages
      if (total > 0) {
        const messages = await consumer.fetch({ max_messages: total, expires: 10_000 })
        for await (const message of messages) {
          payloads.push(parseLossless(new TextDecoder().decode(message.data)))
          if (payloads.length >= total) break
        }
      }
      compare(payloads)
    })
  })

  describe.skipIf(redisSkip)('Redis stream', () => {
    const key = `nvisy:matrix:${randomBytes(4).toString('hex')}`
    let redis: Redis

    beforeAll(() => {
      redis = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2 })
    })

    afterAll(async () => {
      await redis?.del(key).catch(() => {})
      redis?.disconnect()
    })

    it('MySQL -> Redis stream (record -> message): every value exact, no duplicate', async () => {
      const run = await runPipeline(
        work.dir,
        pipeline('my-to-redis', {
          provider: 'redis',
          connection: {
            params: { host: redisAddress.host, port: redisAddress.port },
            credentials: {},
          },
          stream: { kind: 'stream', key },
        }),
      )
      expectCompleted(run)
      const entries = await redis.xrangeBuffer(key, '-', '+')
      const payloads = entries.map(([, fields]) => {
        for (let i = 0; i < fields.length; i += 2)
          if (fields[i]!.toString() === 'payload')
            return parseLossless(fields[i + 1]!.toString('utf8'))
        return { t: 'null' } as Json
      })
      compare(payloads)
    })
  })
})

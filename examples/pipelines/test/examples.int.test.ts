// Every example pipeline of this folder, run as the README tells a user to run it:
// `nvisy run <file>` here, with only the README's variables set, pointed at the local services
// (PostgreSQL, MariaDB, NATS JetStream, the S3 server, the GCS, MongoDB and Pinecone emulators).
// Each test seeds the source, runs the file itself, and checks what arrived: rows by a digest
// the database computes, messages by count and content, objects by sha256, vectors by value.
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { Storage } from '@google-cloud/storage'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect as connectNats, type NatsConnection } from '@nats-io/transport-node'
import {
  type MongoEmulator,
  type PineconeEmulator,
  startMongoEmulator,
  startPineconeEmulator,
} from '@nvisy/emulators'
import { serviceSkipReason } from '@nvisy/provider-testkit'
import { MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CliRun,
  describeRun,
  EXAMPLES,
  MYSQL_URL,
  MysqlDatabase,
  NATS_URL,
  PgDatabase,
  POSTGRES_URL,
  reachable,
  runExample,
  scratch,
} from './support.js'

/** The example files here, each run by one describe block below. */
const EXAMPLE_FILES = [
  'postgres-to-postgres.json',
  'mysql-to-postgres.json',
  'postgres-to-jetstream.json',
  's3-to-gcs.json',
  'jsonl-to-mongodb.json',
  'postgres-to-pinecone.json',
]

describe('the example files', () => {
  it('are all run by a test below', async () => {
    const files = (await readdir(EXAMPLES)).filter(
      (name) =>
        name.endsWith('.json') &&
        !['package.json', 'nvisy.config.json', 'tsconfig.json'].includes(name),
    )
    expect(files.sort()).toEqual([...EXAMPLE_FILES].sort())
  })

  it('hold no credential in clear: every credential value is an {"$env": NAME} reference', async () => {
    for (const file of EXAMPLE_FILES) {
      const pipeline = JSON.parse(await readFile(join(EXAMPLES, file), 'utf8')) as {
        nodes: { id: string; connection: { credentials?: Record<string, unknown> } }[]
      }
      for (const node of pipeline.nodes) {
        for (const [field, value] of Object.entries(node.connection.credentials ?? {}))
          expect(Object.keys(value as object), `${file} ${node.id} credentials.${field}`).toEqual([
            '$env',
          ])
      }
    }
  })
})

const postgresSkip = await reachable('PostgreSQL', POSTGRES_URL, 5432)
const mysqlSkip = await reachable('MySQL/MariaDB', MYSQL_URL, 3306)
const natsSkip = await reachable('NATS with JetStream', NATS_URL, 4222)

function expectCompleted(run: CliRun, items: Record<string, number>): void {
  expect(run.code, describeRun(run)).toBe(0)
  expect(run.summary?.status, describeRun(run)).toBe('completed')
  for (const [node, count] of Object.entries(items))
    expect(run.summary?.stats?.nodes[node]?.items, `${node}: ${describeRun(run)}`).toBe(count)
}

/** Orders with the values copies get wrong: numerics, microseconds, JSON, arrays, NULLs, unicode. */
async function seedOrders(db: PgDatabase, from: bigint, to: bigint): Promise<void> {
  await db.pool.query(`CREATE TABLE IF NOT EXISTS orders (
    id bigint PRIMARY KEY,
    customer text NOT NULL,
    total numeric(12,2),
    placed_at timestamptz NOT NULL,
    items jsonb,
    tags text[],
    note text)`)
  await db.pool.query(
    `INSERT INTO orders
     SELECT g,
       'customer ' || g || CASE WHEN g % 7 = 0 THEN ' Zoë "quoted", 東京 🎉' ELSE '' END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE round((g % 100000) * 1.37 - 500, 2) END,
       timestamptz '2024-01-01 00:00:00+00' + (g % 100000) * interval '1 minute 0.000123 second',
       CASE WHEN g % 13 = 0 THEN NULL
            ELSE jsonb_build_object('sku', 'SKU-' || g, 'qty', g % 5 + 1, 'gift', g % 3 = 0) END,
       CASE WHEN g % 4 = 0 THEN ARRAY['priority', 'tag, ' || g] ELSE '{}'::text[] END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE E'line one\\nline\\ttwo ' || g END
     FROM generate_series($1::bigint, $2::bigint) g`,
    [String(from), String(to)],
  )
}

describe.skipIf(postgresSkip)('postgres-to-postgres.json', () => {
  let source: PgDatabase
  let target: PgDatabase
  let dir: Awaited<ReturnType<typeof scratch>>

  beforeAll(async () => {
    ;[source, target, dir] = await Promise.all([
      PgDatabase.create('source'),
      PgDatabase.create('target'),
      scratch('pg-pg'),
    ])
    await seedOrders(source, 1n, 5000n)
    // One id past 2^53: JavaScript numbers cannot hold it.
    await seedOrders(source, 9007199254740993n, 9007199254740993n)
  })

  afterAll(async () => {
    await Promise.allSettled([source?.drop(), target?.drop(), dir?.remove()])
  })

  it('creates the table in the target and copies every row exactly, then only new rows', async () => {
    const env = { SOURCE_DATABASE_URL: source.url, TARGET_DATABASE_URL: target.url }
    const checkpoints = join(dir.dir, 'checkpoints.json')
    const first = await runExample('postgres-to-postgres.json', env, checkpoints)
    expectCompleted(first, { source: 5001, target: 5001 })
    expect(await target.shape('orders')).toEqual(await source.shape('orders'))
    expect((await target.shape('orders')).primaryKey).toBe('PRIMARY KEY (id)')
    const copied = await target.digest('orders')
    expect(copied.count).toBe(5001)
    expect(copied).toEqual(await source.digest('orders'))

    // Run again: it resumes after its checkpoint (the last id read) and copies only the rows
    // added since with larger ids.
    await seedOrders(source, 9007199254740994n, 9007199254741093n)
    const second = await runExample('postgres-to-postgres.json', env, checkpoints)
    expectCompleted(second, { source: 100, target: 100 })
    const after = await target.digest('orders')
    expect(after.count).toBe(5101)
    expect(after).toEqual(await source.digest('orders'))
  })
})

describe.skipIf(mysqlSkip || postgresSkip)('mysql-to-postgres.json', () => {
  let source: MysqlDatabase
  let target: PgDatabase
  let dir: Awaited<ReturnType<typeof scratch>>
  const ROWS = 3000

  const names = ['Zoë', 'Łukasz', '東京', "O'Brien", 'emoji 🎉', 'tab\there']

  beforeAll(async () => {
    ;[source, target, dir] = await Promise.all([
      MysqlDatabase.create(),
      PgDatabase.create('mysql'),
      scratch('mysql-pg'),
    ])
    await source.pool.query(`CREATE TABLE \`${source.name}\`.customers (
      id INT UNSIGNED NOT NULL PRIMARY KEY,
      email VARCHAR(255) NOT NULL,
      name VARCHAR(100),
      balance DECIMAL(12,2),
      signed_up DATETIME(6) NOT NULL,
      status ENUM('active', 'suspended', 'closed') NOT NULL,
      profile JSON,
      avatar BLOB,
      newsletter TINYINT(1) NOT NULL DEFAULT 0
    ) CHARACTER SET utf8mb4`)
    for (let start = 1; start <= ROWS; start += 500) {
      const rows: unknown[][] = []
      for (let i = start; i < start + 500 && i <= ROWS; i++) {
        rows.push([
          i,
          `user${i}@example.com`,
          i % 9 === 0 ? null : `Name ${i} ${names[i % names.length]}`,
          i % 13 === 0
            ? null
            : `${i % 17 === 0 ? '-' : ''}${Math.floor(i * 7.31)}.${String(i % 100).padStart(2, '0')}`,
          `2023-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')} ${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:07.${String(
            i * 37,
          )
            .padStart(6, '0')
            .slice(-6)}`,
          ['active', 'suspended', 'closed'][i % 3],
          i % 10 === 0 ? null : `{"plan": "pro", "seats": ${i % 10}, "tags": ["a", "b"]}`,
          i % 6 === 0
            ? null
            : createHash('sha256')
                .update(String(i))
                .digest()
                .subarray(0, i % 32),
          i % 2,
        ])
      }
      await source.pool.query(
        `INSERT INTO \`${source.name}\`.customers
         (id, email, name, balance, signed_up, status, profile, avatar, newsletter) VALUES ?`,
        [rows],
      )
    }
  })

  afterAll(async () => {
    await Promise.allSettled([source?.drop(), target?.drop(), dir?.remove()])
  })

  it('creates the PostgreSQL table from the MySQL one and copies every row', async () => {
    const run = await runExample(
      'mysql-to-postgres.json',
      { MYSQL_URL: source.url, DATABASE_URL: target.url },
      join(dir.dir, 'checkpoints.json'),
    )
    expectCompleted(run, { mysql: ROWS, postgres: ROWS })
    expect(await target.shape('customers')).toEqual({
      columns: [
        'id bigint not null',
        'email character varying(255) not null',
        'name character varying(100)',
        'balance numeric(12,2)',
        'signed_up timestamp(6) without time zone not null',
        'status text not null',
        'profile json',
        'avatar bytea',
        'newsletter smallint not null',
      ],
      primaryKey: 'PRIMARY KEY (id)',
    })

    // The same canonical text of every row, computed by each database.
    const connection = await source.pool.getConnection()
    let mysqlDigest: { digest: string; count: number }
    try {
      await connection.query('SET SESSION group_concat_max_len = 1073741824')
      const [rows] = await connection.query(
        `SELECT md5(group_concat(concat_ws('|', id, email, coalesce(name, '~'), coalesce(balance, '~'),
           date_format(signed_up, '%Y-%m-%d %H:%i:%s.%f'), status, coalesce(profile, '~'),
           coalesce(hex(avatar), '~'), newsletter) ORDER BY id SEPARATOR '\\n')) AS digest,
           count(*) AS count FROM \`${source.name}\`.customers`,
      )
      const row = (rows as { digest: string; count: number }[])[0]!
      mysqlDigest = { digest: row.digest, count: Number(row.count) }
    } finally {
      connection.release()
    }
    const { rows } = await target.pool.query(
      `SELECT md5(string_agg(concat_ws('|', id, email, coalesce(name, '~'), coalesce(balance::text, '~'),
         to_char(signed_up, 'YYYY-MM-DD HH24:MI:SS.US'), status, coalesce(profile::text, '~'),
         coalesce(upper(encode(avatar, 'hex')), '~'), newsletter), E'\\n' ORDER BY id)) AS digest,
         count(*)::int AS count FROM customers`,
    )
    expect(rows[0]).toEqual(mysqlDigest)
    expect(mysqlDigest.count).toBe(ROWS)
  })
})

describe.skipIf(postgresSkip || natsSkip)('postgres-to-jetstream.json', () => {
  let source: PgDatabase
  let nats: NatsConnection
  let dir: Awaited<ReturnType<typeof scratch>>
  // The stream and subject the example names (`stream: ORDERS`, `subject: orders.rows`).
  const STREAM = 'ORDERS'

  beforeAll(async () => {
    ;[source, dir] = await Promise.all([PgDatabase.create('jetstream'), scratch('pg-nats')])
    await seedOrders(source, 1n, 2000n)
    await seedOrders(source, 9007199254740993n, 9007199254740993n)
    nats = await connectNats({ servers: NATS_URL })
    const jsm = await jetstreamManager(nats)
    await jsm.streams.delete(STREAM).catch(() => false)
    await jsm.streams.add({ name: STREAM, subjects: ['orders.>'] })
  })

  afterAll(async () => {
    if (nats) {
      const jsm = await jetstreamManager(nats)
      await jsm.streams.delete(STREAM).catch(() => false)
      await nats.close()
    }
    await Promise.allSettled([source?.drop(), dir?.remove()])
  })

  /** Every message of the stream, in order. */
  async function stored() {
    const jsm = await jetstreamManager(nats)
    const total = (await jsm.streams.info(STREAM)).state.messages
    const consumer = await jetstream(nats).consumers.get(STREAM)
    const out: { subject: string; headers: Record<string, string>; payload: string }[] = []
    while (out.length < total) {
      const before = out.length
      const batch = await consumer.fetch({ max_messages: 500, expires: 5000 })
      for await (const m of batch) {
        const headers: Record<string, string> = {}
        for (const [key, values] of m.headers ?? []) headers[key] = values[0]!
        out.push({ subject: m.subject, headers, payload: m.string() })
      }
      if (out.length === before) break
    }
    return out
  }

  /** A timestamptz as UTC text with six fractional digits, from the message's ISO 8601 text. */
  function utcMicros(text: string): string {
    const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(?:Z|\+00(?::?00)?)$/.exec(text)
    if (!match) throw new Error(`not a UTC timestamp: ${text}`)
    return `${match[1]}.${(match[2] ?? '').padEnd(6, '0')}`
  }

  it('publishes one JSON message per row, keyed by the primary key, and a replay adds none', async () => {
    const checkpoints = join(dir.dir, 'checkpoints.json')
    const env = { DATABASE_URL: source.url, NATS_URL }
    const run = await runExample('postgres-to-jetstream.json', env, checkpoints)
    expectCompleted(run, { orders: 2001, jetstream: 2001 })

    const { rows } = await source.pool.query(
      `SELECT id::text AS id, customer, total::text AS total,
              to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS placed_at,
              items::text AS items, tags, note
       FROM orders ORDER BY id`,
    )
    const messages = await stored()
    expect(messages).toHaveLength(2001)
    const byId = new Map(messages.map((m) => [m.headers['Nats-Msg-Id'], m]))
    expect(byId.size).toBe(2001)
    for (const row of rows) {
      const message = byId.get(row.id)
      expect(message, `no message for row ${row.id}`).toBeDefined()
      expect(message!.subject).toBe('orders.rows')
      expect(message!.headers['content-type']).toBe('application/json')
      expect(message!.headers['nvisy-source-node']).toBe('orders')
      const body = JSON.parse(message!.payload)
      expect(Object.keys(body)).toEqual([
        'id',
        'customer',
        'total',
        'placed_at',
        'items',
        'tags',
        'note',
      ])
      // Ids past 2^53 arrive as text; the others as numbers.
      expect(String(body.id)).toBe(row.id)
      expect(typeof body.id).toBe(row.id.length > 15 ? 'string' : 'number')
      expect(body.customer).toBe(row.customer)
      expect(body.total).toBe(row.total)
      expect(utcMicros(body.placed_at)).toBe(row.placed_at)
      expect(body.items).toEqual(row.items === null ? null : JSON.parse(row.items))
      expect(body.tags).toEqual(row.tags)
      expect(body.note).toBe(row.note)
    }

    // Without the checkpoint every row is published again: the server drops the duplicates
    // by their message id (within the stream's duplicate window).
    const replay = await runExample('postgres-to-jetstream.json', env, join(dir.dir, 'fresh.json'))
    expectCompleted(replay, { orders: 2001, jetstream: 2001 })
    const jsm = await jetstreamManager(nats)
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(2001)
  })
})

const s3Endpoint = process.env.NVISY_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480'
const s3AccessKeyId = process.env.NVISY_TEST_S3_ACCESS_KEY_ID ?? 'AKIALOCALS3TEST00001'
const s3SecretAccessKey =
  process.env.NVISY_TEST_S3_SECRET_ACCESS_KEY ?? 'localS3testSecretKey0000000000000000001'
const s3Region = process.env.NVISY_TEST_S3_REGION ?? 'us-east-1'
const gcsEndpoint = process.env.NVISY_TEST_GCS_ENDPOINT ?? 'http://127.0.0.1:9199'
const gcsProject = process.env.NVISY_TEST_GCS_PROJECT ?? 'demo-nvisy'

const answers = (url: string) => async () => {
  const response = await fetch(url, { signal: AbortSignal.timeout(3000) })
  await response.arrayBuffer()
  return true
}
const objectStoresSkip =
  (await serviceSkipReason('S3 server', s3Endpoint, answers(s3Endpoint))) ||
  (await serviceSkipReason('GCS emulator', gcsEndpoint, answers(gcsEndpoint)))

describe.skipIf(objectStoresSkip)('s3-to-gcs.json', () => {
  const suffix = randomBytes(4).toString('hex')
  const s3Bucket = `nvisy-example-${suffix}`
  const gcsBucket = `nvisy-example-${suffix}`
  const s3 = new S3Client({
    region: s3Region,
    endpoint: s3Endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3AccessKeyId, secretAccessKey: s3SecretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  const storage = new Storage({ projectId: gcsProject, apiEndpoint: gcsEndpoint })
  let dir: Awaited<ReturnType<typeof scratch>>

  /** The objects under `exports/` (copied) and one outside it (not copied). */
  const objects: { key: string; body: Buffer; contentType?: string; team?: string }[] = [
    { key: 'exports/empty.csv', body: Buffer.alloc(0), contentType: 'text/csv' },
    {
      key: 'exports/orders-2024-01.csv',
      body: Buffer.from(
        `id,total\n${Array.from({ length: 20_000 }, (_, i) => `${i},${i * 3}.50`).join('\n')}\n`,
      ),
      contentType: 'text/csv',
    },
    {
      key: 'exports/nested/deep/report.json',
      body: Buffer.from('{"quarter":"Q1","ok":true}'),
      contentType: 'application/json',
      team: 'finance',
    },
    { key: 'exports/naïve name with spaces.txt', body: Buffer.from('héllo wörld\n') },
    { key: 'exports/large/archive.bin', body: randomBytes(20 * 1024 * 1024 + 3) },
  ]
  const outside = { key: 'other/not-copied.txt', body: Buffer.from('stays in S3') }
  const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

  beforeAll(async () => {
    dir = await scratch('s3-gcs')
    await s3.send(new CreateBucketCommand({ Bucket: s3Bucket }))
    for (const object of [...objects, outside]) {
      await s3.send(
        new PutObjectCommand({
          Bucket: s3Bucket,
          Key: object.key,
          Body: object.body,
          ...('contentType' in object && object.contentType
            ? { ContentType: object.contentType }
            : {}),
          ...('team' in object && object.team ? { Metadata: { team: object.team } } : {}),
        }),
      )
    }
    await storage.createBucket(gcsBucket)
  })

  afterAll(async () => {
    const page = await s3
      .send(new ListObjectsV2Command({ Bucket: s3Bucket }))
      .catch(() => undefined)
    const keys = (page?.Contents ?? []).map((o) => ({ Key: o.Key! }))
    if (keys.length)
      await s3
        .send(new DeleteObjectsCommand({ Bucket: s3Bucket, Delete: { Objects: keys } }))
        .catch(() => {})
    await s3.send(new DeleteBucketCommand({ Bucket: s3Bucket })).catch(() => {})
    s3.destroy()
    await storage
      .bucket(gcsBucket)
      .deleteFiles({ force: true })
      .catch(() => {})
    await storage
      .bucket(gcsBucket)
      .delete()
      .catch(() => {})
    await dir?.remove()
  })

  it('copies every object under exports/ byte for byte, with content type and metadata', async () => {
    const run = await runExample(
      's3-to-gcs.json',
      {
        // The SDKs' own variables for another endpoint than AWS and Google.
        AWS_ENDPOINT_URL_S3: s3Endpoint,
        STORAGE_EMULATOR_HOST: gcsEndpoint,
        AWS_ACCESS_KEY_ID: s3AccessKeyId,
        AWS_SECRET_ACCESS_KEY: s3SecretAccessKey,
        AWS_REGION: s3Region,
        S3_BUCKET: s3Bucket,
        GCS_BUCKET: gcsBucket,
      },
      join(dir.dir, 'checkpoints.json'),
    )
    expectCompleted(run, { s3: objects.length, gcs: objects.length })
    expect(run.stdout + run.stderr).not.toContain(s3SecretAccessKey)

    const [files] = await storage.bucket(gcsBucket).getFiles()
    expect(files.map((f) => f.name).sort()).toEqual(objects.map((o) => o.key).sort())
    for (const object of objects) {
      const file = storage.bucket(gcsBucket).file(object.key)
      const [bytes] = await file.download()
      expect(sha256(bytes), object.key).toBe(sha256(object.body))
      const [metadata] = await file.getMetadata()
      if (object.contentType) expect(metadata.contentType, object.key).toBe(object.contentType)
      if (object.team) expect(metadata.metadata?.team).toBe(object.team)
    }
  })
})

const MONGO_URL = process.env.NVISY_TEST_MONGODB_URL

describe('jsonl-to-mongodb.json', () => {
  let emulator: MongoEmulator | undefined
  let connectionString: string
  let client: MongoClient
  let dir: Awaited<ReturnType<typeof scratch>>
  const LINES = 2500
  const products = Array.from({ length: LINES }, (_, n) => {
    const i = n + 1
    return {
      id: `p-${String(i).padStart(5, '0')}`,
      name: `Product ${i} ${['Zoë', '東京', 'emoji 🎉', 'quote "q"'][i % 4]}`,
      price: i % 9 === 0 ? null : Math.round(i * 137) / 100,
      tags: i % 3 === 0 ? [] : ['kitchen', `batch-${i % 7}`],
      dimensions: { w: i % 50, h: (i % 30) + 0.5, unit: 'cm' },
      inStock: i % 2 === 0,
    }
  })

  beforeAll(async () => {
    dir = await scratch('jsonl-mongo')
    // The source file: one product per line, as the example reads it from JSONL_DIR.
    await writeFile(
      join(dir.dir, 'products.jsonl'),
      `${products.map((p) => JSON.stringify(p)).join('\n')}\n`,
    )
    if (MONGO_URL) {
      connectionString = MONGO_URL
      client = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 })
    } else {
      const password = `pw-${randomBytes(8).toString('hex')}`
      emulator = await startMongoEmulator({ port: 0, users: { shop: password } })
      const url = new URL(emulator.url)
      url.username = 'shop'
      url.password = password
      connectionString = url.toString()
      client = new MongoClient(emulator.url, {
        auth: { username: 'shop', password },
        serverSelectionTimeoutMS: 5000,
      })
    }
    await client.connect()
    // The example writes `shop.products`; start from none.
    await client
      .db('shop')
      .collection('products')
      .drop()
      .catch(() => {})
  })

  afterAll(async () => {
    await client
      ?.db('shop')
      .collection('products')
      .drop()
      .catch(() => {})
    await client?.close()
    await emulator?.close()
    await dir?.remove()
  })

  it('writes one document per line, its _id the line id, the content unchanged', async () => {
    const run = await runExample(
      'jsonl-to-mongodb.json',
      { JSONL_DIR: dir.dir, MONGODB_URL: connectionString },
      join(dir.dir, 'checkpoints.json'),
    )
    expectCompleted(run, { file: LINES, mongodb: LINES })
    const password = new URL(connectionString).password
    if (password) expect(run.stdout + run.stderr).not.toContain(password)

    const stored = await client
      .db('shop')
      .collection('products')
      .find({}, { sort: { _id: 1 } })
      .toArray()
    expect(stored).toHaveLength(LINES)
    const expected = [...products].sort((a, b) => (a.id < b.id ? -1 : 1))
    stored.forEach((document, i) => {
      const { _id, ...content } = document
      expect(_id).toBe(expected[i]!.id)
      expect(content).toEqual(expected[i])
    })
  })
})

describe.skipIf(postgresSkip)('postgres-to-pinecone.json', () => {
  let source: PgDatabase
  let emulator: PineconeEmulator
  let dir: Awaited<ReturnType<typeof scratch>>
  const apiKey = `pc-${randomBytes(12).toString('hex')}`
  const ROWS = 300
  const DIMENSION = 1536 // the example's convert.embedding.dimension

  /** A deterministic vector of float32 values (what a `real[]` column holds exactly). */
  function vector(seed: number, length = DIMENSION): number[] {
    let state = seed * 2654435761
    return Array.from({ length }, () => {
      state = (Math.imul(state ^ (state >>> 15), 2246822519) + 0x9e3779b9) | 0
      return Math.fround(((state >>> 0) / 2 ** 32) * 2 - 1)
    })
  }

  beforeAll(async () => {
    ;[source, dir] = await Promise.all([PgDatabase.create('pinecone'), scratch('pg-pinecone')])
    await source.pool.query(`CREATE TABLE products (
      id bigint PRIMARY KEY,
      title text NOT NULL,
      category text,
      price numeric(10,2),
      description text,
      embedding real[] NOT NULL)`)
    for (let start = 1; start <= ROWS; start += 50) {
      const values: unknown[] = []
      const tuples: string[] = []
      for (let i = start; i < start + 50 && i <= ROWS; i++) {
        const at = values.length
        values.push(
          i,
          `Product ${i} ${['Zoë', '東京', 'emoji 🎉'][i % 3]}`,
          i % 4 === 0 ? null : ['kitchen', 'garden', 'office'][i % 3],
          `${i}.${String(i % 100).padStart(2, '0')}`,
          'not copied: the source reads only the listed columns',
          vector(i),
        )
        tuples.push(`($${at + 1}, $${at + 2}, $${at + 3}, $${at + 4}, $${at + 5}, $${at + 6})`)
      }
      await source.pool.query(
        `INSERT INTO products (id, title, category, price, description, embedding) VALUES ${tuples.join(', ')}`,
        values,
      )
    }
    emulator = await startPineconeEmulator({
      apiKey,
      indexes: [{ name: 'products', dimension: DIMENSION, metric: 'cosine' }],
    })
  })

  afterAll(async () => {
    await emulator?.close()
    await Promise.allSettled([source?.drop(), dir?.remove()])
  })

  it('upserts one vector per row with its columns as metadata; a wrong-length vector fails the run naming the column', async () => {
    const checkpoints = join(dir.dir, 'checkpoints.json')
    const env = {
      DATABASE_URL: source.url,
      PINECONE_INDEX_HOST: emulator.hostOf('products'),
      PINECONE_API_KEY: apiKey,
    }
    const run = await runExample('postgres-to-pinecone.json', env, checkpoints)
    expectCompleted(run, { products: ROWS, pinecone: ROWS })
    expect(run.stdout + run.stderr).not.toContain(apiKey)

    const index = emulator.index('products')!
    expect(index.count('products')).toBe(ROWS)
    const ids = Array.from({ length: ROWS }, (_, n) => String(n + 1))
    const stored = new Map(index.fetch(ids, 'products').map((r) => [r.id, r]))
    expect(stored.size).toBe(ROWS)
    for (let i = 1; i <= ROWS; i++) {
      const record = stored.get(String(i))!
      expect([...record.values!], `vector ${i}`).toEqual(vector(i))
      expect(record.metadata).toEqual({
        title: `Product ${i} ${['Zoë', '東京', 'emoji 🎉'][i % 3]}`,
        ...(i % 4 === 0 ? {} : { category: ['kitchen', 'garden', 'office'][i % 3] }),
        price: `${i}.${String(i % 100).padStart(2, '0')}`,
      })
    }

    // A row added later whose vector has one value too few: the next run fails on it,
    // naming the column and the rule, and writes nothing for it.
    await source.pool.query(
      `INSERT INTO products (id, title, embedding) VALUES ($1, 'short vector', $2)`,
      [ROWS + 1, vector(ROWS + 1, DIMENSION - 1)],
    )
    const bad = await runExample('postgres-to-pinecone.json', env, checkpoints)
    expect(bad.code, describeRun(bad)).toBe(1)
    expect(bad.summary?.status).toBe('failed')
    expect(bad.summary?.error?.kind).toBe('data')
    expect(bad.summary?.error?.message).toContain(
      `record "${ROWS + 1}": vector column "embedding" (convert.embedding.vector) has ${DIMENSION - 1} values, convert.embedding.dimension is ${DIMENSION}`,
    )
    expect(index.count('products')).toBe(ROWS)
  })
})

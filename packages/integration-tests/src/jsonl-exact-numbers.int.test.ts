// Numbers JSON.parse cannot hold, read from JSON text (issue 14): a JSONL file with integers
// past 2^53 and 2^63, 1e400, -1e-400 and 0.1000000000000000055511151231257827 copied by
// `nvisy run` (the built CLI) to another JSONL file and to MongoDB. The fs source keeps those
// fields' text in DocumentData.rawJson, so the JSONL sink writes it back byte for byte and the
// MongoDB sink types each number from its text (int64, Decimal128), as it does for a
// relational JSON column. Each destination is read back with its own client, as text.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type MongoEmulator, startMongoEmulator } from '@nvisy/emulators'
import { BSON, MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, describeRun, itemFailures, runPipeline, scratchDir } from './support/cli.js'
import { parseLossless } from './support/document-canonical.js'

const MONGO_URL = process.env.NVISY_TEST_MONGODB_URL
const skip = existsSync(CLI)
  ? false
  : `${CLI} is missing: run pnpm --filter @nvisy/runtime... build`

/** Lines as a JSONL writer (JSON.stringify) would write them, with numbers past a double. */
const LINES = [
  '{"id":"big","n":12345678901234567890123,"i64":9223372036854775807,"over":9223372036854775808,"ok":2.5,"small":7}',
  '{"id":"doubles","inf":1e400,"tiny":-1e-400,"d":0.1000000000000000055511151231257827}',
  '{"id":"nested","o":{"k":[9007199254740993,"s",{"x":-12345678901234567890}]},"t":"12345678901234567890"}',
  // Number ids past 2^53: JSON.parse makes both 9007199254740992, the copy keeps two documents.
  '{"id":9007199254740993,"v":"a"}',
  '{"id":9007199254740992,"v":"b"}',
  '{"id":"plain","s":"no numbers to keep","list":[1,2.25,-3]}',
]
/** Spacing is not kept (the sink writes compact JSON), the numbers are. */
const SPACED = '{"id": "spaced", "n": [ 12345678901234567890123, 1e400 ], "d": 2.5}'
/** Numbers JSON.parse holds exactly are written as JSON.stringify writes them: the same value. */
const NORMALIZED = '{"id":"normalized","e":1.5e300,"z":2.50,"u":1E2}'
/** A repeated key reads as JSON.parse reads it: the last value wins, at the first key's place. */
const REPEATED = '{"id":"repeated","a":1e400,"b":0,"a":12345678901234567890}'

describe.skipIf(skip)('JSONL numbers past a double through nvisy run', () => {
  let work: Awaited<ReturnType<typeof scratchDir>>
  let root: string

  beforeAll(async () => {
    work = await scratchDir('jsonl-numbers')
    root = join(work.dir, 'fs')
    await mkdir(root)
    await writeFile(
      join(root, 'in.jsonl'),
      `${[...LINES, SPACED, NORMALIZED, REPEATED].join('\n')}\n`,
    )
  })
  afterAll(() => work?.cleanup())

  function jsonlSource() {
    return {
      id: 'src',
      role: 'source',
      provider: 'fs',
      connection: { params: { root } },
      stream: { kind: 'document', file: 'in.jsonl' },
    }
  }

  it('JSONL -> JSONL: every number arrives as written, byte for byte', async () => {
    const run = await runPipeline(work.dir, {
      id: 'jsonl-to-jsonl',
      nodes: [
        jsonlSource(),
        {
          id: 'dst',
          role: 'sink',
          provider: 'fs',
          connection: { params: { root } },
          stream: { kind: 'document', file: 'out.jsonl' },
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
    })
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.summary?.status, describeRun(run)).toBe('completed')
    const out = (await readFile(join(root, 'out.jsonl'), 'utf8')).split('\n')
    expect(out.pop()).toBe('')
    expect(out.slice(0, LINES.length)).toEqual(LINES)
    // Per field, the same value text (numbers as digits, keys in order), spacing aside.
    expect(parseLossless(out[LINES.length]!)).toEqual(parseLossless(SPACED))
    expect(out[LINES.length]).toBe('{"id":"spaced","n":[12345678901234567890123,1e400],"d":2.5}')
    expect(out[LINES.length + 1]).toBe('{"id":"normalized","e":1.5e+300,"z":2.5,"u":100}')
    expect(out[LINES.length + 2]).toBe('{"id":"repeated","a":12345678901234567890,"b":0}')
    expect(out).toHaveLength(LINES.length + 3)
  })

  describe('MongoDB', () => {
    let emulator: MongoEmulator | undefined
    let client: MongoClient
    let connection: object
    const database = `nvisy_jsonl_${randomBytes(4).toString('hex')}`

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

    it('JSONL -> MongoDB: int64 and Decimal128 from the text; a number no BSON type holds is refused naming the field, dead-lettered as written', async () => {
      // 41 significant digits: more than a Decimal128's 34.
      const unholdable = `{"id":"unholdable","h":1${'2'.repeat(40)}}`
      await writeFile(
        join(root, 'mongo.jsonl'),
        `${[...LINES, SPACED, NORMALIZED, REPEATED, unholdable].join('\n')}\n`,
      )
      const deadRoot = join(work.dir, 'mongo-dead')
      await mkdir(deadRoot)
      const run = await runPipeline(work.dir, {
        id: 'jsonl-to-mongo',
        nodes: [
          { ...jsonlSource(), stream: { kind: 'document', file: 'mongo.jsonl' } },
          {
            id: 'dst',
            role: 'sink',
            provider: 'mongodb',
            connection,
            stream: { collection: 'numbers' },
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
      })
      expect(run.code, describeRun(run)).toBe(0)
      expect(run.summary?.stats.deadLettered, describeRun(run)).toBe(1)
      const failures = itemFailures(run)
      expect(failures, describeRun(run)).toHaveLength(1)
      expect(failures[0]!.kind).toBe('data')
      expect(failures[0]!.message).toMatch(
        /document "unholdable": field "h": the number 1222.* cannot be stored exactly/,
      )
      expect(await readFile(join(deadRoot, 'refused.jsonl'), 'utf8')).toBe(`${unholdable}\n`)

      // MongoDB's own canonical Extended JSON of what it stores, by document.
      const docs = await client.db(database).collection('numbers').find({}).toArray()
      const stored = new Map(
        docs.map((doc) => {
          const { _id, ...rest } = doc
          return [String(_id), BSON.EJSON.stringify(rest, { relaxed: false })]
        }),
      )
      expect(stored.size).toBe(LINES.length + 3)
      expect(stored.get('big')).toBe(
        '{"id":"big","n":{"$numberDecimal":"12345678901234567890123"},"i64":{"$numberLong":"9223372036854775807"},"over":{"$numberDecimal":"9223372036854775808"},"ok":{"$numberDouble":"2.5"},"small":{"$numberInt":"7"}}',
      )
      expect(stored.get('doubles')).toBe(
        '{"id":"doubles","inf":{"$numberDecimal":"1E+400"},"tiny":{"$numberDecimal":"-1E-400"},"d":{"$numberDecimal":"0.1000000000000000055511151231257827"}}',
      )
      expect(stored.get('nested')).toBe(
        '{"id":"nested","o":{"k":[{"$numberLong":"9007199254740993"},"s",{"x":{"$numberDecimal":"-12345678901234567890"}}]},"t":"12345678901234567890"}',
      )
      expect(stored.get('9007199254740993')).toBe(
        '{"id":{"$numberLong":"9007199254740993"},"v":"a"}',
      )
      expect(stored.get('9007199254740992')).toBe(
        '{"id":{"$numberLong":"9007199254740992"},"v":"b"}',
      )
      expect(stored.get('spaced')).toBe(
        '{"id":"spaced","n":[{"$numberDecimal":"12345678901234567890123"},{"$numberDecimal":"1E+400"}],"d":{"$numberDouble":"2.5"}}',
      )
      expect(stored.get('normalized')).toBe(
        '{"id":"normalized","e":{"$numberDouble":"1.5e+300"},"z":{"$numberDouble":"2.5"},"u":{"$numberInt":"100"}}',
      )
      expect(stored.get('repeated')).toBe(
        '{"id":"repeated","a":{"$numberDecimal":"12345678901234567890"},"b":{"$numberInt":"0"}}',
      )
    })
  })
})

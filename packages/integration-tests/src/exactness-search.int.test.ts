// The exactness matrix, search-engine side (issue 19): the MySQL trap table copied by
// `nvisy run` into an Elasticsearch index and an OpenSearch index (the project's search
// emulator, or NVISY_TEST_ELASTICSEARCH_URL / NVISY_TEST_OPENSEARCH_URL). Each index is read
// back over plain HTTP as the server's own _search text, parsed without loss, and compared
// field by field with the canonical text the SOURCE DATABASE computed in SQL
// (support/document-canonical.ts), as for the other document destinations.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type SearchEmulator, startSearchEmulator } from '@nvisy/emulators'
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
const FLOAT_BITS: Record<string, number> = { 'f.Float': 32 }

const skip =
  (await mysqlSkipReason()) ||
  (existsSync(CLI) ? false : `${CLI} is missing: run pipeline build first`)

function field(node: Json, name: string): Json | undefined {
  return node.t === 'obj' ? node.v.find(([k]) => k === name)?.[1] : undefined
}

const FLAVORS = [
  {
    provider: 'elasticsearch',
    url: process.env.NVISY_TEST_ELASTICSEARCH_URL,
    user: process.env.NVISY_TEST_ELASTICSEARCH_USERNAME,
    password: process.env.NVISY_TEST_ELASTICSEARCH_PASSWORD,
  },
  {
    provider: 'opensearch',
    url: process.env.NVISY_TEST_OPENSEARCH_URL,
    user: process.env.NVISY_TEST_OPENSEARCH_USERNAME,
    password: process.env.NVISY_TEST_OPENSEARCH_PASSWORD,
  },
] as const

describe.skipIf(skip)('exactness matrix: search engines through nvisy run', () => {
  const my = new MysqlScratch()
  let work: Awaited<ReturnType<typeof scratchDir>>
  const expected = new Map<string, string[]>()
  /**
   * Keys of the rows whose JSON column repeats a key in an object (MariaDB keeps JSON text as
   * written). Elasticsearch and OpenSearch refuse such a document (strict duplicate detection),
   * so the sink refuses it naming the column; it goes, exact, to the dead-letter JSONL file.
   */
  const repeatedKey = new Set<string>()
  const JSON_COLUMN = TRAP_COLUMNS.findIndex((column) => column.kind === 'json')

  beforeAll(async () => {
    work = await scratchDir('search')
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
    expect(rows.length, 'documents').toBe(only.size)
    expect(differences.slice(0, 15), 'first differences (source != destination)').toEqual([])
  }

  for (const flavor of FLAVORS) {
    describe(flavor.provider, () => {
      let emulator: SearchEmulator | undefined
      let url: string
      let credentials: Record<string, string>
      const index = `nvisy-matrix-${randomBytes(4).toString('hex')}`

      beforeAll(async () => {
        if (flavor.url) {
          url = flavor.url
          credentials =
            flavor.user && flavor.password
              ? { username: flavor.user, password: flavor.password }
              : {}
        } else {
          const password = `pw-${randomBytes(8).toString('hex')}`
          emulator = await startSearchEmulator({
            flavor: flavor.provider,
            users: { nvisy: password },
          })
          url = emulator.url
          credentials = { username: 'nvisy', password }
        }
      })

      const headers = () =>
        credentials.username
          ? {
              authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`,
            }
          : ({} as Record<string, string>)

      afterAll(async () => {
        await fetch(`${url}/${index}`, { method: 'DELETE', headers: headers() }).catch(() => {})
        await emulator?.close()
      })

      // JSON column text is sent verbatim (DocumentData.rawJson): 1e400, integers past 2^53, key
      // order. A row whose JSON repeats a key is refused naming the column (the servers refuse
      // it too) and reaches the dead-letter file exactly.
      it(`MySQL -> ${flavor.provider}: every value exact (read back as the server's _source text); a repeated JSON key is refused naming the column`, async () => {
        const deadRoot = join(work.dir, `${flavor.provider}-dead`)
        await mkdir(deadRoot)
        const run = await runPipeline(work.dir, {
          id: `my-to-${flavor.provider}`,
          nodes: [
            {
              id: 'src',
              role: 'source',
              provider: 'mysql',
              connection: my.connection(),
              stream: { table: TRAP_TABLE, database: my.database, pageSize: 1000 },
            },
            {
              id: 'dst',
              role: 'sink',
              batch: { maxItems: 500 },
              provider: flavor.provider,
              connection: { credentials, params: { url } },
              // The JSON column holds objects in some rows and scalars in others: a field
              // that is not parsed (kept in _source only) takes both.
              stream: {
                index,
                refresh: 'wait_for',
                mappings: { properties: { 'J son': { type: 'object', enabled: false } } },
              },
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
            /field "J son": its JSON text repeats (the key "[^"]*"|a key) in one object, which (Elasticsearch|OpenSearch) refuses/,
          )
        }
        const response = await fetch(`${url}/${index}/_search?size=10000`, { headers: headers() })
        expect(response.status).toBe(200)
        const body = parseLossless(await response.text())
        const hits = field(field(body, 'hits')!, 'hits')!
        expect(hits.t).toBe('arr')
        compare(
          (hits as { v: Json[] }).v.map((hit) => field(hit, '_source')!),
          new Set([...expected.keys()].filter((key) => !repeatedKey.has(key))),
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
    })
  }
})

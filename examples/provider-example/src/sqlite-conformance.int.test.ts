import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RecordData } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import Database from 'better-sqlite3'
import { quoteIdent } from './sqlite-catalog.js'
import { sqliteProvider } from './sqlite-provider.js'

// No service to wait for: SQLite is a file. Each run gets its own temporary directory.
const dir = mkdtempSync(join(tmpdir(), 'nvisy-sqlite-conformance-'))
const path = join(dir, 'conformance.db')
// Hostile names: every identifier the provider writes into SQL must be quoted.
const source = 'so"urce; DROP TABLE victim; --'
const sink = 'si"nk\'; DELETE FROM victim; --'

let db: Database.Database | undefined
const handle = () => {
  db ??= new Database(path)
  return db
}

runProviderConformance({
  name: 'sqlite',
  provider: sqliteProvider,
  input: () => ({ credentials: {}, params: { path } }),
  // No badCredentials: SQLite has no credentials (file permissions are the access control).
  badParams: { input: { credentials: {}, params: { path: ':memory:' } }, path: '/params/path' },
  fixture: {
    async setup() {
      handle().exec(`
        CREATE TABLE victim (x INTEGER);
        INSERT INTO victim VALUES (1);
        CREATE TABLE ${quoteIdent(source)} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE ${quoteIdent(sink)} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
      `)
    },
    async teardown() {
      const count = handle().prepare('SELECT count(*) FROM victim').pluck().get()
      db?.close()
      rmSync(dir, { recursive: true, force: true })
      if (count !== 1)
        throw new Error('the victim table was written to: an identifier was not quoted')
    },
    async clear() {
      handle().exec(`DELETE FROM ${quoteIdent(source)}; DELETE FROM ${quoteIdent(sink)};`)
    },
    async seed(from, count) {
      const insert = handle().prepare(`INSERT INTO ${quoteIdent(source)} (id, name) VALUES (?, ?)`)
      handle().transaction(() => {
        for (let i = from; i < from + count; i++) insert.run(i, `item ${i}`)
      })()
    },
    stream: { table: source, pageSize: 7 },
    itemNumber: (data) => Number((data as RecordData).values.id),
    sink: {
      stream: { table: sink },
      makeItem: (i) => ({ kind: 'record', values: { id: i, name: `item ${i}` } }),
      // NOT NULL refuses it.
      makeBadItem: () => ({ kind: 'record', values: { id: 2, name: null } }),
      async storedItems() {
        return handle()
          .prepare(`SELECT id FROM ${quoteIdent(sink)} ORDER BY id`)
          .pluck()
          .all() as number[]
      },
    },
  },
})

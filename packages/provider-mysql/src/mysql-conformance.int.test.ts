import { randomBytes } from 'node:crypto'
import type { Data } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import {
  createTestDatabase,
  mysqlSkipReason,
  type TestDatabase,
} from './__fixtures__/mysql-test-db.js'
import { mysqlProvider } from './mysql-provider.js'

const skip = await mysqlSkipReason()
let db: TestDatabase
const probeUser = `nvisy_probe_${randomBytes(4).toString('hex')}`

runProviderConformance({
  name: 'mysql',
  provider: mysqlProvider,
  skip,
  input: () => db.input(),
  badCredentials: {
    input: (canary) => {
      const input = db.input()
      return { credentials: { user: probeUser, password: canary }, params: input.params }
    },
    kind: 'auth',
  },
  badParams: {
    input: { credentials: { user: 'root' }, params: { host: '127.0.0.1', port: 70000 } },
    path: '/params/port',
  },
  fixture: {
    async setup() {
      db = await createTestDatabase()
      await db.sql('CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL)')
      await db.sql('CREATE TABLE sink_items (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL)')
      await db.sql(
        `CREATE USER IF NOT EXISTS '${probeUser}'@'%' IDENTIFIED BY 'the-right-password-1'`,
      )
    },
    async teardown() {
      if (!db) return
      await db.sql(`DROP USER IF EXISTS '${probeUser}'@'%'`)
      await db.drop()
    },
    async clear() {
      await db.sql('DELETE FROM items')
      await db.sql('DELETE FROM sink_items')
    },
    async seed(from, count) {
      const rows = Array.from({ length: count }, (_, k) => `(${from + k}, 'item ${from + k}')`)
      await db.sql(`INSERT INTO items (id, name) VALUES ${rows.join(', ')}`)
    },
    stream: { table: 'items', pageSize: 7 },
    itemNumber: (data: Data) => Number((data as Extract<Data, { kind: 'record' }>).values.id),
    sink: {
      stream: { table: 'sink_items' },
      makeItem: (i) => ({ kind: 'record', values: { id: i, name: `item ${i}` } }),
      // Strict mode refuses a non-numeric id instead of storing 0.
      makeBadItem: () => ({ kind: 'record', values: { id: 'not a number', name: 'bad' } }),
      async storedItems() {
        const rows = await db.sql('SELECT id FROM sink_items')
        return rows.map((row) => Number(row.id))
      },
    },
  },
})

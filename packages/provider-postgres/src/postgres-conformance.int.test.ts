import type { Data } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import {
  adminPool,
  skipReason,
  TEST_URL,
  testInput,
  uniqueSchema,
} from './__fixtures__/postgres.js'
import { postgresProvider } from './index.js'

const schema = uniqueSchema('nvisy_conf')
const skip = await skipReason()
const admin = adminPool()
// pg_hba.conf on the test machine is `trust` for 127.0.0.1, so a wrong password is accepted
// whatever it is. A role that does not exist is refused before any password check with
// SQLSTATE 28000 (invalid_authorization_specification): the same auth path (the server's
// authentication stage, error class 28) that a wrong password (28P01) takes on a server that
// checks passwords; both map to `auth`. The canary is the password, so the kit still proves
// that no secret leaks through the error.
const MISSING_ROLE = 'nvisy_no_such_role'

runProviderConformance({
  name: 'postgres',
  provider: postgresProvider,
  skip,
  input: () => testInput(schema),
  badCredentials: {
    input: (canary) => {
      const url = new URL(TEST_URL)
      return {
        credentials: { user: MISSING_ROLE, password: canary },
        params: {
          host: url.hostname,
          port: Number(url.port || 5432),
          database: url.pathname.slice(1),
          schema,
        },
      }
    },
    kind: 'auth',
  },
  badParams: {
    input: { credentials: { url: TEST_URL }, params: { port: 'five' } },
    path: '/params/port',
  },
  fixture: {
    async setup() {
      await admin.query(`CREATE SCHEMA "${schema}"`)
      await admin.query(
        `CREATE TABLE "${schema}".items (id integer PRIMARY KEY, name text NOT NULL, score numeric(10,2) CHECK (score >= 0))`,
      )
      await admin.query(
        `CREATE TABLE "${schema}".sink (id integer PRIMARY KEY, name text NOT NULL, score numeric(10,2) CHECK (score >= 0))`,
      )
    },
    async teardown() {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await admin.end()
    },
    async clear() {
      await admin.query(`TRUNCATE "${schema}".items, "${schema}".sink`)
    },
    async seed(from, count) {
      await admin.query(
        `INSERT INTO "${schema}".items SELECT g, 'item ' || g, g * 1.5 FROM generate_series($1::int, $2::int) g`,
        [from, from + count - 1],
      )
    },
    stream: { table: 'items' },
    itemNumber: (data: Data) => (data.kind === 'record' ? Number(data.values.id) : Number.NaN),
    sink: {
      stream: { table: 'sink' },
      makeItem: (i: number): Data => ({
        kind: 'record',
        values: { id: i, name: `item ${i}`, score: { $type: 'decimal', value: `${i}.25` } },
      }),
      // Violates the CHECK constraint (class 23): the server refuses this row alone.
      makeBadItem: (): Data => ({
        kind: 'record',
        values: { id: 2, name: 'bad', score: { $type: 'decimal', value: '-1' } },
      }),
      async storedItems() {
        const result = await admin.query<{ id: number }>(
          `SELECT id FROM "${schema}".sink ORDER BY id`,
        )
        return result.rows.map((r) => r.id)
      },
    },
  },
})

// `nvisy discover` through the built CLI against the real PostgreSQL: a table made here shows
// up with its columns, as JSON in a pipe (or with --json) and as a table on a terminal (a real
// pseudo-terminal from util-linux `script`) or with --format table.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, runCli } from './__fixtures__/cli.js'
import { buildRuntimeDist, PG, postgresSkip } from './__fixtures__/harness.js'

const skip = await postgresSkip()
const schema = `nvisy_discover_${randomBytes(4).toString('hex')}`
const PROVIDER = ['--provider', '@nvisy/provider-postgres']
let dir: string
let client: pg.Client

describe.skipIf(skip)('nvisy discover', () => {
  beforeAll(async () => {
    await buildRuntimeDist()
    dir = await mkdtemp(join(tmpdir(), 'nvisy-discover-'))
    client = new pg.Client({ ...PG })
    await client.connect()
    await client.query(`CREATE SCHEMA ${schema}`)
    await client.query(
      `CREATE TABLE ${schema}.people (id bigint PRIMARY KEY, name text NOT NULL, born date, score numeric(5,2))`,
    )
    await writeFile(
      join(dir, 'conn.json'),
      JSON.stringify({
        params: { host: PG.host, port: PG.port, database: PG.database },
        credentials: { user: PG.user },
      }),
    )
  }, 300_000)

  afterAll(async () => {
    await client?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await client?.end()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('in a pipe: JSON with the table and its columns, types, nullability and key', async () => {
    const result = await runCli(
      ['discover', 'postgres', '--connection', 'conn.json', ...PROVIDER],
      {
        cwd: dir,
      },
    )
    expect(result.code, result.stderr).toBe(0)
    const { streams } = JSON.parse(result.stdout)
    const people = streams.find((s: { name: string }) => s.name === `${schema}.people`)
    expect(people).toEqual({
      name: `${schema}.people`,
      type: 'table',
      data: 'record',
      stream: { schema, table: 'people' },
      fields: [
        { name: 'id', type: 'bigint', nullable: false, primaryKey: true },
        { name: 'name', type: 'text', nullable: false, primaryKey: false },
        { name: 'born', type: 'date', nullable: true, primaryKey: false },
        { name: 'score', type: 'numeric(5,2)', nullable: true, primaryKey: false },
      ],
    })
  })

  it('--format table: one row per column, the table named on the first', async () => {
    const result = await runCli(
      ['discover', 'postgres', '--connection', 'conn.json', '--format', 'table', ...PROVIDER],
      { cwd: dir },
    )
    expect(result.code, result.stderr).toBe(0)
    expectPeopleTable(result.stdout)
  })

  it('on a terminal: a table by default, JSON with --json', async () => {
    const onTerminal = (args: string[]) =>
      promisify(execFile)(
        'script',
        ['-qec', [process.execPath, CLI, ...args].map(shellQuote).join(' '), '/dev/null'],
        { cwd: dir, env: { PATH: process.env.PATH, TERM: 'dumb' }, timeout: 60_000 },
      )
    const args = ['discover', 'postgres', '--connection', 'conn.json', ...PROVIDER]
    const table = await onTerminal(args)
    expectPeopleTable(table.stdout.replace(/\r\n/g, '\n'))
    const asJson = await onTerminal([...args, '--json'])
    const { streams } = JSON.parse(asJson.stdout.replace(/\r\n/g, '\n'))
    expect(streams.map((s: { name: string }) => s.name)).toContain(`${schema}.people`)
  })

  it('bad flags are usage errors (exit 2) before connecting', async () => {
    const bad = await runCli(
      ['discover', 'postgres', '--connection', 'conn.json', '--format', 'yaml', ...PROVIDER],
      { cwd: dir },
    )
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--format must be table or json (got "yaml")')
    const check = await runCli(
      ['check', 'postgres', '--connection', 'conn.json', '--json', ...PROVIDER],
      { cwd: dir },
    )
    expect(check.code).toBe(2)
    expect(check.stderr).toContain('--format and --json are for nvisy discover')
  })
})

function expectPeopleTable(text: string): void {
  const lines = text.split('\n')
  const header = lines.find((l) => l.startsWith('stream'))
  expect(header?.split(/\s{2,}/)).toEqual([
    'stream',
    'type',
    'data',
    'field',
    'field type',
    'nullable',
    'key',
  ])
  const at = lines.findIndex((l) => l.startsWith(`${schema}.people `))
  expect(at, text).toBeGreaterThan(0)
  const cells = (line: string) => line.trim().split(/\s+/)
  expect(cells(lines[at]!)).toEqual([
    `${schema}.people`,
    'table',
    'record',
    'id',
    'bigint',
    'no',
    'primary',
  ])
  expect(cells(lines[at + 1]!)).toEqual(['name', 'text', 'no'])
  expect(cells(lines[at + 2]!)).toEqual(['born', 'date', 'yes'])
  expect(cells(lines[at + 3]!)).toEqual(['score', 'numeric(5,2)', 'yes'])
  // The columns line up under the header.
  expect(lines[at + 1]!.indexOf('name')).toBe(header!.indexOf('field'))
  expect(lines[lines.length - 2]).toMatch(/^\d+ streams?$/)
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`
}

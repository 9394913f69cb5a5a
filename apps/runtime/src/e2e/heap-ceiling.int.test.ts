// `nvisy run` under its default heap ceiling (a worker thread with a capped old space): output,
// exit codes and signals as without it; a run that outgrows it ends with exit 1 and a message
// saying how to raise it, not a V8 crash report; without a ceiling the same run completes.
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, runCli } from './__fixtures__/cli.js'

let dir: string
const PG_URL = process.env.NVISY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

function pipeline(file: string, out: string) {
  return {
    id: 'heap',
    nodes: [
      {
        id: 'src',
        role: 'source',
        provider: 'fs',
        connection: { params: { root: dir } },
        stream: { kind: 'document', file },
      },
      {
        id: 'dst',
        role: 'sink',
        provider: 'fs',
        connection: { params: { root: dir } },
        stream: { kind: 'document', file: out },
      },
    ],
    edges: [{ from: 'src', to: 'dst' }],
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-heap-'))
  await writeFile(
    join(dir, 'nvisy.config.json'),
    JSON.stringify({ providers: ['@nvisy/provider-fs'] }),
  )
  // One document of 2 million small objects: 56 MB of text (under the 64 MiB line limit), several times that parsed.
  const items = Array.from({ length: 2_000_000 }, (_, i) => `{"i":${i},"k":"v${i}"}`)
  await writeFile(join(dir, 'huge.jsonl'), `{"id":"huge","items":[${items.join(',')}]}\n`)
  await writeFile(join(dir, 'small.jsonl'), '{"id":"a","n":1}\n{"id":"b","n":2}\n')
  await writeFile(join(dir, 'huge.json'), JSON.stringify(pipeline('huge.jsonl', 'huge-out.jsonl')))
  await writeFile(
    join(dir, 'small.json'),
    JSON.stringify(pipeline('small.jsonl', 'small-out.jsonl')),
  )
}, 60_000)

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('nvisy run under a heap ceiling', () => {
  it('runs a pipeline under the default ceiling with the same output and exit code', async () => {
    const result = await runCli(['run', 'small.json'], { cwd: dir })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toContain('"type":"completed"')
    const out = await readFile(join(dir, 'small-out.jsonl'), 'utf8')
    expect(
      out
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).id),
    ).toEqual(['a', 'b'])
  })

  it('a run that outgrows the ceiling exits 1 with how to raise it; with none it completes', async () => {
    const capped = await runCli(['run', 'huge.json', '--no-resume'], {
      cwd: dir,
      env: { NVISY_MAX_HEAP_MB: '64' },
      timeoutMs: 120_000,
    })
    expect(capped.code, capped.stderr.slice(-2000)).toBe(1)
    expect(capped.stderr).toContain('reached its heap ceiling of 64 MB')
    expect(capped.stderr).toContain('NVISY_MAX_HEAP_MB')
    expect(capped.stderr).not.toContain('FATAL ERROR')

    const free = await runCli(['run', 'huge.json', '--no-resume'], {
      cwd: dir,
      env: { NVISY_MAX_HEAP_MB: '0' },
      timeoutMs: 120_000,
    })
    expect(free.code, free.stderr.slice(-2000)).toBe(0)
  }, 240_000)

  it('SIGTERM through the worker cancels at a batch boundary (exit 3, checkpoint kept); resume completes exactly', async () => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 1 })
    const table = `nvisy_heap_${process.pid}`
    try {
      await pool.query(`DROP TABLE IF EXISTS ${table}`)
      await pool.query(
        `CREATE TABLE ${table} AS SELECT g AS id, repeat('x', 40) || g AS name FROM generate_series(1, 300000) g`,
      )
      await pool.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`)
      const url = new URL(PG_URL)
      await writeFile(
        join(dir, 'pg.json'),
        JSON.stringify({
          id: 'heap-pg',
          nodes: [
            {
              id: 'src',
              role: 'source',
              provider: 'postgres',
              connection: {
                params: {
                  host: url.hostname,
                  port: Number(url.port || 5432),
                  database: url.pathname.slice(1),
                },
                credentials: { user: decodeURIComponent(url.username || 'postgres') },
              },
              stream: { table },
            },
            {
              id: 'dst',
              role: 'sink',
              provider: 'fs',
              connection: { params: { root: dir } },
              stream: { kind: 'document', file: 'rows.jsonl' },
            },
          ],
          edges: [{ from: 'src', to: 'dst' }],
        }),
      )
      await writeFile(
        join(dir, 'nvisy.config.json'),
        JSON.stringify({ providers: ['@nvisy/provider-fs', '@nvisy/provider-postgres'] }),
      )
      const child = spawn(process.execPath, [CLI, 'run', 'pg.json'], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      let signalled = false
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk
        // The first progress line: rows are flowing.
        if (!signalled && stderr.includes('"event":"progress"')) {
          signalled = true
          child.kill('SIGTERM')
        }
      })
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
      expect(stderr).toContain('SIGTERM received, stopping')
      expect(code, stderr.slice(-2000)).toBe(3)
      expect(stderr).toContain('"type":"cancelled"')

      const resumed = await runCli(['run', 'pg.json'], { cwd: dir, timeoutMs: 120_000 })
      expect(resumed.code, resumed.stderr.slice(-2000)).toBe(0)
      // Every row once: the cancelled run's checkpoint was saved, the resume went on from it.
      const ids = (await readFile(join(dir, 'rows.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { id: number }).id)
      expect(ids.length).toBe(300_000)
      expect(new Set(ids).size).toBe(300_000)
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {})
      await pool.end()
    }
  }, 180_000)
})

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliIo, main } from './main.js'

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)))
let dir: string

function io(env: NodeJS.ProcessEnv = {}, signal = new AbortController().signal) {
  const out: string[] = []
  const err: string[] = []
  const value: CliIo = {
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
    env,
    cwd: packageDir,
    signal,
  }
  return { io: value, out: () => out.join(''), err: () => err.join('') }
}

function copyPipeline(source: unknown, target: unknown) {
  return {
    id: 'cli-copy',
    nodes: [
      {
        id: 'in',
        role: 'source',
        provider: 'fs',
        connection: { params: { root: source } },
        stream: { kind: 'blob' },
      },
      {
        id: 'out',
        role: 'sink',
        provider: 'fs',
        connection: { params: { root: target } },
        stream: { kind: 'blob', prefix: 'copy/' },
      },
    ],
    edges: [{ from: 'in', to: 'out' }],
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-cli-'))
  await mkdir(join(dir, 'src', 'sub'), { recursive: true })
  await mkdir(join(dir, 'dst'))
  for (let i = 0; i < 20; i++)
    await writeFile(
      join(dir, 'src', i % 2 ? 'sub' : '', `f${String(i).padStart(2, '0')}.txt`),
      `file ${i}\n`,
    )
  await writeFile(
    join(dir, 'pipeline.json'),
    JSON.stringify(copyPipeline(join(dir, 'src'), join(dir, 'dst'))),
  )
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const fs = ['--provider', '@nvisy/provider-fs']

describe('nvisy CLI', () => {
  it('runs a pipeline in-process, writes checkpoints, and resumes after them', async () => {
    const checkpoints = join(dir, 'state', 'cp.json')
    const first = io()
    const code = await main(
      ['run', join(dir, 'pipeline.json'), ...fs, '--checkpoints', checkpoints],
      first.io,
    )
    expect(first.err()).not.toContain('nvisy:')
    expect(code).toBe(0)
    const summary = JSON.parse(first.out())
    expect(summary).toMatchObject({
      status: 'completed',
      pipelineId: 'cli-copy',
      stats: { nodes: { in: { items: 20 }, out: { items: 20 } } },
    })
    expect((await readdir(join(dir, 'dst', 'copy', 'sub'))).length).toBe(10)
    expect(await readFile(join(dir, 'dst', 'copy', 'sub', 'f19.txt'), 'utf8')).toBe('file 19\n')
    const stored = JSON.parse(await readFile(checkpoints, 'utf8'))
    expect(stored['cli-copy.in']).toMatchObject({
      context: { key: 'sub/f19.txt' },
      runId: summary.runId,
    })
    // Non-TTY: JSON log lines.
    const lines = first
      .err()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => l.msg)).toContain('completed')

    const again = io()
    expect(
      await main(
        ['run', join(dir, 'pipeline.json'), ...fs, '--checkpoints', checkpoints],
        again.io,
      ),
    ).toBe(0)
    expect(JSON.parse(again.out()).stats.nodes.in.items).toBe(0)
    const fresh = io()
    expect(
      await main(
        ['run', join(dir, 'pipeline.json'), ...fs, '--checkpoints', checkpoints, '--no-resume'],
        fresh.io,
      ),
    ).toBe(0)
    expect(JSON.parse(fresh.out()).stats.nodes.in.items).toBe(20)
  })

  it('resolves {"$env": NAME} references and names a missing variable', async () => {
    const file = join(dir, 'env-pipeline.json')
    await writeFile(
      file,
      JSON.stringify(copyPipeline({ $env: 'NVISY_TEST_SRC' }, join(dir, 'dst'))),
    )
    const ok = io({ NVISY_TEST_SRC: join(dir, 'src') })
    expect(await main(['run', file, ...fs, '--checkpoints', join(dir, 'env-cp.json')], ok.io)).toBe(
      0,
    )
    const missing = io({})
    expect(
      await main(['run', file, ...fs, '--checkpoints', join(dir, 'env-cp2.json')], missing.io),
    ).toBe(2)
    expect(missing.err()).toContain(
      '/connection/params/root refers to environment variable NVISY_TEST_SRC, which is not set',
    )
  })

  it('refuses an invalid pipeline with exit code 2 and the field path', async () => {
    const file = join(dir, 'bad.json')
    const pipeline = copyPipeline(join(dir, 'src'), join(dir, 'dst'))
    pipeline.nodes[1]!.stream = { kind: 'nope' } as never
    await writeFile(file, JSON.stringify(pipeline))
    const run = io()
    expect(await main(['run', file, ...fs], run.io)).toBe(2)
    expect(run.err()).toContain('/nodes/1/stream')
    const unknown = io()
    expect(await main(['run', file], unknown.io)).toBe(2)
    expect(unknown.err()).toContain('provider "fs" is not loaded (loaded: none)')
    const usage = io()
    expect(await main(['frobnicate'], usage.io)).toBe(2)
    expect(await main(['run'], usage.io)).toBe(2)
    const notInstalled = io()
    expect(
      await main(['providers', '--provider', 'nvisy-provider-that-is-not-there'], notInstalled.io),
    ).toBe(2)
    expect(notInstalled.err()).toContain(
      'provider package nvisy-provider-that-is-not-there is not installed',
    )
  })

  it('exits 3 when cancelled', async () => {
    const controller = new AbortController()
    controller.abort('SIGINT received')
    const run = io({}, controller.signal)
    expect(
      await main(
        ['run', join(dir, 'pipeline.json'), ...fs, '--checkpoints', join(dir, 'cancel.json')],
        run.io,
      ),
    ).toBe(3)
    expect(JSON.parse(run.out()).status).toBe('cancelled')
  })

  it('lists providers, checks and discovers a connection', async () => {
    const list = io()
    expect(await main(['providers', ...fs], list.io)).toBe(0)
    const catalog = JSON.parse(list.out())
    expect(catalog.providers.map((p: { id: string }) => p.id)).toEqual(['fs'])
    expect(catalog.providers[0].schemas.params.properties.root).toBeDefined()

    const conn = join(dir, 'conn.json')
    await writeFile(conn, JSON.stringify({ params: { root: join(dir, 'src') } }))
    const check = io()
    expect(await main(['check', 'fs', '--connection', conn, ...fs], check.io)).toBe(0)
    expect(JSON.parse(check.out())).toMatchObject({ ok: true, latencyMs: expect.any(Number) })
    const discover = io()
    expect(await main(['discover', 'fs', '--connection', conn, ...fs], discover.io)).toBe(0)
    expect(JSON.parse(discover.out()).streams.length).toBeGreaterThan(0)

    const missing = join(dir, 'conn-missing.json')
    await writeFile(missing, JSON.stringify({ params: { root: join(dir, 'no-such-dir') } }))
    const failed = io()
    expect(await main(['check', 'fs', '--connection', missing, ...fs], failed.io)).toBe(1)
    expect(JSON.parse(failed.out()).error.kind).toBe('not_found')
  })

  it('runs as a process from source (bin entry)', async () => {
    const tsx = join(packageDir, 'node_modules', 'tsx', 'dist', 'loader.mjs')
    expect(existsSync(tsx)).toBe(true)
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--import', `file://${tsx}`, join(packageDir, 'src', 'cli.ts'), ...args],
          {
            cwd: packageDir,
            env: { ...process.env, NVISY_PROVIDERS: '@nvisy/provider-fs' },
          },
        )
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d) => {
          stdout += d
        })
        child.stderr.on('data', (d) => {
          stderr += d
        })
        child.on('error', reject)
        child.on('close', (code) => resolve({ code, stdout, stderr }))
      })
    const ok = await run([
      'run',
      join(dir, 'pipeline.json'),
      '--checkpoints',
      join(dir, 'spawn-cp.json'),
    ])
    expect(ok.stderr).not.toContain('nvisy:')
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.stdout).status).toBe('completed')
    const bad = await run(['run', join(dir, 'no-such-pipeline.json')])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('cannot read pipeline file')
  }, 60_000)
})

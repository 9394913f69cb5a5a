// `nvisy run --partitions N` through the CLI's main(), with the fs provider as built.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliIo, main } from './main.js'

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)))
const fs = ['--provider', '@nvisy/provider-fs']
let dir: string

function io() {
  const out: string[] = []
  const err: string[] = []
  const value: CliIo = {
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
    env: {},
    cwd: packageDir,
    signal: new AbortController().signal,
  }
  return { io: value, out: () => out.join(''), err: () => err.join('') }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-cli-partitions-'))
  for (let i = 0; i < 30; i++) {
    const path = join(dir, 'src', `g${i % 3}`, `f${String(i).padStart(2, '0')}.txt`)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, `file ${i}\n`)
  }
  await mkdir(join(dir, 'dst'))
  await writeFile(
    join(dir, 'pipeline.json'),
    JSON.stringify({
      id: 'cli-partitions',
      nodes: [
        {
          id: 'in',
          role: 'source',
          provider: 'fs',
          connection: { params: { root: join(dir, 'src') } },
          stream: { kind: 'blob' },
        },
        {
          id: 'out',
          role: 'sink',
          provider: 'fs',
          connection: { params: { root: join(dir, 'dst') } },
          stream: { kind: 'blob' },
        },
      ],
      edges: [{ from: 'in', to: 'out' }],
    }),
  )
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort()
}

describe('nvisy run --partitions', () => {
  it('refuses a count that is not an integer from 1 to 1024, naming the flag', async () => {
    for (const value of ['0', '1025', '2.5', 'four', '-3']) {
      const run = io()
      expect(
        await main(['run', join(dir, 'pipeline.json'), ...fs, `--partitions=${value}`], run.io),
      ).toBe(2)
      expect(run.err()).toContain('--partitions must be an integer from 1 to 1024')
    }
    const help = io()
    expect(await main(['run', '--help'], help.io)).toBe(0)
    expect(help.out()).toContain('--partitions N')
  })

  it('copies in partitions, keeps one checkpoint per partition, and reads on from them', async () => {
    const checkpoints = join(dir, 'cp.json')
    const args = [
      'run',
      join(dir, 'pipeline.json'),
      ...fs,
      '--checkpoints',
      checkpoints,
      '--partitions',
      '3',
    ]
    const first = io()
    expect(await main(args, first.io)).toBe(0)
    const summary = JSON.parse(first.out())
    expect(summary.status).toBe('completed')
    expect(summary.plan).toMatchObject({ requested: 3, count: 3, resumed: false })
    expect(summary.partitions.map((p: { status: string }) => p.status)).toEqual([
      'completed',
      'completed',
      'completed',
    ])
    expect(summary.stats.nodes.in.items).toBe(30)
    expect(await filesUnder(join(dir, 'dst'))).toEqual(await filesUnder(join(dir, 'src')))
    const stored = JSON.parse(await readFile(checkpoints, 'utf8'))
    expect(Object.keys(stored).sort()).toEqual(
      [
        'cli-partitions__partitions.in',
        ...[0, 1, 2].map((i) => `cli-partitions__p${summary.plan.id}_${i}.in`),
      ].sort(),
    )
    expect(stored[`cli-partitions__p${summary.plan.id}_2.in`].context).toEqual({
      key: 'g2/f29.txt',
    })

    // The next run reads on from each partition's checkpoint: only the file added after them.
    await writeFile(join(dir, 'src', 'g2', 'f99.txt'), 'late\n')
    const second = io()
    expect(await main(args, second.io)).toBe(0)
    const next = JSON.parse(second.out())
    expect(next.plan).toMatchObject({ id: summary.plan.id, resumed: true })
    expect(next.stats.nodes.in.items).toBe(1)
    expect(await readFile(join(dir, 'dst', 'g2', 'f99.txt'), 'utf8')).toBe('late\n')

    // --no-resume plans again and reads everything.
    const third = io()
    expect(await main([...args, '--no-resume'], third.io)).toBe(0)
    const fresh = JSON.parse(third.out())
    expect(fresh.plan.id).not.toBe(summary.plan.id)
    expect(fresh.stats.nodes.in.items).toBe(31)
  })
})

// `nvisy run --log-format`: on a terminal (a pseudo-terminal from util-linux `script`) the
// default is a live progress line and a final table; `--log-format json` gives JSON lines there
// too (for log collectors that allocate a terminal); a bad value is a usage error.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, runCli } from './__fixtures__/cli.js'

let dir: string
const shellQuote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-log-format-'))
  await mkdir(join(dir, 'data'))
  await writeFile(join(dir, 'data', 'a.txt'), 'a')
  await writeFile(join(dir, 'data', 'b.txt'), 'b')
  await mkdir(join(dir, 'out'))
  const fs = { params: { root: join(dir, 'data') } }
  const pipeline = {
    id: 'log-format',
    nodes: [
      { id: 'files', role: 'source', provider: 'fs', connection: fs, stream: { kind: 'blob' } },
      {
        id: 'copy',
        role: 'sink',
        provider: 'fs',
        connection: { params: { root: join(dir, 'out') } },
        stream: { kind: 'blob' },
      },
    ],
    edges: [{ from: 'files', to: 'copy' }],
  }
  await writeFile(join(dir, 'fs-copy.json'), JSON.stringify(pipeline))
  await writeFile(
    join(dir, 'nvisy.config.json'),
    JSON.stringify({ providers: ['@nvisy/provider-fs'] }),
  )
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

const onTerminal = async (args: string[]) => {
  const result = await promisify(execFile)(
    'script',
    ['-qec', [process.execPath, CLI, ...args].map(shellQuote).join(' '), '/dev/null'],
    { cwd: dir, env: { PATH: process.env.PATH, TERM: 'dumb' }, timeout: 60_000 },
  )
  return result.stdout.replace(/\r\n/g, '\n')
}

describe('nvisy run --log-format', () => {
  it('on a terminal: a progress table by default, JSON lines with --log-format json', async () => {
    const pretty = await onTerminal(['run', 'fs-copy.json', '--no-resume'])
    expect(pretty).not.toContain('"level"')
    expect(pretty).toMatch(/files/)

    const json = await onTerminal(['run', 'fs-copy.json', '--no-resume', '--log-format', 'json'])
    const events = json
      .split('\n')
      .filter((line) => line.startsWith('{"level"'))
      .map((line) => JSON.parse(line) as { event?: { type?: string } | string })
    expect(events.some((e) => typeof e.event === 'object' && e.event.type === 'completed')).toBe(
      true,
    )
  })

  it('a bad value is a usage error naming the flag, before anything runs', async () => {
    const bad = await runCli(['run', 'fs-copy.json', '--log-format', 'yaml'], { cwd: dir })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--log-format must be one of auto, json, pretty, got "yaml"')
  })
})

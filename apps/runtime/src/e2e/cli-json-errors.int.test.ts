// A user's JSON file with a mistake, through the built CLI: the error names the file, the
// line and column, and the rule it breaks (the same on every Node version), exits 2, and
// never quotes the file's text (credentials may sit next to the mistake).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateMasterKey } from '@nvisy/vault'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './__fixtures__/cli.js'
import { buildRuntimeDist } from './__fixtures__/harness.js'

let dir: string

beforeAll(async () => {
  await buildRuntimeDist()
  dir = await mkdtemp(join(tmpdir(), 'nvisy-json-errors-'))
}, 300_000)

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const PIPELINE_MISSING_COMMA = `{
  "id": "copy",
  "nodes": [
    { "id": "in", "role": "source", "provider": "fs", "connection": { "params": { "root": "in" } }, "stream": { "kind": "blob" } }
    { "id": "out", "role": "sink", "provider": "fs", "connection": { "params": { "root": "out" } }, "stream": { "kind": "blob" } }
  ],
  "edges": [{ "from": "in", "to": "out" }]
}
`

describe('malformed JSON files', () => {
  it('a pipeline file: file:line:column and the rule, exit 2, for run and validate', async () => {
    await writeFile(join(dir, 'pipeline.json'), PIPELINE_MISSING_COMMA)
    for (const command of ['run', 'validate']) {
      const result = await runCli([command, 'pipeline.json', '--provider', '@nvisy/provider-fs'], {
        cwd: dir,
      })
      expect(result.code, result.stderr).toBe(2)
      expect(result.stderr).toContain(
        "nvisy: pipeline.json:5:5: expected ',' or ']' after an array element (the pipeline file is not valid JSON)",
      )
      expect(result.stdout).toBe('')
    }
  })

  it('a pipeline file in another folder is named by its path', async () => {
    await mkdir(join(dir, 'jobs'), { recursive: true })
    await writeFile(join(dir, 'jobs', 'trailing.json'), '{\n  "id": "p",\n  "nodes": [],\n}\n')
    await mkdir(join(dir, 'elsewhere'), { recursive: true })
    const result = await runCli(['validate', join(dir, 'jobs', 'trailing.json')], {
      cwd: join(dir, 'elsewhere'),
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toBe(
      `nvisy: ${join(dir, 'jobs', 'trailing.json')}:3:14: a comma before the closing '}' is not allowed in JSON (remove it) (the pipeline file is not valid JSON)\n`,
    )
  })

  it('nvisy.config.json next to the pipeline', async () => {
    const folder = join(dir, 'with-config')
    await mkdir(folder, { recursive: true })
    await writeFile(join(folder, 'nvisy.config.json'), '{ "providers": [\'@nvisy/provider-fs\'] }')
    await writeFile(join(folder, 'p.json'), '{"id": "p", "nodes": [], "edges": []}')
    const result = await runCli(['validate', 'p.json'], { cwd: folder })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(
      `${join(folder, 'nvisy.config.json')}:1:17: unexpected character: expected a value`,
    )
  })

  it('a connection file for check', async () => {
    await writeFile(join(dir, 'conn.json'), '{\n  "params": { "root" "." }\n}')
    const result = await runCli(
      ['check', 'fs', '--connection', 'conn.json', '--provider', '@nvisy/provider-fs'],
      { cwd: dir },
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(
      "conn.json:2:22: expected ':' after the property name (the connection file is not valid JSON)",
    )
  })

  it('a credentials file: the line and column, never the secret next to the mistake', async () => {
    const secret = `s3cret-${Date.now()}`
    await writeFile(join(dir, 'creds.json'), `{\n  "user": "app",\n  "password": ${secret}\n}\n`)
    const result = await runCli(
      [
        'connections',
        'add',
        '--provider',
        '@nvisy/provider-postgres',
        '--params',
        '{"host": "127.0.0.1"}',
        '--credentials',
        'creds.json',
        '--store',
        join(dir, 'store.json'),
      ],
      { cwd: dir, env: { NVISY_MASTER_KEY: generateMasterKey().base64 } },
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(
      'creds.json:3:15: unexpected character: expected a value (a string in double quotes, a number, true, false, null, an object or an array) (the credentials file is not valid JSON)',
    )
    expect(result.stdout + result.stderr).not.toContain(secret)
  })

  it('inline --params', async () => {
    const result = await runCli(
      ['connections', 'add', '--provider', '@nvisy/provider-fs', '--params', '{"root": "."'],
      { cwd: dir, env: { NVISY_MASTER_KEY: generateMasterKey().base64 } },
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(
      "nvisy: --params:1:13: the JSON ends too early: expected '}' (--params is not valid JSON)",
    )
  })
})

// The CLI behaves: --help everywhere without side effects, documented exit codes, master key
// files readable by others refused, checkpoint files private.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateMasterKey } from '@nvisy/vault'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliIo, COMMAND_HELP, main, runExitCode } from './main.js'

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)))
let dir: string
let nats: Server
let natsPort: number
let natsConnections = 0

function io(env: NodeJS.ProcessEnv = {}, cwd = dir) {
  const out: string[] = []
  const err: string[] = []
  const value: CliIo = {
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
    env,
    cwd,
    signal: new AbortController().signal,
  }
  return { io: value, out: () => out.join(''), err: () => err.join('') }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-cli-behaviour-'))
  // A TCP listener standing in for NATS: a --help must never connect to it.
  nats = createServer((socket) => {
    natsConnections++
    socket.destroy()
  })
  await new Promise<void>((resolve) => nats.listen(0, '127.0.0.1', resolve))
  natsPort = (nats.address() as { port: number }).port
})

afterAll(async () => {
  await new Promise((resolve) => nats.close(resolve))
  await rm(dir, { recursive: true, force: true })
})

const HELP_CASES: string[][] = [
  ['run'],
  ['run', 'pipeline.json'],
  ['validate'],
  ['validate', '--check', 'x.json'],
  ['providers'],
  ['check'],
  ['check', 'postgres', '--connection-id', 'not-a-uuid'],
  ['discover'],
  ['connections'],
  ['connections', 'add'],
  ['connections', 'add', '--provider', 'postgres'],
  ['connections', 'list'],
  ['connections', 'ls'],
  ['connections', 'remove'],
  ['connections', 'rm', 'x'],
  ['serve'],
  ['serve', '--nats', 'nats://127.0.0.1:1', '--bogus-flag'],
  ['keys'],
  ['keys', '--out', 'runtime.seed', '--force'],
  ['keys', '--print-seed'],
]

describe('--help', () => {
  it('every command and subcommand prints its help, exits 0, and does nothing else', async () => {
    const cwd = join(dir, 'help-cwd')
    const home = join(dir, 'help-home')
    await mkdir(cwd)
    await mkdir(home)
    const env = {
      HOME: home,
      NVISY_NATS_URL: `nats://127.0.0.1:${natsPort}`,
      NVISY_CONNECTIONS_FILE: join(home, 'connections.json'),
      NVISY_PROVIDERS: '@nvisy/provider-no-such-package',
    }
    for (const args of HELP_CASES) {
      for (const flag of ['--help', '-h']) {
        const argv = [...args, flag]
        const r = io(env, cwd)
        const code = await main(argv, r.io)
        expect(r.err(), argv.join(' ')).toBe('')
        expect(code, argv.join(' ')).toBe(0)
        const command = args[0] === 'connections' && args.length > 1 ? args[1] : args[0]
        expect(r.out(), argv.join(' ')).toMatch(/^Usage: nvisy /)
        expect(r.out(), argv.join(' ')).toContain(
          command === 'ls' ? 'connections list' : command === 'rm' ? 'connections remove' : command,
        )
      }
    }
    expect(natsConnections).toBe(0)
    expect(await readdir(cwd)).toEqual([])
    expect(await readdir(home)).toEqual([])
    for (const name of ['run', 'validate', 'check', 'serve', 'keys', 'connections add'])
      expect(COMMAND_HELP[name]).toBeDefined()
  })

  it('serve --help as a process: no NATS connection, no key, exits 0 at once', async () => {
    const tsx = join(packageDir, 'node_modules', 'tsx', 'dist', 'loader.mjs')
    expect(existsSync(tsx)).toBe(true)
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--import', `file://${tsx}`, join(packageDir, 'src', 'cli.ts'), 'serve', '--help'],
          {
            cwd: dir,
            env: { ...process.env, NVISY_NATS_URL: `nats://127.0.0.1:${natsPort}` },
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
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
        child.on('error', reject)
        child.on('close', (code) => {
          clearTimeout(timer)
          resolve({ code, stdout, stderr })
        })
      },
    )
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('Usage: nvisy serve')
    expect(result.stdout).toContain('--fs-root')
    expect(natsConnections).toBe(0)
  }, 60_000)
})

describe('exit codes', () => {
  it('a run is 0 only when completed: partial and failed are 1, config 2, cancelled 3', () => {
    const sink = { stderr: { write: () => true } }
    expect(runExitCode({ status: 'completed' }, sink)).toBe(0)
    expect(runExitCode({ status: 'partial' }, sink)).toBe(1)
    expect(runExitCode({ status: 'failed', error: { kind: 'transient' } }, sink)).toBe(1)
    expect(runExitCode({ status: 'failed', error: { kind: 'auth' } }, sink)).toBe(1)
    expect(runExitCode({ status: 'failed', error: { kind: 'config' } }, sink)).toBe(2)
    expect(runExitCode({ status: 'cancelled' }, sink)).toBe(3)
    expect(runExitCode({ status: 'something-new' }, sink)).toBe(1)
  })

  it('check: a failed check is 1, invalid params or an unknown provider 2, bad flags 2', async () => {
    const fs = ['--provider', '@nvisy/provider-fs']
    const conn = async (params: unknown) => {
      const file = join(dir, `conn-${Math.random().toString(36).slice(2)}.json`)
      await writeFile(file, JSON.stringify({ params }))
      return file
    }
    const missing = io()
    expect(
      await main(
        ['check', 'fs', '--connection', await conn({ root: join(dir, 'nope') }), ...fs],
        missing.io,
      ),
    ).toBe(1)
    const invalid = io()
    expect(
      await main(['check', 'fs', '--connection', await conn({ root: 5 }), ...fs], invalid.io),
    ).toBe(2)
    expect(invalid.err()).toContain('/params/root')
    const unknown = io()
    expect(await main(['check', 'nosuch', '--connection', await conn({}), ...fs], unknown.io)).toBe(
      2,
    )
    const badFlag = io()
    expect(await main(['check', 'fs', '--no-such-flag'], badFlag.io)).toBe(2)
    const badPipeline = io()
    await writeFile(join(dir, 'broken.json'), '{ not json')
    expect(await main(['validate', join(dir, 'broken.json'), ...fs], badPipeline.io)).toBe(2)
  })
})

describe('validate --check', () => {
  it('connects every node: 0 when the systems are there, 1 (with the node path) when one is not', async () => {
    await mkdir(join(dir, 'vc-src'), { recursive: true })
    await mkdir(join(dir, 'vc-dst'), { recursive: true })
    const pipeline = (source: string) => ({
      id: 'validate-check',
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
          connection: { params: { root: join(dir, 'vc-dst') } },
          stream: { kind: 'blob' },
        },
      ],
      edges: [{ from: 'in', to: 'out' }],
    })
    const fs = ['--provider', '@nvisy/provider-fs']
    const good = join(dir, 'vc-good.json')
    await writeFile(good, JSON.stringify(pipeline(join(dir, 'vc-src'))))
    const ok = io()
    expect(await main(['validate', good, '--check', ...fs], ok.io)).toBe(0)
    expect(JSON.parse(ok.out())).toMatchObject({ valid: true, checked: true })
    const bad = join(dir, 'vc-bad.json')
    await writeFile(bad, JSON.stringify(pipeline(join(dir, 'vc-missing'))))
    const failed = io()
    expect(await main(['validate', bad, '--check', ...fs], failed.io)).toBe(1)
    expect(failed.err()).toContain('/nodes/0/connection')
    // Without --check nothing connects: the same file is valid.
    const offline = io()
    expect(await main(['validate', bad, ...fs], offline.io)).toBe(0)
  })
})

describe('master key files', () => {
  it('a key file readable by others is refused (exit 2, the file and chmod 600) unless allowed', async () => {
    const keyFile = join(dir, 'master.key')
    await writeFile(keyFile, `${generateMasterKey().base64}\n`)
    await chmod(keyFile, 0o644)
    const creds = join(dir, 'creds.json')
    await writeFile(creds, '{}')
    const store = join(dir, 'store', 'connections.json')
    const args = [
      'connections',
      'add',
      '--provider',
      '@nvisy/provider-fs',
      '--params',
      JSON.stringify({ root: dir }),
      '--credentials',
      creds,
      '--store',
      store,
    ]
    const env = { NVISY_MASTER_KEY_FILE: keyFile }
    const refused = io(env)
    expect(await main(args, refused.io)).toBe(2)
    expect(refused.err()).toContain(keyFile)
    expect(refused.err()).toContain(`chmod 600 ${keyFile}`)
    expect(existsSync(store)).toBe(false)

    const allowed = io(env)
    expect(await main([...args, '--allow-insecure-key-file'], allowed.io)).toBe(0)
    expect(allowed.err()).toMatch(/warning: the master key file .* can be read by other users/)
    expect((await stat(store)).mode & 0o777).toBe(0o600)

    await chmod(keyFile, 0o600)
    const fine = io(env)
    expect(await main(['connections', 'list', '--store', store], fine.io)).toBe(0)
  })
})

describe('checkpoint files', () => {
  it('are created 0600, and an existing 0644 one is made 0600', async () => {
    await mkdir(join(dir, 'cp-src'))
    await mkdir(join(dir, 'cp-dst'))
    await writeFile(join(dir, 'cp-src', 'a.txt'), 'a')
    const pipeline = join(dir, 'cp-pipeline.json')
    await writeFile(
      pipeline,
      JSON.stringify({
        id: 'cp-mode',
        nodes: [
          {
            id: 'in',
            role: 'source',
            provider: 'fs',
            connection: { params: { root: join(dir, 'cp-src') } },
            stream: { kind: 'blob' },
          },
          {
            id: 'out',
            role: 'sink',
            provider: 'fs',
            connection: { params: { root: join(dir, 'cp-dst') } },
            stream: { kind: 'blob' },
          },
        ],
        edges: [{ from: 'in', to: 'out' }],
      }),
    )
    const fs = ['--provider', '@nvisy/provider-fs']
    const fresh = join(dir, 'cp', 'fresh.json')
    const r1 = io()
    expect(await main(['run', pipeline, ...fs, '--checkpoints', fresh], r1.io)).toBe(0)
    expect((await stat(fresh)).mode & 0o777).toBe(0o600)
    const old = join(dir, 'cp', 'old.json')
    await writeFile(old, '{}\n')
    await chmod(old, 0o644)
    const r2 = io()
    expect(await main(['run', pipeline, ...fs, '--checkpoints', old], r2.io)).toBe(0)
    expect((await stat(old)).mode & 0o777).toBe(0o600)
  })
})

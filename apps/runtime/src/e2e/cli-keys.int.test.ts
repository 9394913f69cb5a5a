// `nvisy keys` through the built CLI: the runtime's key pair, its seed in a private file that
// `nvisy serve` then uses (the catalog's public key is the one printed, and credentials the
// server seals to it open), never overwritten by accident, printed only when asked.
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadRuntimeSeed } from '../keys.js'
import { isCurvePublicKey, runtimeKeyPair } from '../nats/credentials.js'
import { CLI, runCli } from './__fixtures__/cli.js'
import {
  buildRuntimeDist,
  NATS_URL,
  natsSkip,
  PG,
  postgresSkip,
  ServerClient,
  uniqueNaming,
} from './__fixtures__/harness.js'

let dir: string
let home: string
const skipServe = (await natsSkip()) || (await postgresSkip())

beforeAll(async () => {
  await buildRuntimeDist()
  dir = await mkdtemp(join(tmpdir(), 'nvisy-keys-'))
  home = join(dir, 'home')
  await mkdir(home)
}, 300_000)

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const publicKeyOf = (seed: string) => runtimeKeyPair(seed).getPublicKey()

describe('nvisy keys', () => {
  let defaultSeed = ''
  let defaultPublicKey = ''

  it('writes the seed to ~/.nvisy/runtime.seed (0600, folder 0700) and prints the public key', async () => {
    const result = await runCli(['keys'], { cwd: dir, env: { HOME: home } })
    expect(result.code, result.stderr).toBe(0)
    const printed = JSON.parse(result.stdout)
    const file = join(home, '.nvisy', 'runtime.seed')
    expect(printed).toEqual({ publicKey: expect.any(String), seedFile: file })
    expect(isCurvePublicKey(printed.publicKey)).toBe(true)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect((await stat(join(home, '.nvisy'))).mode & 0o777).toBe(0o700)
    defaultSeed = (await readFile(file, 'utf8')).trim()
    expect(defaultSeed).toMatch(/^SX[A-Z2-7]{56}$/)
    // The printed public key is the seed's, and the seed is nowhere in the output.
    expect(publicKeyOf(defaultSeed)).toBe(printed.publicKey)
    expect(result.stdout + result.stderr).not.toContain(defaultSeed)
    expect(result.stderr).toContain(`Give the Nvisy server this public key: ${printed.publicKey}`)
    defaultPublicKey = printed.publicKey
    // serve's loader finds it where serve looks by default, and accepts it.
    const loaded = loadRuntimeSeed({ env: { HOME: home }, cwd: dir })
    expect(loaded.source).toEqual({ kind: 'file', path: file })
    expect(loaded.seed).toBe(defaultSeed)
  })

  it('refuses to overwrite a seed file without --force; --force replaces it with a new pair', async () => {
    const file = join(home, '.nvisy', 'runtime.seed')
    const refused = await runCli(['keys'], { cwd: dir, env: { HOME: home } })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain(`${file} exists`)
    expect(refused.stderr).toContain('--force')
    expect(refused.stdout).toBe('')
    expect((await readFile(file, 'utf8')).trim()).toBe(defaultSeed)

    const replaced = await runCli(['keys', '--force'], { cwd: dir, env: { HOME: home } })
    expect(replaced.code, replaced.stderr).toBe(0)
    const seed = (await readFile(file, 'utf8')).trim()
    const { publicKey } = JSON.parse(replaced.stdout)
    expect(seed).not.toBe(defaultSeed)
    expect(publicKey).not.toBe(defaultPublicKey)
    expect(publicKeyOf(seed)).toBe(publicKey)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
  })

  it('--out writes another file, relative to the working directory', async () => {
    const result = await runCli(['keys', '--out', 'deploy/runtime.seed'], {
      cwd: dir,
      env: { HOME: home },
    })
    expect(result.code, result.stderr).toBe(0)
    const file = join(dir, 'deploy', 'runtime.seed')
    const { publicKey, seedFile } = JSON.parse(result.stdout)
    expect(seedFile).toBe(file)
    expect(publicKeyOf((await readFile(file, 'utf8')).trim())).toBe(publicKey)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
  })

  it('--print-seed prints the seed with its public key and writes nothing', async () => {
    const empty = join(dir, 'empty-home')
    await mkdir(empty)
    const result = await runCli(['keys', '--print-seed'], { cwd: empty, env: { HOME: empty } })
    expect(result.code, result.stderr).toBe(0)
    const { publicKey, seed } = JSON.parse(result.stdout)
    expect(publicKeyOf(seed)).toBe(publicKey)
    expect(await import('node:fs/promises').then((fs) => fs.readdir(empty))).toEqual([])
    const mixed = await runCli(['keys', '--print-seed', '--out', 'x.seed'], {
      cwd: empty,
      env: { HOME: empty },
    })
    expect(mixed.code).toBe(2)
  })
})

interface Serve {
  child: ChildProcess
  stderr(): string
  exited: Promise<number | null>
}

function serve(args: string[], env: NodeJS.ProcessEnv): Serve {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: home, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  child.stdout!.resume()
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  return { child, stderr: () => err, exited }
}

async function serving(run: Serve): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const line = run
      .stderr()
      .split('\n')
      .find((l) => l.includes('"msg":"serving"'))
    if (line) return JSON.parse(line)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`serve did not start:\n${run.stderr()}`)
}

describe.skipIf(skipServe)('nvisy serve with the seed nvisy keys wrote', () => {
  it('serves with that key: the catalog shows the printed public key, and sealed credentials open', async () => {
    const seedFile = join(dir, 'serve', 'runtime.seed')
    const created = await runCli(['keys', '--out', seedFile], { cwd: dir, env: { HOME: home } })
    expect(created.code, created.stderr).toBe(0)
    const { publicKey } = JSON.parse(created.stdout)
    const seed = (await readFile(seedFile, 'utf8')).trim()

    const naming = uniqueNaming('keys')
    const server = await ServerClient.connect(naming)
    const run = serve(
      [
        '--seed-file',
        seedFile,
        '--server-key',
        server.publicKey,
        '--provider',
        '@nvisy/provider-postgres',
        '--nats',
        NATS_URL,
        '--subject-prefix',
        naming.prefix,
        '--events-stream',
        naming.eventsStream,
        '--checkpoint-bucket',
        naming.checkpointBucket,
        '--queue-group',
        naming.queueGroup,
      ],
      {},
    )
    try {
      const line = await serving(run)
      expect(line.publicKey).toBe(publicKey)
      expect(line.runtimeKey).toBe(seedFile)
      const catalog = await server.catalog()
      expect(catalog.runtime.publicKey).toBe(publicKey)
      const params = { host: PG.host, port: PG.port, database: PG.database }
      const check = await server.request(server.subjects.check, {
        provider: 'postgres',
        connection: { params, sealedCredentials: server.seal({ user: PG.user }) },
      })
      expect(check).toMatchObject({ ok: true })
    } finally {
      run.child.kill('SIGTERM')
      expect(await run.exited).toBe(0)
      await server.cleanup()
    }
    expect(run.stderr()).not.toContain(seed)
  })

  it('a seed file others can read is refused before joining NATS (exit 2, chmod 600)', async () => {
    const seedFile = join(dir, 'open', 'runtime.seed')
    const created = await runCli(['keys', '--out', seedFile], { cwd: dir, env: { HOME: home } })
    expect(created.code).toBe(0)
    await chmod(seedFile, 0o644)
    const seed = (await readFile(seedFile, 'utf8')).trim()
    const run = serve(['--nats', 'nats://127.0.0.1:1'], { NVISY_RUNTIME_SEED_FILE: seedFile })
    expect(await run.exited).toBe(2)
    expect(run.stderr()).toContain(`chmod 600 ${seedFile}`)
    expect(run.stderr()).not.toContain(seed)
  })

  it('a file that holds no seed, or a seed next to a seed file, is a configuration error', async () => {
    const bad = join(dir, 'bad.seed')
    await writeFile(bad, 'SUAM-not-a-curve-seed\n', { mode: 0o600 })
    const notSeed = serve(['--nats', 'nats://127.0.0.1:1', '--seed-file', bad], {})
    expect(await notSeed.exited).toBe(2)
    expect(notSeed.stderr()).toContain(`the runtime seed file ${bad} does not hold an xkey seed`)
    expect(notSeed.stderr()).not.toContain('SUAM-not-a-curve-seed')

    const both = serve(['--nats', 'nats://127.0.0.1:1', '--seed-file', bad], {
      NVISY_RUNTIME_SEED: 'SX-whatever',
    })
    expect(await both.exited).toBe(2)
    expect(both.stderr()).toContain('set either NVISY_RUNTIME_SEED or a seed file (--seed-file)')
  })
})

import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { memoryItemId, memoryStore, seedMemoryStore } from '@nvisy/provider-testkit'
import { generateMasterKey } from '@nvisy/vault'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { expected } from './__fixtures__/password-provider.js'
import { resolvePackageEntry } from './loader.js'
import { type CliIo, main } from './main.js'

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)))
const fixture = join(packageDir, 'src', '__fixtures__', 'password-provider.ts')

let dir: string
let storeFile: string
let config: string
/** Loads the fs provider too (by its entry file: the temp dir has no node_modules). */
let withFs: string
let masterKey: string
let password: string

interface Result {
  code: number
  out: string
  err: string
}

async function nvisy(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = {
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
    env: { NVISY_MASTER_KEY: masterKey, NVISY_CONNECTIONS_FILE: storeFile, ...env },
    cwd: dir,
    signal: new AbortController().signal,
  }
  const code = await main(argv, io)
  return { code, out: out.join(''), err: err.join('') }
}

/** Everything the CLI printed, for "never contains the password" checks. */
function printed(...results: Result[]): string {
  return results.map((r) => r.out + r.err).join('\n')
}

async function addStored(params: Record<string, unknown>, pw = password): Promise<string> {
  const creds = join(dir, `creds-${randomUUID()}.json`)
  await writeFile(creds, JSON.stringify({ password: pw }))
  const added = await nvisy([
    'connections',
    'add',
    '--config',
    config,
    '--provider',
    'vaulted',
    '--params',
    JSON.stringify(params),
    '--credentials',
    creds,
  ])
  expect(added.err).toBe('')
  expect(added.code).toBe(0)
  await rm(creds)
  return JSON.parse(added.out).id
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-connections-'))
  storeFile = join(dir, 'home', 'connections.json')
  config = join(dir, 'nvisy.config.json')
  await writeFile(config, JSON.stringify({ providers: [fixture] }))
  withFs = join(dir, 'with-fs.config.json')
  const fsEntry = resolvePackageEntry('@nvisy/provider-fs', packageDir)
  await writeFile(withFs, JSON.stringify({ providers: [fixture, fsEntry] }))
  masterKey = generateMasterKey().base64
})

beforeEach(() => {
  password = `pw-${randomUUID()}`
  expected.password = password
})

afterAll(async () => {
  expected.password = 'secret'
  await rm(dir, { recursive: true, force: true })
})

describe('nvisy connections', () => {
  it('adds, lists and removes; the store file and the output never hold the password', async () => {
    const store = `s-${randomUUID()}`
    const id = await addStored({ store })
    expect(id).toMatch(/^[0-9a-f-]{36}$/)

    const file = await readFile(storeFile, 'utf8')
    expect(file).not.toContain(password)
    expect(file).toContain(store) // params are kept in clear
    expect(JSON.parse(file).connections[id]).toMatchObject({
      provider: 'vaulted',
      params: { store },
      credentials: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/),
    })
    expect((await stat(storeFile)).mode & 0o777).toBe(0o600)

    // list needs no master key: it never decrypts.
    const list = await nvisy(['connections', 'list'], { NVISY_MASTER_KEY: '' })
    expect(list.code).toBe(0)
    const listed = JSON.parse(list.out).connections
    expect(listed).toContainEqual({
      id,
      provider: 'vaulted',
      params: { store },
      createdAt: expect.any(String),
    })
    expect(Object.keys(listed[0]).sort()).toEqual(['createdAt', 'id', 'params', 'provider'])

    const explicit = randomUUID()
    const withId = join(dir, 'creds-id.json')
    await writeFile(withId, JSON.stringify({ password }))
    const added = await nvisy([
      'connections',
      'add',
      '--config',
      config,
      '--provider',
      'vaulted',
      '--params',
      JSON.stringify({ store }),
      '--credentials',
      withId,
      '--id',
      explicit,
    ])
    expect(added.code).toBe(0)
    expect(JSON.parse(added.out).id).toBe(explicit)
    const again = await nvisy([
      'connections',
      'add',
      '--config',
      config,
      '--provider',
      'vaulted',
      '--params',
      JSON.stringify({ store }),
      '--credentials',
      withId,
      '--id',
      explicit,
    ])
    expect(again.code).toBe(2)
    expect(again.err).toContain(`a connection ${explicit} already exists`)

    const removed = await nvisy(['connections', 'remove', id])
    expect(removed.code).toBe(0)
    expect(JSON.parse(removed.out)).toEqual({ removed: id })
    const after = JSON.parse((await nvisy(['connections', 'list'])).out).connections
    expect(after.map((c: { id: string }) => c.id)).not.toContain(id)
    expect(after.map((c: { id: string }) => c.id)).toContain(explicit)
    const missing = await nvisy(['connections', 'remove', id])
    expect(missing.code).toBe(1)
    expect(missing.err).toContain(`no connection ${id}`)

    expect(printed(list, added, again, removed, missing)).not.toContain(password)
    expect(await readFile(storeFile, 'utf8')).not.toContain(password)
  })

  it('takes credentials from PREFIX_ variables and validates params and credentials first', async () => {
    const store = `s-${randomUUID()}`
    const fromEnv = await nvisy(
      [
        'connections',
        'add',
        '--config',
        config,
        '--provider',
        'vaulted',
        '--params',
        JSON.stringify({ store }),
        '--credentials-env',
        'MEM',
      ],
      { MEM_PASSWORD: password },
    )
    expect(fromEnv.err).toBe('')
    expect(fromEnv.code).toBe(0)
    const id = JSON.parse(fromEnv.out).id
    const check = await nvisy(['check', 'vaulted', '--connection-id', id, '--config', config])
    expect(check.err).toBe('')
    expect(JSON.parse(check.out)).toMatchObject({ ok: true })

    const before = await readFile(storeFile, 'utf8')
    const unset = await nvisy(
      [
        'connections',
        'add',
        '--config',
        config,
        '--provider',
        'vaulted',
        '--params',
        JSON.stringify({ store }),
        '--credentials-env',
        'NOPE',
      ],
      {},
    )
    expect(unset.code).toBe(2)
    expect(unset.err).toContain('none of NOPE_PASSWORD is set')

    const paramsFile = join(dir, 'bad-params.json')
    await writeFile(paramsFile, JSON.stringify({ store: '', delayMs: -1, extra: 1 }))
    const creds = join(dir, 'empty-creds.json')
    await writeFile(creds, JSON.stringify({ password: '' }))
    const invalid = await nvisy([
      'connections',
      'add',
      '--config',
      config,
      '--provider',
      'vaulted',
      '--params',
      paramsFile,
      '--credentials',
      creds,
    ])
    expect(invalid.code).toBe(2)
    for (const path of [
      '/params/store',
      '/params/delayMs',
      '/params/extra',
      '/credentials/password',
    ])
      expect(invalid.err).toContain(path)

    const inline = await nvisy([
      'connections',
      'add',
      '--config',
      config,
      '--provider',
      'vaulted',
      '--credentials',
      `{"password":"${password}"}`,
    ])
    expect(inline.code).toBe(2)
    expect(inline.err).toContain('--credentials takes a file')

    const unknown = await nvisy(['connections', 'add', '--provider', 'postgres'], {
      NVISY_PROVIDERS: '',
    })
    expect(unknown.code).toBe(2)
    expect(unknown.err).toContain('provider postgres is not loaded')

    // Nothing was stored by the refused commands.
    expect(await readFile(storeFile, 'utf8')).toBe(before)
    expect(printed(fromEnv, check, unset, invalid, inline, unknown)).not.toContain(password)
  })

  it('needs the master key to add, and names NVISY_MASTER_KEY when it is missing', async () => {
    const creds = join(dir, 'creds-nokey.json')
    await writeFile(creds, JSON.stringify({ password }))
    const result = await nvisy(
      [
        'connections',
        'add',
        '--config',
        config,
        '--provider',
        'vaulted',
        '--params',
        '{"store":"x"}',
        '--credentials',
        creds,
      ],
      { NVISY_MASTER_KEY: undefined },
    )
    expect(result.code).toBe(2)
    expect(result.err).toContain('NVISY_MASTER_KEY')
    expect(result.err).toContain('no master key')
    const badKey = await nvisy(['check', 'vaulted', '--connection-id', randomUUID()], {
      NVISY_MASTER_KEY: 'not-a-key',
    })
    expect(badKey.code).toBe(2)
    expect(badKey.err).toContain('NVISY_MASTER_KEY')
    expect(badKey.err).not.toContain('not-a-key')
  })

  it('checks a stored connection with its decrypted password, and refuses a wrong master key', async () => {
    const id = await addStored({ store: `s-${randomUUID()}` })
    const ok = await nvisy(['check', 'vaulted', '--connection-id', id, '--config', config])
    expect(ok.err).toBe('')
    expect(ok.code).toBe(0)

    // The stored password really is what the provider gets: change what it expects.
    expected.password = `other-${randomUUID()}`
    const refused = await nvisy(['check', 'vaulted', '--connection-id', id, '--config', config])
    expect(refused.code).toBe(1)
    expect(JSON.parse(refused.out).error.kind).toBe('auth')
    expected.password = password

    const otherKey = generateMasterKey().base64
    const wrongKey = await nvisy(['check', 'vaulted', '--connection-id', id, '--config', config], {
      NVISY_MASTER_KEY: otherKey,
    })
    expect(wrongKey.code).toBe(2)
    expect(wrongKey.err).toContain(`connection ${id}: the stored credentials cannot be decrypted`)
    expect(wrongKey.err).toContain(
      'the master key (NVISY_MASTER_KEY or NVISY_MASTER_KEY_FILE) is not the one they were sealed with',
    )
    const out = printed(ok, refused, wrongKey)
    for (const secret of [password, otherKey, masterKey]) expect(out).not.toContain(secret)

    const wrongProvider = await nvisy(['check', 'fs', '--connection-id', id, '--config', withFs])
    expect(wrongProvider.code).toBe(2)
    expect(wrongProvider.err).toContain(`connection ${id} is a vaulted connection, not fs`)
  })
})

describe('nvisy run with stored connections', () => {
  function pipeline(source: unknown, sink: unknown) {
    return {
      id: `stored-${randomUUID().slice(0, 8)}`,
      nodes: [
        { id: 'in', role: 'source', provider: 'vaulted', connection: source, stream: {} },
        { id: 'out', role: 'sink', provider: 'vaulted', connection: sink, stream: {} },
      ],
      edges: [{ from: 'in', to: 'out' }],
    }
  }

  it('runs a pipeline whose connections come from the store, decrypted only for the run', async () => {
    const source = `src-${randomUUID()}`
    const sink = `dst-${randomUUID()}`
    seedMemoryStore(source, 0, 25)
    const sourceId = await addStored({ store: source })
    const sinkId = await addStored({ store: sink })
    const file = join(dir, 'stored-pipeline.json')
    // The sink node overrides a non-destination param (a destination one is refused, below).
    await writeFile(
      file,
      JSON.stringify(
        pipeline({ connectionId: sourceId }, { connectionId: sinkId, params: { delayMs: 0 } }),
      ),
    )
    const checkpoints = join(dir, `cp-${randomUUID()}.json`)
    const validate = await nvisy(['validate', file, '--config', config], {
      NVISY_MASTER_KEY: '',
      NVISY_TEST_DELAY: '0',
    })
    expect(validate.err).toBe('')
    expect(validate.code).toBe(0)

    const run = await nvisy(
      ['run', file, '--config', config, '--checkpoints', checkpoints, '--log-level', 'debug'],
      { NVISY_TEST_DELAY: '0' },
    )
    expect(run.err).not.toContain('nvisy:')
    expect(run.code).toBe(0)
    expect(JSON.parse(run.out)).toMatchObject({
      status: 'completed',
      stats: { nodes: { in: { items: 25 }, out: { items: 25 } } },
    })
    expect(memoryStore(sink).sink.map((d) => d.id)).toEqual(
      Array.from({ length: 25 }, (_, n) => memoryItemId(n)),
    )
    // Logs (debug level) and the summary never carry the password or the key.
    expect(run.err.length).toBeGreaterThan(0)
    expect(printed(validate, run)).not.toContain(password)
    expect(printed(validate, run)).not.toContain(masterKey)

    // With another password expected, the run fails at connect: the stored one was used.
    expected.password = `other-${randomUUID()}`
    const refused = await nvisy(
      ['run', file, '--config', config, '--checkpoints', checkpoints, '--no-resume'],
      { NVISY_TEST_DELAY: '0' },
    )
    expect(refused.code).toBe(1)
    expect(JSON.parse(refused.out).error).toMatchObject({ kind: 'auth' })
    expect(printed(refused)).not.toContain(password)
    expected.password = password

    const wrongKey = await nvisy(
      ['run', file, '--config', config, '--checkpoints', checkpoints, '--no-resume'],
      { NVISY_TEST_DELAY: '0', NVISY_MASTER_KEY: generateMasterKey().hex },
    )
    expect(wrongKey.code).toBe(2)
    expect(wrongKey.err).toContain('the stored credentials cannot be decrypted')
    expect(printed(wrongKey)).not.toContain(password)

    const noKey = await nvisy(['run', file, '--config', config, '--checkpoints', checkpoints], {
      NVISY_TEST_DELAY: '0',
      NVISY_MASTER_KEY: '',
    })
    expect(noKey.code).toBe(2)
    expect(noKey.err).toContain('NVISY_MASTER_KEY')
    expect(noKey.out).toBe('')
  })

  it('reports unknown ids, inline credentials and provider mismatches with the field path', async () => {
    const id = await addStored({ store: `s-${randomUUID()}` })
    const missing = randomUUID()
    const file = join(dir, 'bad-stored.json')
    await writeFile(
      file,
      JSON.stringify(
        pipeline(
          { connectionId: missing },
          { connectionId: id, credentials: { password: 'inline' } },
        ),
      ),
    )
    const result = await nvisy(['run', file, '--config', config])
    expect(result.code).toBe(2)
    expect(result.err).toContain(
      `/nodes/0/connection/connectionId: no connection ${missing} in the local store ${storeFile}`,
    )
    expect(result.err).toContain(
      '/nodes/1/connection/credentials: give either connectionId or credentials, not both',
    )
    const notUuid = join(dir, 'not-uuid.json')
    await writeFile(
      notUuid,
      JSON.stringify(pipeline({ connectionId: 'pg-main' }, { connectionId: id })),
    )
    const invalid = await nvisy(['validate', notUuid, '--config', config])
    expect(invalid.code).toBe(2)
    expect(invalid.err).toContain('/nodes/0/connection/connectionId: must be the UUID')

    const fsFile = join(dir, 'fs-stored.json')
    await writeFile(
      fsFile,
      JSON.stringify({
        id: 'fs-stored',
        nodes: [
          {
            id: 'in',
            role: 'source',
            provider: 'fs',
            connection: { connectionId: id },
            stream: { kind: 'blob' },
          },
          {
            id: 'out',
            role: 'sink',
            provider: 'fs',
            connection: { params: { root: dir } },
            stream: { kind: 'blob' },
          },
        ],
        edges: [{ from: 'in', to: 'out' }],
      }),
    )
    const mismatch = await nvisy(['validate', fsFile, '--config', withFs])
    expect(mismatch.code).toBe(2)
    expect(mismatch.err).toContain(
      `/nodes/0/connection/connectionId: connection ${id} is a vaulted connection, but the node uses provider fs`,
    )
  })
})

describe('stored connections cannot be redirected', () => {
  it('a store file whose destination param was edited (no key needed) is refused, naming the id', async () => {
    const target = `s-${randomUUID()}`
    const id = await addStored({ store: target })
    expect(
      (await nvisy(['check', 'vaulted', '--connection-id', id, '--config', config])).code,
    ).toBe(0)
    const file = JSON.parse(await readFile(storeFile, 'utf8'))
    file.connections[id].params.store = `attacker-${randomUUID()}`
    await writeFile(storeFile, JSON.stringify(file))
    const check = await nvisy(['check', 'vaulted', '--connection-id', id, '--config', config])
    expect(check.code).toBe(2)
    expect(check.err).toContain(`connection ${id}`)
    expect(check.err).toMatch(/destination params .* were changed/)
    expect(check.err).toContain(storeFile)
    expect(printed(check)).not.toContain(password)
    // Put back, it opens again; a non-destination param may be edited.
    file.connections[id].params = { store: target, delayMs: 1 }
    await writeFile(storeFile, JSON.stringify(file))
    const again = await nvisy(['check', 'vaulted', '--connection-id', id, '--config', config])
    expect(again.err).toBe('')
    expect(again.code).toBe(0)
  })

  it("a pipeline may not override a stored connection's destination params", async () => {
    const source = `src-${randomUUID()}`
    seedMemoryStore(source, 0, 3)
    const sourceId = await addStored({ store: source })
    const sinkId = await addStored({ store: `dst-${randomUUID()}` })
    const attacker = `attacker-${randomUUID()}`
    const file = join(dir, `redirect-${randomUUID()}.json`)
    await writeFile(
      file,
      JSON.stringify({
        id: 'redirect',
        nodes: [
          {
            id: 'in',
            role: 'source',
            provider: 'vaulted',
            connection: { connectionId: sourceId },
            stream: {},
          },
          {
            id: 'out',
            role: 'sink',
            provider: 'vaulted',
            connection: { connectionId: sinkId, params: { store: attacker } },
            stream: {},
          },
        ],
        edges: [{ from: 'in', to: 'out' }],
      }),
    )
    for (const command of ['validate', 'run']) {
      const result = await nvisy(
        [
          command,
          file,
          '--config',
          config,
          '--checkpoints',
          join(dir, `cp-${randomUUID()}.json`),
        ].slice(0, command === 'run' ? 7 : 4),
      )
      expect(result.code).toBe(2)
      expect(result.err).toContain('/nodes/1/connection/params/store')
      expect(result.err).toMatch(/destination/)
      expect(printed(result)).not.toContain(password)
    }
    expect(memoryStore(attacker).sink).toEqual([])
    // The same through check with a connection file naming the stored id.
    const connFile = join(dir, `conn-${randomUUID()}.json`)
    await writeFile(connFile, JSON.stringify({ connectionId: sinkId, params: { store: attacker } }))
    const check = await nvisy(['check', 'vaulted', '--connection', connFile, '--config', config])
    expect(check.code).toBe(2)
    expect(check.err).toContain('/params/store')
  })
})

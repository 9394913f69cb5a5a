import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  bytesToHex,
  defaultStorePath,
  Keyring,
  LOCAL_WORKSPACE_ID,
  LocalConnectionStore,
  parseBlobHeader,
  toBase64,
  VaultError,
  type VaultErrorKind,
} from './index.js'

const masterKey = new Uint8Array(randomBytes(32))
const PASSWORD = 'pg-pa55-very-secret'
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-vault-store-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function storePath(): string {
  return join(dir, randomUUID(), 'nested', 'connections.json')
}

async function expectKind(promise: Promise<unknown>, kind: VaultErrorKind): Promise<VaultError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected a ${kind} VaultError`)
    },
    (e: unknown) => e,
  )
  if (!VaultError.isInstance(error)) throw error
  expect(error.kind).toBe(kind)
  return error
}

describe('LocalConnectionStore', () => {
  it('adds, lists (without credentials), opens and removes connections', async () => {
    const path = storePath()
    const store = new LocalConnectionStore({
      path,
      masterKey,
      now: () => new Date('2025-01-02T03:04:05.000Z'),
    })
    const id = randomUUID()
    const summary = await store.add(id, {
      provider: 'postgres',
      params: { host: '127.0.0.1', port: 5432 },
      credentials: { user: 'postgres', password: PASSWORD },
    })
    expect(summary).toEqual({
      id,
      provider: 'postgres',
      params: { host: '127.0.0.1', port: 5432 },
      workspaceId: LOCAL_WORKSPACE_ID,
      createdAt: '2025-01-02T03:04:05.000Z',
      keyId: 1,
    })

    const listed = await store.list()
    expect(listed).toEqual([summary])
    expect(JSON.stringify(listed)).not.toContain(PASSWORD)
    expect(await store.get(id)).toEqual(summary)
    expect(await store.get(randomUUID())).toBeUndefined()

    // A second instance (another process, later) opens it with the same key.
    const opened = await new LocalConnectionStore({ path, masterKey }).open(id)
    expect(opened).toMatchObject({
      id,
      provider: 'postgres',
      params: { host: '127.0.0.1', port: 5432 },
      credentials: { user: 'postgres', password: PASSWORD },
    })

    expect(await store.remove(id)).toBe(true)
    expect(await store.remove(id)).toBe(false)
    expect(await store.list()).toEqual([])
    await expectKind(store.open(id), 'not_found')
  })

  it('writes the documented file shape, mode 0600, atomically and without plaintext', async () => {
    const path = storePath()
    const store = new LocalConnectionStore({ path, masterKey })
    const id = randomUUID()
    await store.add(id, { provider: 'redis', credentials: { password: PASSWORD } })
    const text = await readFile(path, 'utf8')
    expect(text).not.toContain(PASSWORD)
    expect(text).not.toContain(bytesToHex(masterKey))
    expect(text).not.toContain(toBase64(masterKey))
    const file = JSON.parse(text)
    expect(file.version).toBe(1)
    expect(Object.keys(file.connections)).toEqual([id])
    const entry = file.connections[id]
    expect(Object.keys(entry).sort()).toEqual(
      ['createdAt', 'credentials', 'params', 'provider', 'workspaceId'].sort(),
    )
    expect(entry.params).toEqual({})
    expect(parseBlobHeader(entry.credentials).keyId).toBe(1)
    if (process.platform !== 'win32') {
      expect((await stat(path)).mode & 0o777).toBe(0o600)
      expect((await stat(join(path, '..'))).mode & 0o777).toBe(0o700)
    }
    // No temp or lock files are left behind.
    expect(await readdir(join(path, '..'))).toEqual(['connections.json'])
  })

  it('rejects a duplicate id, bad ids and bad input with named fields', async () => {
    const store = new LocalConnectionStore({ path: storePath(), masterKey })
    const id = randomUUID()
    await store.add(id, { provider: 'nats', credentials: { token: 't' } })
    await expectKind(store.add(id, { provider: 'nats', credentials: { token: 't' } }), 'conflict')
    await expect(store.add('my-db', { provider: 'x', credentials: {} })).rejects.toThrow(
      /^id: must be a connection UUID/,
    )
    await expect(store.add(randomUUID(), { provider: '', credentials: {} })).rejects.toThrow(
      /^provider:/,
    )
    await expect(
      store.add(randomUUID(), { provider: 'x', credentials: 'pw' as any }),
    ).rejects.toThrow(/^credentials: must be a JSON object/)
    await expect(
      store.add(randomUUID(), { provider: 'x', params: [] as any, credentials: {} }),
    ).rejects.toThrow(/^params:/)
    await expectKind(store.remove('nope'), 'config')
    expect(() => new LocalConnectionStore({ path: storePath() })).toThrow(/masterKey: required/)
    expect(
      () => new LocalConnectionStore({ path: storePath(), masterKey: new Uint8Array(8) }),
    ).toThrow(/32 bytes/)
  })

  it('cannot open a connection with another master key, or one moved to another id', async () => {
    const path = storePath()
    const store = new LocalConnectionStore({ path, masterKey })
    const id = randomUUID()
    await store.add(id, { provider: 'pg', credentials: { password: PASSWORD } })
    const wrong = new LocalConnectionStore({ path, masterKey: new Uint8Array(randomBytes(32)) })
    const error = await expectKind(wrong.open(id), 'integrity')
    expect(`${error.message}${error.stack}`).not.toContain(PASSWORD)

    // Copy the entry under another id by hand: the blob is bound to its connection id.
    const file = JSON.parse(await readFile(path, 'utf8'))
    const other = randomUUID()
    file.connections[other] = file.connections[id]
    await writeFile(path, JSON.stringify(file), { mode: 0o600 })
    await expectKind(store.open(other), 'integrity')
    expect((await store.open(id)).credentials).toEqual({ password: PASSWORD })
  })

  it('keeps every concurrent add, within one store and across two instances', async () => {
    const path = storePath()
    const a = new LocalConnectionStore({ path, masterKey })
    const b = new LocalConnectionStore({ path, masterKey })
    const ids = Array.from({ length: 12 }, () => randomUUID())
    await Promise.all(
      ids.map((id, i) => (i % 2 === 0 ? a : b).add(id, { provider: 'p', credentials: { n: i } })),
    )
    const listed = await a.list()
    expect(listed.map((c) => c.id).sort()).toEqual([...ids].sort())
    for (const [i, id] of ids.entries()) {
      expect((await b.open(id)).credentials).toEqual({ n: i })
    }
  })

  it('rekeys connections to the current master key generation', async () => {
    const path = storePath()
    const oldKey = new Uint8Array(randomBytes(32))
    const newKey = new Uint8Array(randomBytes(32))
    const before = new LocalConnectionStore({
      path,
      keyring: new Keyring({ current: 1, keys: { 1: oldKey } }),
    })
    const ids = [randomUUID(), randomUUID()]
    for (const id of ids) await before.add(id, { provider: 'p', credentials: { id } })

    const rotating = new LocalConnectionStore({
      path,
      keyring: new Keyring({ current: 2, keys: { 1: oldKey, 2: newKey } }),
    })
    expect((await rotating.open(ids[0]!)).credentials).toEqual({ id: ids[0] })
    expect(await rotating.rekey()).toBe(2)
    expect(await rotating.rekey()).toBe(0)
    expect((await rotating.list()).map((c) => c.keyId)).toEqual([2, 2])

    const after = new LocalConnectionStore({
      path,
      keyring: new Keyring({ current: 2, keys: { 2: newKey } }),
    })
    for (const id of ids) expect((await after.open(id)).credentials).toEqual({ id })
    await expectKind(before.open(ids[0]!), 'key')
  })

  it('reports a corrupt file as a format error naming the path', async () => {
    const path = storePath()
    const store = new LocalConnectionStore({ path, masterKey })
    await store.add(randomUUID(), { provider: 'p', credentials: {} })
    await writeFile(path, '{"connections": [', 'utf8')
    const error = await expectKind(store.list(), 'format')
    expect(error.message).toContain(path)
    await writeFile(path, JSON.stringify({ connections: { x: {} } }), 'utf8')
    expect((await expectKind(store.list(), 'format')).message).toContain('connections["x"]')
  })

  it('builds from the environment', async () => {
    const path = storePath()
    const env = { NVISY_MASTER_KEY: toBase64(masterKey), NVISY_CONNECTIONS_FILE: path }
    expect(defaultStorePath(env)).toBe(path)
    expect(defaultStorePath({})).toMatch(/\.nvisy[/\\]connections\.json$/)
    const store = LocalConnectionStore.fromEnv({ env })
    const id = randomUUID()
    await store.add(id, { provider: 'p', credentials: { a: 1 } })
    expect((await new LocalConnectionStore({ path, masterKey }).open(id)).credentials).toEqual({
      a: 1,
    })
  })
})

import { randomBytes, randomUUID } from 'node:crypto'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  decryptCredentials,
  decryptCredentialsJson,
  encryptCredentials,
  LOCAL_WORKSPACE_ID,
  LocalConnectionStore,
  parseBlobHeader,
  toBase64,
  VaultError,
} from './index.js'

const masterKey = new Uint8Array(randomBytes(32))
const PASSWORD = 'bound-pa55-secret'
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-vault-binding-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function refusal(promise: Promise<unknown>): Promise<VaultError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the store to refuse')
    },
    (e: unknown) => e,
  )
  if (!VaultError.isInstance(error)) throw error
  expect(error.message).not.toContain(PASSWORD)
  return error
}

async function editEntry(path: string, id: string, edit: (entry: any) => void): Promise<void> {
  const file = JSON.parse(await readFile(path, 'utf8'))
  edit(file.connections[id])
  await writeFile(path, JSON.stringify(file))
}

describe('stored connections are bound to where their credentials go', () => {
  it('an edited host or port (no master key needed to edit) no longer decrypts', async () => {
    for (const edit of [
      (e: any) => {
        e.params.host = 'attacker.example'
      },
      (e: any) => {
        e.params.port = 15432
      },
      (e: any) => {
        e.params.extra = 'x'
      },
      (e: any) => {
        delete e.params.port
      },
      (e: any) => {
        e.provider = 'mysql'
      },
    ]) {
      const path = join(dir, `${randomUUID()}.json`)
      const store = new LocalConnectionStore({ path, masterKey })
      const id = randomUUID()
      await store.add(id, {
        provider: 'postgres',
        params: { host: '127.0.0.1', port: 5432 },
        credentials: { password: PASSWORD },
      })
      expect((await store.open(id)).credentials).toEqual({ password: PASSWORD })
      await editEntry(path, id, edit)
      const error = await refusal(store.open(id))
      expect(error.kind).toBe('integrity')
      expect(error.message).toContain(id)
    }
  })

  it('binds only the destination params the digest function selects', async () => {
    const path = join(dir, `${randomUUID()}.json`)
    // As the runtime does with a provider whose schema marks host and port as destinations.
    const destinationDigest = (_provider: string, params: Record<string, unknown>) =>
      JSON.stringify([params.host, params.port])
    const store = new LocalConnectionStore({ path, masterKey, destinationDigest })
    const id = randomUUID()
    await store.add(id, {
      provider: 'postgres',
      params: { host: 'db', port: 5432, connectTimeoutMs: 1000 },
      credentials: { password: PASSWORD },
    })
    await editEntry(path, id, (e) => {
      e.params.connectTimeoutMs = 5000
    })
    expect((await store.open(id)).params.connectTimeoutMs).toBe(5000)
    await editEntry(path, id, (e) => {
      e.params.host = 'elsewhere'
    })
    expect((await refusal(store.open(id))).kind).toBe('integrity')
  })

  it('writes format version 2 blobs; an entry of the unbound version 1 is refused with the fix', async () => {
    const path = join(dir, `${randomUUID()}.json`)
    const store = new LocalConnectionStore({ path, masterKey })
    const id = randomUUID()
    const summary = await store.add(id, {
      provider: 'postgres',
      params: { host: 'db' },
      credentials: { password: PASSWORD },
    })
    const file = JSON.parse(await readFile(path, 'utf8'))
    expect(parseBlobHeader(file.connections[id].credentials).formatVersion).toBe(2)
    expect(summary.keyId).toBe(1)
    // An entry as an earlier release wrote it: a version 1 blob (connection id bound, params not).
    const oldId = randomUUID()
    file.connections[oldId] = {
      provider: 'postgres',
      params: { host: 'db' },
      workspaceId: LOCAL_WORKSPACE_ID,
      credentials: toBase64(
        encryptCredentials(
          { password: PASSWORD },
          { masterKey, workspaceId: LOCAL_WORKSPACE_ID, connectionId: oldId },
        ),
      ),
      createdAt: new Date().toISOString(),
    }
    await writeFile(path, JSON.stringify(file))
    expect((await store.list()).map((c) => c.id).sort()).toEqual([id, oldId].sort())
    const error = await refusal(store.open(oldId))
    expect(error.kind).toBe('format')
    expect(error.message).toContain(oldId)
    expect(error.message).toMatch(/add it again/)
    // rekey leaves it alone (re-sealing would bind params nobody vouched for).
    expect(await store.rekey()).toBe(0)
    expect(await store.remove(oldId)).toBe(true)
  })
})

describe('bound blobs cannot be downgraded', () => {
  it('a version 2 blob relabelled version 1 does not open, with or without a binding', () => {
    const context = { masterKey, workspaceId: LOCAL_WORKSPACE_ID, connectionId: randomUUID() }
    const binding = new Uint8Array(32).fill(7)
    const blob = encryptCredentials({ password: PASSWORD }, { ...context, binding })
    expect(blob[0]).toBe(2)
    expect(decryptCredentialsJson(blob, { ...context, binding })).toEqual({ password: PASSWORD })
    const relabelled = blob.slice()
    relabelled[0] = 1
    const unbound = (() => {
      try {
        decryptCredentials(relabelled, context)
      } catch (error) {
        return error as VaultError
      }
    })()
    expect(unbound?.kind).toBe('integrity')
    const withBinding = (() => {
      try {
        decryptCredentials(relabelled, { ...context, binding })
      } catch (error) {
        return error as VaultError
      }
    })()
    expect(withBinding?.kind).toBe('format')
    const wrong = (() => {
      try {
        decryptCredentials(blob, { ...context, binding: new Uint8Array(32) })
      } catch (error) {
        return error as VaultError
      }
    })()
    expect(wrong?.kind).toBe('integrity')
  })
})

describe('store file mode', () => {
  it('is created 0600, and an existing 0644 file is made 0600 when read', async () => {
    const path = join(dir, `${randomUUID()}.json`)
    const store = new LocalConnectionStore({ path, masterKey })
    await store.add(randomUUID(), { provider: 'fs', params: {}, credentials: {} })
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    await chmod(path, 0o644)
    await store.list()
    expect((await stat(path)).mode & 0o777).toBe(0o600)
  })
})

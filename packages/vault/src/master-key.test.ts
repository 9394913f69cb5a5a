import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  bytesToHex,
  generateMasterKey,
  loadKeyring,
  loadMasterKey,
  parseMasterKey,
  toBase64,
  VaultError,
} from './index.js'

const key = new Uint8Array(randomBytes(32))
const hex = bytesToHex(key)
const base64 = toBase64(key)
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nvisy-vault-key-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function caught(run: () => unknown): VaultError {
  try {
    run()
  } catch (error) {
    if (VaultError.isInstance(error)) return error
    throw error
  }
  throw new Error('expected a VaultError')
}

describe('parseMasterKey', () => {
  it('accepts hex (either case), base64 and base64url, trimming whitespace', () => {
    expect(parseMasterKey(hex)).toEqual(key)
    expect(parseMasterKey(hex.toUpperCase())).toEqual(key)
    expect(parseMasterKey(`  ${base64}\n`)).toEqual(key)
    expect(parseMasterKey(Buffer.from(key).toString('base64url'))).toEqual(key)
  })

  it('rejects wrong lengths and garbage, naming the field and never echoing the value', () => {
    for (const text of [
      '',
      hex.slice(2),
      `${base64}AAAA`,
      toBase64(key.slice(0, 31)),
      'zz'.repeat(32),
    ]) {
      const error = caught(() => parseMasterKey(text, 'NVISY_MASTER_KEY'))
      expect(error.kind).toBe('key')
      expect(error.field).toBe('NVISY_MASTER_KEY')
      expect(error.message).toMatch(/^NVISY_MASTER_KEY: /)
      if (text.length > 8) expect(`${error.message}${error.stack}`).not.toContain(text.trim())
    }
  })
})

describe('loadKeyring', () => {
  it('reads NVISY_MASTER_KEY with key id 1 by default', () => {
    const keyring = loadKeyring({ env: { NVISY_MASTER_KEY: base64 } })
    expect(keyring.currentId).toBe(1)
    expect(keyring.currentKey).toEqual(key)
    expect(loadMasterKey({ env: { NVISY_MASTER_KEY: hex } })).toEqual(key)
  })

  it('reads a key file: raw 32 bytes, or text', async () => {
    const raw = join(dir, 'raw.key')
    const text = join(dir, 'text.key')
    await writeFile(raw, key, { mode: 0o600 })
    await writeFile(text, `${hex}\n`, { mode: 0o600 })
    expect(loadMasterKey({ env: { NVISY_MASTER_KEY_FILE: raw } })).toEqual(key)
    expect(loadMasterKey({ env: {}, keyFile: text })).toEqual(key)
    const missing = caught(() => loadKeyring({ env: { NVISY_MASTER_KEY_FILE: join(dir, 'nope') } }))
    expect(missing.kind).toBe('key')
    expect(missing.message).toContain('ENOENT')
  })

  it('refuses a key file readable by group or others, unless allowed (then reports it)', async () => {
    for (const mode of [0o644, 0o640, 0o604]) {
      const file = join(dir, `open-${mode.toString(8)}.key`)
      await writeFile(file, `${hex}\n`)
      await chmod(file, mode)
      const error = caught(() => loadKeyring({ env: { NVISY_MASTER_KEY_FILE: file } }))
      expect(error.kind).toBe('key')
      expect(error.message).toContain(file)
      expect(error.message).toContain(`chmod 600 ${file}`)
      expect(error.message).not.toContain(hex)
      const seen: Array<[string, number]> = []
      const keyring = loadKeyring({
        env: {},
        keyFile: file,
        allowInsecureKeyFile: true,
        onInsecureKeyFile: (path, found) => seen.push([path, found]),
      })
      expect(keyring.currentKey).toEqual(key)
      expect(seen).toEqual([[file, mode]])
    }
    const owner = join(dir, 'owner-only.key')
    await writeFile(owner, key)
    await chmod(owner, 0o400)
    expect(loadMasterKey({ env: { NVISY_MASTER_KEY_FILE: owner } })).toEqual(key)
  })

  it('takes the current key id and previous generations from the environment', () => {
    const old = new Uint8Array(randomBytes(32))
    const keyring = loadKeyring({
      env: {
        NVISY_MASTER_KEY: base64,
        NVISY_MASTER_KEY_ID: '3',
        NVISY_MASTER_KEYS_PREVIOUS: `1:${bytesToHex(old)}, 2:${toBase64(old)}`,
      },
    })
    expect(keyring.currentId).toBe(3)
    expect(keyring.ids).toEqual([1, 2, 3])
    expect(keyring.key(1)).toEqual(old)
    expect(keyring.currentKey).toEqual(key)
  })

  it('fails clearly when nothing or too much is configured', () => {
    expect(caught(() => loadKeyring({ env: {} })).message).toMatch(
      /no master key: set NVISY_MASTER_KEY/,
    )
    expect(
      caught(() => loadKeyring({ env: { NVISY_MASTER_KEY: hex, NVISY_MASTER_KEY_FILE: '/x' } }))
        .message,
    ).toMatch(/not both/)
    expect(
      caught(() => loadKeyring({ env: { NVISY_MASTER_KEY: hex, NVISY_MASTER_KEY_ID: 'one' } }))
        .field,
    ).toBe('NVISY_MASTER_KEY_ID')
    const duplicate = caught(() =>
      loadKeyring({ env: { NVISY_MASTER_KEY: hex, NVISY_MASTER_KEYS_PREVIOUS: `1:${hex}` } }),
    )
    expect(duplicate.field).toBe('NVISY_MASTER_KEYS_PREVIOUS')
    expect(`${duplicate.message}${duplicate.stack}`).not.toContain(hex)
    expect(
      caught(() => loadKeyring({ env: { NVISY_MASTER_KEY: hex, NVISY_MASTER_KEYS_PREVIOUS: hex } }))
        .field,
    ).toBe('NVISY_MASTER_KEYS_PREVIOUS[0]')
  })
})

describe('generateMasterKey', () => {
  it('returns 32 random bytes and their text forms, which parse back', () => {
    const a = generateMasterKey()
    const b = generateMasterKey()
    expect(a.key.length).toBe(32)
    expect(a.hex).not.toBe(b.hex)
    expect(parseMasterKey(a.base64)).toEqual(a.key)
    expect(parseMasterKey(a.hex)).toEqual(a.key)
  })
})

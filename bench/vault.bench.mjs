#!/usr/bin/env node
// @nvisy/vault: sealing and opening a connection's credentials (encryptCredentials +
// decryptCredentialsJson) next to the bare primitives doing the same cryptography in the
// same process and run: HKDF-SHA256 of the workspace key, XChaCha20-Poly1305 seal and open
// with the same associated data (@noble/hashes, @noble/ciphers, what the vault uses).
// The difference is the vault's own work: JSON, the versioned blob header, input checks.
//
//   pnpm build && node bench/vault.bench.mjs [--count 20000] [--rounds 3]
//
// Prints one JSON object: operations/s per side (one operation = seal + open of one
// credentials object of ~200 bytes), the best of `rounds` alternating rounds,
// ratio = vault / bare, and cpuRatio = bare / vault CPU time per operation (lowest of the rounds).
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { compareLoops } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const vaultDir = join(here, '..', 'packages', 'vault')
const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
  },
})
const count = Number(args.count)
const rounds = Number(args.rounds)

const vault = await import(pathToFileURL(join(vaultDir, 'dist', 'index.js')).href)
const require = createRequire(join(vaultDir, 'package.json'))
const resolveFrom = (specifier) => pathToFileURL(require.resolve(specifier)).href
const { xchacha20poly1305 } = await import(resolveFrom('@noble/ciphers/chacha.js'))
const { hkdf } = await import(resolveFrom('@noble/hashes/hkdf.js'))
const { sha256 } = await import(resolveFrom('@noble/hashes/sha2.js'))

const masterKey = new Uint8Array(randomBytes(32))
const workspaceId = '5f0c6f4e-8a1b-4c2d-9e3f-0a1b2c3d4e5f'
const connectionId = '3f2b1a09-8e7d-4c6b-a594-837261504f3e'
const credentials = {
  user: 'etl_loader',
  password: randomBytes(24).toString('base64'),
  sslCertificate: randomBytes(60).toString('base64'),
}
const info = new TextEncoder().encode('nvisy/vault/v1/workspace-key')
const uuidBytes = (uuid) => Uint8Array.from(Buffer.from(uuid.replaceAll('-', ''), 'hex'))

function oursOnce() {
  const blob = vault.encryptCredentials(credentials, { masterKey, workspaceId, connectionId })
  const opened = vault.decryptCredentialsJson(blob, { masterKey, workspaceId, connectionId })
  if (opened.password !== credentials.password)
    throw new Error('vault round trip changed the credentials')
}

function bareOnce() {
  // The same work by hand: derive, seal with the same AAD size, open, parse.
  const key = hkdf(sha256, masterKey, uuidBytes(workspaceId), info, 32)
  const nonce = new Uint8Array(randomBytes(24))
  const aad = uuidBytes(connectionId)
  const plaintext = new TextEncoder().encode(JSON.stringify(credentials))
  const sealed = xchacha20poly1305(key, nonce, aad).encrypt(plaintext)
  const key2 = hkdf(sha256, masterKey, uuidBytes(workspaceId), info, 32)
  const opened = JSON.parse(
    new TextDecoder().decode(xchacha20poly1305(key2, nonce, aad).decrypt(sealed)),
  )
  if (opened.password !== credentials.password)
    throw new Error('bare round trip changed the credentials')
}

const compared = compareLoops({
  ours: oursOnce,
  bare: bareOnce,
  count,
  rounds,
  warmup: 3000,
  unit: 'op',
})
console.log(
  JSON.stringify({
    benchmark: 'vault: seal + open one credentials object vs the bare HKDF + XChaCha20-Poly1305',
    count,
    rounds,
    plaintextBytes: JSON.stringify(credentials).length,
    node: process.version,
    ...compared,
  }),
)

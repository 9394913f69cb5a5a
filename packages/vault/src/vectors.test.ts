// Published test vectors (README "Test vectors"): exact bytes, cross-checked against
// independent implementations (node:crypto's HKDF and ChaCha20-Poly1305).

import { createCipheriv, createHash, hkdfSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hchacha, xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { describe, expect, it } from 'vitest'
import {
  allParamsDigest,
  associatedData,
  bytesToHex,
  decryptCredentials,
  decryptCredentialsJson,
  deriveWorkspaceKey,
  encryptCredentials,
  hexToBytes,
  storeBinding,
  toBase64,
  utf8ToBytes,
  uuidToBytes,
  WORKSPACE_KEY_INFO,
} from './index.js'

const MASTER_KEY = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')
const WORKSPACE_ID = '8c4a5f2e-3b1d-4e6f-9a7c-0d2e4f6a8b1c'
const CONNECTION_ID = '3f2b1a09-8e7d-4c6b-a594-837261504f3e'
const WORKSPACE_KEY = '79b584fea3ef68bd22f4ed1fd88e17decf75b8577180056f7e70d4e75a03afb8'

interface Vector {
  name: string
  keyId: number
  nonce: string
  plaintext: string
  aad: string
  blob: string
  base64: string
  /** Format version 2 only. */
  binding?: string
}

const VECTORS: Vector[] = [
  {
    name: 'vector 1: JSON credentials, key id 1',
    keyId: 1,
    nonce: '404142434445464748494a4b4c4d4e4f5051525354555657',
    plaintext: '7b2275736572223a226e76697379222c2270617373776f7264223a2268756e74657232227d',
    aad: '01013f2b1a098e7d4c6ba594837261504f3e',
    blob:
      '0101404142434445464748494a4b4c4d4e4f5051525354555657' +
      '355831f98884597012fd16820623d39cef3c607589e55e2e324e5f5aff9c8447e4eb1d4f94' +
      '9ab1caed3f443320232c19cbe88ea7ba',
    base64:
      'AQFAQUJDREVGR0hJSktMTU5PUFFSU1RVVlc1WDH5iIRZcBL9FoIGI9Oc7zxgdYnlXi4yTl9a/5yER+TrHU+UmrHK7T9EMyAjLBnL6I6nug==',
  },
  {
    name: 'vector 2: empty plaintext, key id 2',
    keyId: 2,
    nonce: 'ffffffffffffffffffffffffffffffffffffffffffffffff',
    plaintext: '',
    aad: '01023f2b1a098e7d4c6ba594837261504f3e',
    blob: '0102ffffffffffffffffffffffffffffffffffffffffffffffff6724db795f96f0768ae6b8e2e4a00548',
    base64: 'AQL///////////////////////////////9nJNt5X5bwdormuOLkoAVI',
  },
  {
    name: 'vector 3: format version 2 (bound), key id 1, a store entry',
    keyId: 1,
    nonce: '606162636465666768696a6b6c6d6e6f7071727374757677',
    plaintext: '7b2275736572223a226e76697379222c2270617373776f7264223a2268756e74657232227d',
    binding: 'b3b0e7a1a75403d0ef8f362abb5a086d40f785326e0cbd0b72e291692b7e13b3',
    aad:
      '02013f2b1a098e7d4c6ba594837261504f3e' +
      'b3b0e7a1a75403d0ef8f362abb5a086d40f785326e0cbd0b72e291692b7e13b3',
    blob:
      '0201606162636465666768696a6b6c6d6e6f7071727374757677' +
      '96f587b35dc951909661d729fd11e3d388d582b42bba46807873043d755c9b23744cc4ea17' +
      'b21a33bd79e16e2dd3b90f16b6177def',
    base64:
      'AgFgYWJjZGVmZ2hpamtsbW5vcHFyc3R1dneW9YezXclRkJZh1yn9EePTiNWCtCu6RoB4cwQ9dVybI3RMxOoXshozvXnhbi3TuQ8Wthd97w==',
  },
]

/** Vector 3's store entry: provider postgres, params {host: "db.example", port: 5432}. */
const V3_DIGEST = 'a3fff675c1d303ced27e85ee696bb2e1bd91109198c6a4be58636abbf06022e7'
const V3_CANONICAL = '{"/":{"host":"db.example","port":5432}}'

/** "expand 32-byte k" as little-endian words. */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574])

function words(bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Uint32Array.from({ length: bytes.length / 4 }, (_, i) => view.getUint32(i * 4, true))
}

function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const out = new Uint32Array(8)
  hchacha(SIGMA, words(key), words(nonce16), out)
  const bytes = new Uint8Array(32)
  const view = new DataView(bytes.buffer)
  for (const [i, word] of out.entries()) view.setUint32(i * 4, word, true)
  return bytes
}

/** XChaCha20-Poly1305 through node:crypto (OpenSSL's ChaCha20-Poly1305) after HChaCha20. */
function xchachaSealWithNodeCrypto(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const subkey = hchacha20(key, nonce.subarray(0, 16))
  const iv = new Uint8Array(12)
  iv.set(nonce.subarray(16, 24), 4)
  const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: 16 })
  cipher.setAAD(aad, { plaintextLength: plaintext.length })
  return new Uint8Array(
    Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]),
  )
}

describe('published test vectors', () => {
  it('derives the workspace key, matching node:crypto hkdfSync', () => {
    const key = deriveWorkspaceKey(MASTER_KEY, WORKSPACE_ID)
    expect(bytesToHex(key)).toBe(WORKSPACE_KEY)
    const independent = hkdfSync(
      'sha256',
      MASTER_KEY,
      uuidToBytes(WORKSPACE_ID),
      Buffer.from(WORKSPACE_KEY_INFO, 'utf8'),
      32,
    )
    expect(bytesToHex(new Uint8Array(independent))).toBe(WORKSPACE_KEY)
    // Salt is the UUID's 16 bytes, so the UUID's letter case does not matter.
    expect(bytesToHex(deriveWorkspaceKey(MASTER_KEY, WORKSPACE_ID.toUpperCase()))).toBe(
      WORKSPACE_KEY,
    )
  })

  for (const vector of VECTORS) {
    describe(vector.name, () => {
      const plaintext = hexToBytes(vector.plaintext)
      const nonce = hexToBytes(vector.nonce)
      const binding = vector.binding === undefined ? undefined : hexToBytes(vector.binding)
      const version = binding === undefined ? 1 : 2
      const options = {
        masterKey: MASTER_KEY,
        keyId: vector.keyId,
        workspaceId: WORKSPACE_ID,
        connectionId: CONNECTION_ID,
        binding,
      }

      it('encrypts to the exact published bytes', () => {
        const blob = encryptCredentials(plaintext, { ...options, nonce })
        expect(bytesToHex(blob)).toBe(vector.blob)
        expect(toBase64(blob)).toBe(vector.base64)
        expect(bytesToHex(associatedData(version, vector.keyId, CONNECTION_ID, binding))).toBe(
          vector.aad,
        )
      })

      it('matches HChaCha20 + node:crypto ChaCha20-Poly1305', () => {
        const independent = xchachaSealWithNodeCrypto(
          hexToBytes(WORKSPACE_KEY),
          nonce,
          hexToBytes(vector.aad),
          plaintext,
        )
        expect(bytesToHex(independent)).toBe(vector.blob.slice(2 * (2 + 24)))
      })

      it('decrypts back to the plaintext, from bytes and from base64', () => {
        expect(bytesToHex(decryptCredentials(hexToBytes(vector.blob), options))).toBe(
          vector.plaintext,
        )
        expect(bytesToHex(decryptCredentials(vector.base64, options))).toBe(vector.plaintext)
      })
    })
  }

  it("vector 3's binding is the store binding of its entry, checked with node:crypto SHA-256", () => {
    const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex')
    expect(sha(V3_CANONICAL)).toBe(V3_DIGEST)
    expect(allParamsDigest('postgres', { port: 5432, host: 'db.example' })).toBe(V3_DIGEST)
    const label = JSON.stringify(['nvisy/vault/v2/store-binding', 'postgres', V3_DIGEST])
    expect(sha(label)).toBe(VECTORS[2]!.binding)
    expect(bytesToHex(storeBinding('postgres', V3_DIGEST))).toBe(VECTORS[2]!.binding)
  })

  it('vector 1 plaintext is the JSON the README shows', () => {
    const json = { user: 'nvisy', password: 'hunter2' }
    expect(bytesToHex(utf8ToBytes(JSON.stringify(json)))).toBe(VECTORS[0]!.plaintext)
    expect(
      bytesToHex(
        encryptCredentials(json, {
          masterKey: MASTER_KEY,
          workspaceId: WORKSPACE_ID,
          connectionId: CONNECTION_ID,
          nonce: hexToBytes(VECTORS[0]!.nonce),
        }),
      ),
    ).toBe(VECTORS[0]!.blob)
    expect(
      decryptCredentialsJson(VECTORS[0]!.base64, {
        masterKey: MASTER_KEY,
        workspaceId: WORKSPACE_ID,
        connectionId: CONNECTION_ID,
      }),
    ).toEqual(json)
  })
})

describe('README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

  it('publishes exactly the vectors asserted here', () => {
    const published = [
      bytesToHex(MASTER_KEY),
      WORKSPACE_ID,
      CONNECTION_ID,
      bytesToHex(uuidToBytes(WORKSPACE_ID)),
      bytesToHex(utf8ToBytes(WORKSPACE_KEY_INFO)),
      WORKSPACE_KEY,
      V3_DIGEST,
      V3_CANONICAL,
      ...VECTORS.flatMap((v) =>
        [v.nonce, v.aad, v.blob, v.base64, v.plaintext, v.binding].filter(Boolean),
      ),
    ]
    for (const value of published) expect(readme).toContain(`\`${value}\``)
  })
})

// Anchors for the primitives themselves (draft-irtf-cfrg-xchacha-03), so the cross-check
// above is not one library agreeing with itself.
describe('XChaCha20 draft vectors', () => {
  it('HChaCha20 (§2.2.1)', () => {
    const key = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')
    const nonce = hexToBytes('000000090000004a0000000031415927')
    expect(bytesToHex(hchacha20(key, nonce))).toBe(
      '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc',
    )
  })

  it('AEAD_XChaCha20_Poly1305 (§A.3.1), by @noble/ciphers and by node:crypto', () => {
    const key = hexToBytes('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f')
    const nonce = hexToBytes('404142434445464748494a4b4c4d4e4f5051525354555657')
    const aad = hexToBytes('50515253c0c1c2c3c4c5c6c7')
    const plaintext = utf8ToBytes(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    )
    const expected =
      'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb' +
      '731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452' +
      '2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9' +
      '21f9664c97637da9768812f615c68b13b52e' +
      'c0875924c1c7987947deafd8780acf49'
    expect(bytesToHex(xchacha20poly1305(key, nonce, aad).encrypt(plaintext))).toBe(expected)
    expect(bytesToHex(xchachaSealWithNodeCrypto(key, nonce, aad, plaintext))).toBe(expected)
  })
})

import { describe, expect, it } from 'vitest'
import {
  compareKeys,
  isReservedName,
  isWithin,
  keyProblem,
  relativePathProblem,
  sidecarName,
  tempName,
} from './fs-paths.js'

describe('paths', () => {
  it('compares keys by UTF-8 bytes, not UTF-16 code units', () => {
    expect('\u{1F600}' < '\u{FF5E}').toBe(true)
    expect(compareKeys('\u{1F600}', '\u{FF5E}')).toBeGreaterThan(0)
    expect(compareKeys('a/b', 'a-b')).toBeGreaterThan(0)
    expect(compareKeys('a', 'a')).toBe(0)
  })

  it('accepts ordinary keys and names the problem with the others', () => {
    for (const key of ['a.txt', 'dir/sub/naïve file ✓.md', '.hidden', 'a..b'])
      expect(keyProblem(key), key).toBeUndefined()
    for (const key of [
      '',
      '/a',
      'a//b',
      'a/',
      '..',
      'a/../b',
      './a',
      'a\0b',
      'd/.x.nvisy-meta.json',
    ]) {
      expect(keyProblem(key), JSON.stringify(key)).toBeTypeOf('string')
    }
  })

  it('reserves sidecar and temporary names only', () => {
    expect(isReservedName(sidecarName('a.txt'))).toBe(true)
    expect(isReservedName(tempName('a.txt'))).toBe(true)
    expect(isReservedName(tempName('x'.repeat(300)))).toBe(true)
    expect(Buffer.byteLength(tempName('é'.repeat(300)))).toBeLessThan(255)
    expect(isReservedName('.a.tmp')).toBe(false)
    expect(isReservedName('a.nvisy-meta.json')).toBe(false)
  })

  it('knows what is inside a root', () => {
    expect(isWithin('/r', '/r')).toBe(true)
    expect(isWithin('/r', '/r/a/b')).toBe(true)
    expect(isWithin('/r', '/r2')).toBe(false)
    expect(isWithin('/r', '/')).toBe(false)
    expect(isWithin('/r', '/r/..foo')).toBe(true)
    expect(relativePathProblem('a/b/')).toBeUndefined()
    expect(relativePathProblem('a/../b')).toBeTypeOf('string')
    expect(relativePathProblem('/a')).toBeTypeOf('string')
  })
})

describe('params.root', () => {
  it('refuses a root with a NUL byte as a config error naming /params/root', async () => {
    const { fsProvider } = await import('./fs-provider.js')
    const error = await fsProvider
      .connect({ credentials: {}, params: { root: '/tmp/a\u0000b' } })
      .catch((e: unknown) => e)
    expect((error as { kind?: string }).kind).toBe('config')
    expect((error as { issues?: { path: string }[] }).issues?.map((i) => i.path)).toContain(
      '/params/root',
    )
  })
})

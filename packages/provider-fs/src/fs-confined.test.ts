// Writes never leave the root: a dangling symlink at the target or in a parent folder is
// refused, and a symlink swapped in while writes run (the race) never gets a byte outside.
import { lstat, mkdir, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isLocalPathSchema, type WriteResult } from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectTo, failure, signal, tempRoot } from './__fixtures__/helpers.js'
import { FsParamsSchema } from './fs-schemas.js'

let root: string
let outside: string
const cleanups: Array<() => Promise<void>> = []
beforeAll(async () => {
  const a = await tempRoot('confined')
  const b = await tempRoot('confined-outside')
  root = a.root
  outside = b.root
  cleanups.push(a.cleanup, b.cleanup)
})
afterAll(async () => {
  for (const done of cleanups) await done()
})

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  )
}

/** Every file under `dir`, recursively (symlinks not followed). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await filesUnder(path)))
    else out.push(path)
  }
  return out
}

const doc = (id: string) => ({ kind: 'document' as const, id, content: { id } })
const blob = (key: string, text = 'x') => ({
  kind: 'blob' as const,
  key,
  body: Buffer.from(text),
})

describe('confined writes', () => {
  it('marks root as a LocalPath param', () => {
    expect(isLocalPathSchema(FsParamsSchema.properties.root)).toBe(true)
  })

  it('refuses a document file that is a dangling symlink leading outside the root', async () => {
    await mkdir(join(root, 'out'), { recursive: true })
    const target = join(outside, 'created-by-attack.jsonl')
    await symlink(target, join(root, 'out/w.jsonl'))
    const connection = await connectTo(root)
    const error = await failure(
      connection.write({ kind: 'document', file: 'out/w.jsonl' }, [doc('a')], {
        signal: signal(),
      }),
    )
    expect(['data', 'config']).toContain(error.kind)
    expect(error.message).toContain('out/w.jsonl')
    expect(await exists(target)).toBe(false)
    await connection.close()
  })

  it('refuses a dangling symlink even when it points inside the root (it would create a file by a link)', async () => {
    await symlink(join(root, 'not-yet.jsonl'), join(root, 'inner-link.jsonl'))
    const connection = await connectTo(root)
    const error = await failure(
      connection.write({ kind: 'document', file: 'inner-link.jsonl' }, [doc('a')], {
        signal: signal(),
      }),
    )
    expect(error.kind).toBe('data')
    expect(error.message).toContain('inner-link.jsonl')
    expect(await exists(join(root, 'not-yet.jsonl'))).toBe(false)
    await connection.close()
  })

  it('refuses a parent folder that is a dangling symlink, for blobs and documents', async () => {
    await symlink(join(outside, 'made-dir'), join(root, 'gone'))
    const connection = await connectTo(root)
    const result = (await connection.write({ kind: 'blob' }, [blob('gone/x.txt')], {
      signal: signal(),
    })) as WriteResult
    expect(result.failed).toHaveLength(1)
    expect(result.failed[0]!.error.kind).toBe('data')
    expect(result.failed[0]!.error.message).toContain('gone/x.txt')
    const error = await failure(
      connection.write({ kind: 'document', file: 'gone/w.jsonl' }, [doc('a')], {
        signal: signal(),
      }),
    )
    expect(error.message).toContain('gone')
    expect(await exists(join(outside, 'made-dir'))).toBe(false)
    await connection.close()
  })

  it('a blob key that is a dangling symlink is replaced by the file, never written through', async () => {
    const target = join(outside, 'through-link.txt')
    await symlink(target, join(root, 'blob-link.txt'))
    const connection = await connectTo(root)
    const result = (await connection.write({ kind: 'blob' }, [blob('blob-link.txt', 'body')], {
      signal: signal(),
    })) as WriteResult
    expect(result.failed).toEqual([])
    expect(await exists(target)).toBe(false)
    expect((await lstat(join(root, 'blob-link.txt'))).isFile()).toBe(true)
    await connection.close()
  })

  it('RACE: a folder swapped for a symlink to outside while writes run never gets a byte outside', async () => {
    const raceRoot = join(root, 'race')
    await mkdir(raceRoot)
    const real = join(raceRoot, 'sub')
    const parked = join(raceRoot, 'parked')
    const link = join(raceRoot, 'link-tmp')
    await mkdir(real)
    await mkdir(parked)
    await symlink(outside, link)
    const connection = await connectTo(raceRoot)
    let stop = false
    let swaps = 0
    // The attacker: sub is a real folder, then a symlink to outside, then a folder again.
    const attacker = (async () => {
      while (!stop) {
        try {
          await rename(real, join(raceRoot, 'sub-real'))
          await rename(link, real) // sub -> outside
          await new Promise((r) => setImmediate(r))
          await rename(real, link) // back
          await rename(join(raceRoot, 'sub-real'), real)
          swaps++
        } catch {
          // A writer's mkdir may have recreated sub meanwhile: tidy up and go on.
          await rm(join(raceRoot, 'sub-real'), { recursive: true, force: true }).catch(() => {})
          if (!(await exists(link))) {
            if ((await lstat(real).catch(() => undefined))?.isSymbolicLink())
              await rename(real, link)
            else await symlink(outside, link).catch(() => {})
          }
          if (!(await exists(real))) await mkdir(real).catch(() => {})
        }
      }
    })()
    const iterations = 300
    let blobFailures = 0
    let docFailures = 0
    for (let i = 0; i < iterations; i++) {
      const r = (await connection
        .write({ kind: 'blob' }, [blob(`sub/b${i}.txt`), blob(`sub/deep/c${i}.txt`)], {
          signal: signal(),
        })
        .catch(() => ({ written: 0, failed: [1, 2] }))) as WriteResult
      blobFailures += r.failed.length
      await connection
        .write({ kind: 'document', file: 'sub/w.jsonl' }, [doc(`d${i}`)], { signal: signal() })
        .catch(() => {
          docFailures++
        })
    }
    stop = true
    await attacker
    await connection.close()
    expect(swaps).toBeGreaterThan(10)
    expect(await filesUnder(outside)).toEqual([])
    // The race was real: some writes hit the symlink and were refused.
    expect(blobFailures + docFailures).toBeGreaterThan(0)
  }, 120_000)
})

describe('confined writes: existing files', () => {
  it('keeps appending to a real file and writing blobs in real folders', async () => {
    const connection = await connectTo(root)
    await writeFile(join(root, 'ok.jsonl'), '{"id":"0"}\n')
    await connection.write({ kind: 'document', file: 'ok.jsonl' }, [doc('1')], { signal: signal() })
    await connection.write({ kind: 'document', file: 'new/dir/ok.jsonl' }, [doc('1')], {
      signal: signal(),
    })
    const r = (await connection.write({ kind: 'blob' }, [blob('a/b/c.txt')], {
      signal: signal(),
    })) as WriteResult
    expect(r.failed).toEqual([])
    expect(await exists(join(root, 'new/dir/ok.jsonl'))).toBe(true)
    await connection.close()
  })
})

import { lstat, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { BlobData } from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bodyText, connectTo, failure, readAll, signal, tempRoot } from './__fixtures__/helpers.js'
import { createFsProvider } from './index.js'

let root: string
let outside: string
const cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  const a = await tempRoot('blob')
  const b = await tempRoot('outside')
  root = a.root
  outside = b.root
  cleanups.push(a.cleanup, b.cleanup)
})
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup()
})

async function put(base: string, key: string, text = key): Promise<void> {
  const path = join(base, key)
  await mkdir(join(path, '..'), { recursive: true })
  await writeFile(path, text)
}

const byteOrder = (keys: string[]) =>
  [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))

describe('blob reads', () => {
  // Names chosen where per-folder sorting goes wrong when a folder sorts as its bare name,
  // and where UTF-16 order differs from byte order (U+FF5E vs U+1F600).
  const keys = [
    'order/a/b',
    'order/a-b',
    'order/a.b',
    'order/a0',
    'order/ab/c',
    'order/a/z/deep.txt',
    'order/with space/file name.txt',
    'order/unicodé/naïve ✓.md',
    'order/\u{FF5E}.txt',
    'order/\u{1F600}.txt',
    'order/Z upper',
  ]

  beforeAll(async () => {
    for (const key of keys) await put(root, key)
  })

  it('yields every file once, in byte-wise order of its full key', async () => {
    const connection = await connectTo(root)
    const items = await readAll(connection, { kind: 'blob', prefix: 'order/' })
    const read = items.map((item) => (item.data as BlobData).key)
    expect(read).toEqual(byteOrder(keys))
    // JavaScript's own sort puts U+1F600 before U+FF5E; byte order does not.
    expect(read.indexOf('order/\u{FF5E}.txt')).toBeLessThan(read.indexOf('order/\u{1F600}.txt'))
    for (const item of items) {
      expect(item.context).toEqual({ key: (item.data as BlobData).key })
      expect(await bodyText(item)).toBe((item.data as BlobData).key)
    }
    await connection.close()
  })

  it('reads many bodies at once under one signal without a listener warning, small and large files exact', async () => {
    const small = Array.from({ length: 40 }, (_, i) => `many/s${String(i).padStart(2, '0')}.bin`)
    for (const key of small) await put(root, key, `${key} `.repeat(50))
    // Over the whole-read threshold (1 MiB): streamed in chunks.
    const large = Buffer.alloc(3 * 1024 * 1024 + 7, 'abcdefghij')
    await writeFile(join(root, 'many/z-large.bin'), large)
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    try {
      const connection = await connectTo(root)
      const items = await readAll(connection, { kind: 'blob', prefix: 'many/' })
      expect(items.length).toBe(41)
      const bodies = await Promise.all(
        items.map(async (item) => {
          const chunks: Uint8Array[] = []
          for await (const chunk of (item.data as BlobData).body as AsyncIterable<Uint8Array>)
            chunks.push(chunk)
          return Buffer.concat(chunks)
        }),
      )
      for (const [i, key] of small.entries())
        expect(bodies[i]!.toString()).toBe(`${key} `.repeat(50))
      expect(bodies[40]!.equals(large)).toBe(true)
      await connection.close()
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning')
  })

  it('carries size, lastModified and a content type by extension', async () => {
    const when = new Date('2020-01-02T03:04:05Z')
    await put(root, 'meta/page.html', '<p>hi</p>')
    await utimes(join(root, 'meta/page.html'), when, when)
    const connection = await connectTo(root)
    const [item] = await readAll(connection, { kind: 'blob', prefix: 'meta/page' })
    const blob = item!.data as BlobData
    expect(blob.size).toBe(9)
    expect(blob.contentType).toBe('text/html')
    expect(blob.lastModified?.getTime()).toBe(when.getTime())
  })

  it('resumes after every position with exactly the rest', async () => {
    const connection = await connectTo(root)
    const stream = { kind: 'blob', prefix: 'order/' }
    const all = (await readAll(connection, stream)).map((item) => item.context as { key: string })
    for (let k = 0; k < all.length; k++) {
      const rest = await readAll(connection, stream, JSON.parse(JSON.stringify(all[k])))
      expect(rest.map((item) => (item.data as BlobData).key)).toEqual(
        all.slice(k + 1).map((c) => c.key),
      )
    }
    // A context whose file is gone still resumes at the next key.
    const rest = await readAll(connection, stream, { key: 'order/a/m-removed' })
    expect(rest.map((item) => (item.data as BlobData).key)[0]).toBe('order/a/z/deep.txt')
  })

  it('filters by prefix (not only a folder) and by glob', async () => {
    const connection = await connectTo(root)
    const byPrefix = await readAll(connection, { kind: 'blob', prefix: 'order/a' })
    expect(byPrefix.map((i) => (i.data as BlobData).key)).toEqual(
      byteOrder(keys.filter((k) => k.startsWith('order/a'))),
    )
    const byGlob = await readAll(connection, { kind: 'blob', glob: 'order/**/*.txt' })
    expect(byGlob.map((i) => (i.data as BlobData).key)).toEqual(
      byteOrder(keys.filter((k) => k.endsWith('.txt'))),
    )
  })

  it('refuses a prefix that leaves the root as a config error', async () => {
    const connection = await connectTo(root)
    for (const prefix of ['../', '/etc', 'a/../../b']) {
      const error = await failure(readAll(connection, { kind: 'blob', prefix }))
      expect(error.kind).toBe('config')
      expect(error.issues?.[0]?.path).toBe('/stream/prefix')
    }
    const wrongContext = await failure(
      readAll(connection, { kind: 'blob' }, { line: 1, offset: 3 }),
    )
    expect(wrongContext.kind).toBe('config')
  })

  it('never follows a symlink out of the root, and follows one to a file inside it', async () => {
    await put(outside, 'secret.txt', 'outside')
    await mkdir(join(outside, 'dir'), { recursive: true })
    await put(outside, 'dir/inner.txt', 'outside')
    await mkdir(join(root, 'links'), { recursive: true })
    await put(root, 'links/real.txt', 'inside')
    await symlink(join(outside, 'secret.txt'), join(root, 'links/out-file.txt'))
    await symlink(join(outside, 'dir'), join(root, 'links/out-dir'))
    await symlink(join(root, 'links/real.txt'), join(root, 'links/in-file.txt'))
    await symlink(join(root, 'links/nowhere'), join(root, 'links/dangling.txt'))
    const connection = await connectTo(root)
    const items = await readAll(connection, { kind: 'blob', prefix: 'links/' })
    expect(items.map((i) => (i.data as BlobData).key)).toEqual([
      'links/in-file.txt',
      'links/real.txt',
    ])
    expect(await bodyText(items[0]!)).toBe('inside')
  })
})

describe('blob writes', () => {
  const blob = (key: string, text: string, extra: Partial<BlobData> = {}): BlobData => ({
    kind: 'blob',
    key,
    body: Buffer.from(text),
    ...extra,
  })

  it('writes atomically, overwrites by key, and leaves no temporary file', async () => {
    const connection = await connectTo(root)
    const stream = { kind: 'blob', prefix: 'w1/' }
    const first = await connection.write(
      stream,
      [blob('a/one.txt', 'v1'), blob('b c/ü.txt', 'v1')],
      { signal: signal() },
    )
    expect(first).toEqual({ written: 2, failed: [] })
    await connection.write(stream, [blob('a/one.txt', 'v2')], { signal: signal() })
    expect(await readFile(join(root, 'w1/a/one.txt'), 'utf8')).toBe('v2')
    expect(await readdir(join(root, 'w1/a'))).toEqual(['one.txt'])
  })

  it('keeps content type and metadata in a hidden sidecar that is never read as a blob', async () => {
    const connection = await connectTo(root)
    const when = new Date('2021-05-06T07:08:09Z')
    await connection.write(
      { kind: 'blob', prefix: 'w2/' },
      [
        blob('data.bin', 'x', {
          contentType: 'application/x-custom',
          metadata: { owner: 'ana' },
          lastModified: when,
        }),
      ],
      { signal: signal() },
    )
    expect((await readdir(join(root, 'w2'))).sort()).toEqual([
      '.data.bin.nvisy-meta.json',
      'data.bin',
    ])
    // A stray temporary file from a crashed write is hidden too.
    await writeFile(join(root, 'w2/.data.bin.nvisy-0123456789abcdef.tmp'), 'partial')
    const [item, ...others] = await readAll(connection, { kind: 'blob', prefix: 'w2/' })
    expect(others).toEqual([])
    const read = item!.data as BlobData
    expect(read.contentType).toBe('application/x-custom')
    expect(read.metadata).toEqual({ owner: 'ana' })
    expect(read.lastModified?.getTime()).toBe(when.getTime())
    // Rewritten without metadata: the sidecar goes, the type comes from the extension again.
    await connection.write({ kind: 'blob', prefix: 'w2/' }, [blob('data.bin', 'y')], {
      signal: signal(),
    })
    expect(
      await lstat(join(root, 'w2/.data.bin.nvisy-meta.json')).catch(() => undefined),
    ).toBeUndefined()
    const [again] = await readAll(connection, { kind: 'blob', prefix: 'w2/data' })
    expect((again!.data as BlobData).metadata).toBeUndefined()
    expect((again!.data as BlobData).contentType).toBe('application/octet-stream')
  })

  it('fails each key that would leave the root or is not a file name, alone, as data', async () => {
    await mkdir(join(root, 'w3'), { recursive: true })
    await symlink(outside, join(root, 'w3/escape'))
    const connection = await connectTo(root)
    const bad = [
      '../up.txt',
      '/abs.txt',
      'a//b.txt',
      'dir/',
      '',
      'a/./b',
      'escape/x.txt',
      'escape/new/x.txt',
      '.x.nvisy-meta.json',
    ]
    const batch = [blob('ok.txt', 'ok'), ...bad.map((key) => blob(key, 'bad'))]
    const result = await connection.write({ kind: 'blob', prefix: 'w3/' }, batch, {
      signal: signal(),
    })
    expect(result.written).toBe(1)
    expect(result.failed.map((f) => f.index)).toEqual(bad.map((_, i) => i + 1))
    for (const f of result.failed) expect(f.error.kind).toBe('data')
    expect((await readdir(outside)).sort()).toEqual(['dir', 'secret.txt'])
    // The prefix itself cannot leave the root either: a config error for the batch.
    const error = await failure(
      connection.write({ kind: 'blob', prefix: '../' }, [blob('x', 'x')], { signal: signal() }),
    )
    expect(error.kind).toBe('config')
  })

  it('removes temporary files a killed write left in a folder it writes to, only when stale', async () => {
    await mkdir(join(root, 'sweep'), { recursive: true })
    const stale = join(root, 'sweep', '.a.txt.nvisy-0123456789abcdef.tmp')
    const fresh = join(root, 'sweep', '.b.txt.nvisy-fedcba9876543210.tmp')
    const notOurs = join(root, 'sweep', '.c.txt.other-0123456789abcdef.tmp')
    for (const path of [stale, fresh, notOurs]) await writeFile(path, 'partial')
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
    await utimes(stale, twoHoursAgo, twoHoursAgo)
    await utimes(notOurs, twoHoursAgo, twoHoursAgo)
    const connection = await connectTo(root)
    const result = await connection.write({ kind: 'blob' }, [blob('sweep/new.txt', 'new')], {
      signal: signal(),
    })
    expect(result).toEqual({ written: 1, failed: [] })
    const names = (await readdir(join(root, 'sweep'))).sort()
    // The stale temporary file is gone; one still being written (fresh) and names that are
    // not this provider's stay.
    expect(names).toEqual(
      ['.b.txt.nvisy-fedcba9876543210.tmp', '.c.txt.other-0123456789abcdef.tmp', 'new.txt'].sort(),
    )
    await connection.close()
  })

  it('keeps the old file when a body fails midway or is cut short', async () => {
    const connection = await connectTo(root)
    await connection.write({ kind: 'blob' }, [blob('w4/f.txt', 'old')], { signal: signal() })
    async function* broken() {
      yield Buffer.from('new part')
      throw new Error('source stream failed')
    }
    await failure(
      connection.write({ kind: 'blob' }, [{ kind: 'blob', key: 'w4/f.txt', body: broken() }], {
        signal: signal(),
      }),
    )
    const short = await failure(
      connection.write({ kind: 'blob' }, [blob('w4/f.txt', 'new', { size: 10 })], {
        signal: signal(),
      }),
    )
    expect(short.kind).toBe('transient')
    expect(await readFile(join(root, 'w4/f.txt'), 'utf8')).toBe('old')
    expect(await readdir(join(root, 'w4'))).toEqual(['f.txt'])
  })

  it('refuses writes on a read-only connection', async () => {
    const connection = await connectTo(root, { readOnly: true })
    await connection.check()
    const error = await failure(
      connection.write({ kind: 'blob' }, [blob('ro.txt', 'x')], { signal: signal() }),
    )
    expect(error.kind).toBe('config')
  })
})

describe('check and discover', () => {
  it('fails with not_found for a missing root and config for a file', async () => {
    const missing = await connectTo(join(root, 'does-not-exist'))
    expect((await failure(missing.check())).kind).toBe('not_found')
    await writeFile(join(root, 'plain-file'), 'x')
    const file = await connectTo(join(root, 'plain-file'))
    expect((await failure(file.check())).kind).toBe('config')
  })

  it('resolves a relative root against baseDir', async () => {
    const provider = createFsProvider({ baseDir: dirname(root) })
    const connection = await provider.connect({ credentials: {}, params: { root: basename(root) } })
    await expect(connection.check()).resolves.toBeUndefined()
    const items = await readAll(connection, { kind: 'blob', prefix: 'order/a0' })
    expect(items.map((i) => (i.data as BlobData).key)).toEqual(['order/a0'])
  })

  it.skipIf(process.getuid?.() === 0)('fails with auth for a root it may not read', async () => {
    const locked = join(root, 'locked')
    await mkdir(locked, { mode: 0o000 })
    const connection = await connectTo(locked)
    expect((await failure(connection.check())).kind).toBe('auth')
  })

  it('lists the root, top-level folders and JSONL files', async () => {
    await writeFile(join(root, 'docs.jsonl'), '')
    const connection = await connectTo(root)
    const streams = await connection.discover()
    expect(streams[0]).toMatchObject({ name: '/', data: 'blob', stream: { kind: 'blob' } })
    expect(streams).toContainEqual(
      expect.objectContaining({
        data: 'document',
        stream: { kind: 'document', file: 'docs.jsonl' },
      }),
    )
    expect(streams).toContainEqual(
      expect.objectContaining({ stream: { kind: 'blob', prefix: 'order/' } }),
    )
    expect((await stat(root)).isDirectory()).toBe(true)
  })
})

import { describe, expect, it } from 'vitest'
import { createMemoryProvider, memoryStore, seedMemoryStore } from './memory-provider.js'
import { collect, readAll } from './read-all.js'

describe('collect', () => {
  it('returns every item in order, or the first `limit` without pulling the rest', async () => {
    let pulled = 0
    let stopped = false
    async function* numbers() {
      try {
        for (let n = 1; n <= 5; n++) {
          pulled = n
          yield n
        }
      } finally {
        stopped = true
      }
    }
    expect(await collect(numbers())).toEqual([1, 2, 3, 4, 5])
    stopped = false
    expect(await collect(numbers(), 2)).toEqual([1, 2])
    expect(pulled).toBe(2)
    expect(stopped).toBe(true)
    expect(await collect(numbers(), 0)).toEqual([])
  })
})

describe('readAll', () => {
  it('reads a stream to its end, resumes after a context, and stops at a limit', async () => {
    const store = `read-all-${process.pid}`
    seedMemoryStore(store, 1, 4)
    const connection = await createMemoryProvider().connect({
      credentials: { password: 'secret' },
      params: { store },
    })
    try {
      const ids = (items: { context: { id: string } }[]) => items.map((i) => i.context.id)
      const all = await readAll<{ id: string }>(connection, {})
      expect(ids(all)).toEqual(['item-00000001', 'item-00000002', 'item-00000003', 'item-00000004'])
      expect(all[0]?.data).toEqual({ kind: 'document', id: 'item-00000001', content: { n: 1 } })
      expect(ids(await readAll(connection, {}, { after: all[1]!.context }))).toEqual([
        'item-00000003',
        'item-00000004',
      ])
      expect(ids(await readAll(connection, {}, { limit: 1 }))).toEqual(['item-00000001'])
      const aborted = new AbortController()
      aborted.abort()
      await expect(readAll(connection, {}, { signal: aborted.signal })).rejects.toMatchObject({
        name: 'AbortError',
      })
    } finally {
      await connection.close()
      memoryStore(store).source.length = 0
    }
  })
})

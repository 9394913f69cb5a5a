import { describe, expect, it } from 'vitest'
import { BoundedQueue } from './queue.js'

describe('BoundedQueue fast paths', () => {
  it('offer takes items while there is room, then says no; takeNow gives them in order and frees room', async () => {
    const queue = new BoundedQueue<number>(2)
    expect(queue.offer(1)).toBe(true)
    expect(queue.offer(2)).toBe(true)
    expect(queue.offer(3)).toBe(false)
    let pushed = false
    const push = queue.push(3).then(() => {
      pushed = true
    })
    expect(queue.takeNow()).toBe(1)
    await push
    expect(pushed).toBe(true)
    expect(queue.takeNow()).toBe(2)
    expect(queue.takeNow()).toBe(3)
    expect(queue.takeNow()).toBeUndefined()
    expect(queue.drained).toBe(false)
    queue.close()
    expect(queue.drained).toBe(true)
  })

  it('offer hands an item to a waiting consumer first', async () => {
    const queue = new BoundedQueue<string>(1)
    const next = queue.next()
    expect(queue.offer('a')).toBe(true)
    expect(await next).toEqual({ done: false, value: 'a' })
    expect(queue.size).toBe(0)
  })

  it('a failed queue throws from offer and takeNow', () => {
    const queue = new BoundedQueue<number>(1)
    queue.fail(new Error('stopped'))
    expect(() => queue.offer(1)).toThrow('stopped')
    expect(() => queue.takeNow()).toThrow('stopped')
  })

  it('with a bytes bound, is full once the buffered items reach it; a larger item goes alone into an empty queue', async () => {
    const queue = new BoundedQueue<number>(10, { max: 100, sizeOf: (n) => n })
    expect(queue.offer(60)).toBe(true)
    expect(queue.offer(30)).toBe(true)
    expect(queue.bytes).toBe(90)
    expect(queue.offer(20)).toBe(true) // under the bound before it: taken
    expect(queue.offer(1)).toBe(false) // 110 >= 100: full
    expect(queue.takeNow()).toBe(60)
    expect(queue.bytes).toBe(50)
    expect(queue.offer(1)).toBe(true)
    while (queue.takeNow() !== undefined) {}
    expect(queue.bytes).toBe(0)
    expect(queue.offer(500)).toBe(true)
    let pushed = false
    const push = queue.push(1).then(() => {
      pushed = true
    })
    await Promise.resolve()
    expect(pushed).toBe(false)
    expect(await queue.next()).toEqual({ done: false, value: 500 })
    await push
    expect(pushed).toBe(true)
  })
})

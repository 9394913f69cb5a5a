import { describe, expect, it } from 'vitest'
import { AckTracker, PartCounter } from './ack-tracker.js'

describe('AckTracker', () => {
  it('commits only the contiguous prefix every sink acknowledged', () => {
    const commits: number[] = []
    const tracker = new AckTracker((n) => commits.push(n))
    for (let i = 0; i < 5; i++) tracker.register({ i }, 2)
    tracker.ack(1)
    tracker.ack(1)
    tracker.ack(2)
    expect(tracker.committed).toBeUndefined()
    tracker.ack(0)
    expect(tracker.committed).toBeUndefined()
    tracker.ack(0)
    expect(tracker.committed).toEqual({ context: { i: 1 }, seq: 1 })
    tracker.ack(2)
    tracker.ack(4)
    tracker.ack(4)
    expect(tracker.committed?.seq).toBe(2)
    tracker.ack(3)
    tracker.ack(3)
    expect(tracker.committed).toEqual({ context: { i: 4 }, seq: 4 })
    expect(commits).toEqual([2, 1, 2])
    expect(tracker.inFlight).toBe(0)
    expect(() => tracker.ack(3)).toThrow(/more often/)
  })

  it('waits for every part of a split item', () => {
    const done: number[] = []
    const parts = new PartCounter((seq) => done.push(seq))
    parts.add(0)
    parts.add(0)
    parts.ack(0)
    parts.seal(0)
    expect(done).toEqual([])
    parts.ack(0)
    expect(done).toEqual([0])
    parts.seal(1)
    expect(done).toEqual([0, 1])
  })
})

describe('AckTracker over many items', () => {
  it('commits in order across the compaction of its arrays, with sinks finishing out of order', () => {
    const tracker = new AckTracker()
    const total = 10_000
    for (let i = 0; i < total; i++) tracker.register(`c${i}`, 2)
    // Sink A acknowledges in reverse chunks of 100, sink B in order.
    for (let chunk = 0; chunk < total; chunk += 100) {
      for (let i = chunk + 99; i >= chunk; i--) tracker.ack(i)
      for (let i = chunk; i < chunk + 100; i++) tracker.ack(i)
      expect(tracker.committed).toEqual({ context: `c${chunk + 99}`, seq: chunk + 99 })
      expect(tracker.inFlight).toBe(total - chunk - 100)
    }
    expect(() => tracker.ack(0)).toThrow(/more often/)
    expect(() => tracker.ack(total)).toThrow(/more often/)
    // Items registered after a compaction keep their own contexts.
    const seq = tracker.register('late', 1)
    expect(seq).toBe(total)
    tracker.ack(seq)
    expect(tracker.committed).toEqual({ context: 'late', seq: total })
  })
})

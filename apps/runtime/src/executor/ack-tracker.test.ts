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

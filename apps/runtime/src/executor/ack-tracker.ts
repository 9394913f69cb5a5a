/**
 * Tracks which items of one source every sink has acknowledged. Items are numbered in read
 * order; an item is done when each of its `sinks` has acknowledged it. The committed context
 * is that of the last item of the contiguous done prefix: sinks that finish out of order
 * (concurrency > 1, several sinks at different speeds) never move it past an item that is
 * still in flight, so resuming from it replays at most the unacknowledged window.
 */
export class AckTracker {
  // Items in flight, by sequence number: `#remaining[seq - #base]` acknowledgements are still
  // due for item `seq`. Two arrays, not a Map of objects: this runs once per item per sink
  // and should not allocate per item.
  #remaining: number[] = []
  #contexts: unknown[] = []
  #base = 0
  #nextSeq = 0
  #nextToCommit = 0
  #committed: { context: unknown; seq: number } | undefined
  #onCommit: (committedItems: number) => void

  constructor(onCommit: (committedItems: number) => void = () => {}) {
    this.#onCommit = onCommit
  }

  /** Register the next item read: returns its sequence number. */
  register(context: unknown, sinks: number): number {
    const seq = this.#nextSeq++
    this.#remaining.push(sinks)
    this.#contexts.push(context)
    if (sinks === 0) this.#advance()
    return seq
  }

  /** One sink is done with item `seq` (written, or failed and reported). */
  ack(seq: number): void {
    const index = seq - this.#base
    if (seq < this.#nextToCommit || seq >= this.#nextSeq || !(this.#remaining[index]! > 0))
      throw new Error(`item ${seq} acknowledged more often than it has sinks`)
    const remaining = --this.#remaining[index]!
    if (seq === this.#nextToCommit && remaining === 0) this.#advance()
  }

  #advance(): void {
    const remaining = this.#remaining
    let index = this.#nextToCommit - this.#base
    const from = index
    while (index < remaining.length && remaining[index] === 0) index++
    const advanced = index - from
    if (advanced === 0) return
    this.#committed = { context: this.#contexts[index - 1], seq: this.#base + index - 1 }
    this.#nextToCommit += advanced
    // Drop the committed prefix once it is most of the arrays (amortized O(1) per item).
    if (index >= 1024 && index * 2 >= remaining.length) {
      remaining.splice(0, index)
      this.#contexts.splice(0, index)
      this.#base += index
    }
    this.#onCommit(advanced)
  }

  /** The context of the last item of the acknowledged prefix, if any item is acknowledged. */
  get committed(): { context: unknown; seq: number } | undefined {
    return this.#committed
  }

  /** Items read and not yet acknowledged by every sink. */
  get inFlight(): number {
    return this.#nextSeq - this.#nextToCommit
  }

  get read(): number {
    return this.#nextSeq
  }
}

/**
 * One sink's view of a source item that a conversion may turn into several items (a JSONL
 * blob into documents): the source item is acknowledged once all its parts are.
 */
export class PartCounter {
  readonly #parts = new Map<number, { expected: number; acked: number; sealed: boolean }>()
  readonly #done: (seq: number) => void

  constructor(done: (seq: number) => void) {
    this.#done = done
  }

  add(seq: number): void {
    const entry = this.#parts.get(seq)
    if (entry) entry.expected++
    else this.#parts.set(seq, { expected: 1, acked: 0, sealed: false })
  }

  /** No more parts for `seq` will be added. */
  seal(seq: number): void {
    const entry = this.#parts.get(seq)
    if (!entry) {
      this.#done(seq)
      return
    }
    entry.sealed = true
    this.#check(seq, entry)
  }

  ack(seq: number): void {
    const entry = this.#parts.get(seq)
    if (!entry) throw new Error(`part of item ${seq} acknowledged but never added`)
    entry.acked++
    this.#check(seq, entry)
  }

  #check(seq: number, entry: { expected: number; acked: number; sealed: boolean }): void {
    if (entry.sealed && entry.acked === entry.expected) {
      this.#parts.delete(seq)
      this.#done(seq)
    }
  }
}

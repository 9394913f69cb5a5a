import { raceAbort } from '@nvisy/provider-core'

/** At most `count` holders at once; `acquire` waits in order, and rejects when the signal aborts. */
export class Semaphore {
  #free: number
  readonly #waiting: (() => void)[] = []
  constructor(count: number) {
    this.#free = count
  }
  async acquire(signal: AbortSignal): Promise<void> {
    if (this.#free > 0) {
      this.#free--
      return
    }
    await raceAbort(new Promise<void>((resolve) => this.#waiting.push(resolve)), signal)
  }
  release(): void {
    const next = this.#waiting.shift()
    if (next) next()
    else this.#free++
  }
}

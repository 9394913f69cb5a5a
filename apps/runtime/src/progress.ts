import type { NodeStats } from './executor/types.js'

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

/** A one-line live view of a run for a terminal: items, bytes and rate per node. */
export class ProgressLine {
  readonly #write: (text: string) => void
  #last: { at: number; nodes: Record<string, NodeStats> } | undefined
  #shown = false

  constructor(write: (text: string) => void) {
    this.#write = write
  }

  update(nodes: Record<string, NodeStats>, now = Date.now()): void {
    const seconds = this.#last ? (now - this.#last.at) / 1000 : 0
    const parts = Object.entries(nodes).map(([id, stats]) => {
      const before = this.#last?.nodes[id]
      const rate = before && seconds > 0 ? Math.round((stats.items - before.items) / seconds) : 0
      const failed = stats.failed > 0 ? ` ${stats.failed} failed` : ''
      return `${id} ${stats.items.toLocaleString('en-US')} items ${formatBytes(stats.bytes)} ${rate.toLocaleString('en-US')}/s${failed}`
    })
    this.#last = { at: now, nodes }
    this.#write(`\r\x1b[2K${parts.join(' | ')}`)
    this.#shown = true
  }

  end(): void {
    if (this.#shown) this.#write('\n')
    this.#shown = false
  }
}

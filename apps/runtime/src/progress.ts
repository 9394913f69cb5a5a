import type { NodeStats } from './executor/types.js'

export function formatBytes(bytes: number): string {
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

const count = (n: number) => Math.round(n).toLocaleString('en-US')

interface Sample {
  at: number
  nodes: Record<string, NodeStats>
}

/** How far back rates look: long enough to smooth batch bursts, short enough to follow changes. */
const WINDOW_MS = 5000
/** Two samples closer than this give no rate of their own (events can arrive in bursts). */
const MIN_SPAN_MS = 250

/**
 * A live view of a run for a terminal: one line rewritten in place with items, bytes and
 * the rates over a sliding window per node, then a final table when the run ends.
 */
export class ProgressLine {
  readonly #write: (text: string) => void
  readonly #samples: Sample[] = []
  #first: Sample | undefined
  #rates: Record<string, { items: number; bytes: number }> = {}
  #shown = false

  constructor(write: (text: string) => void) {
    this.#write = write
  }

  update(nodes: Record<string, NodeStats>, now = Date.now()): void {
    const sample = { at: now, nodes }
    this.#first ??= sample
    this.#samples.push(sample)
    // Keep one sample at or before the window's start, so the window is always covered.
    while (this.#samples.length > 2 && this.#samples[1]!.at <= now - WINDOW_MS)
      this.#samples.shift()
    const oldest = this.#samples[0]!
    const span = now - oldest.at
    if (span >= MIN_SPAN_MS) {
      for (const [id, stats] of Object.entries(nodes)) {
        const before = oldest.nodes[id] ?? { items: 0, bytes: 0, failed: 0 }
        this.#rates[id] = {
          items: Math.max(0, ((stats.items - before.items) * 1000) / span),
          bytes: Math.max(0, ((stats.bytes - before.bytes) * 1000) / span),
        }
      }
    }
    const parts = Object.entries(nodes).map(([id, stats]) => {
      const rate = this.#rates[id]
      const speed = rate ? ` ${count(rate.items)}/s ${formatBytes(Math.round(rate.bytes))}/s` : ''
      const failed = stats.failed > 0 ? ` ${count(stats.failed)} failed` : ''
      return `${id} ${count(stats.items)} items ${formatBytes(stats.bytes)}${speed}${failed}`
    })
    this.#write(`\r\x1b[2K${parts.join(' | ')}`)
    this.#shown = true
  }

  /** Finish the live line and print a table of every node's totals and average rates. */
  end(now = Date.now()): void {
    if (this.#shown) this.#write('\n')
    this.#shown = false
    const last = this.#samples.at(-1)
    if (!last || !this.#first) return
    const seconds = Math.max(now, last.at) - this.#first.at
    const rows = [['node', 'items', 'bytes', 'failed', 'items/s', 'bytes/s']]
    for (const [id, stats] of Object.entries(last.nodes)) {
      const first = this.#first.nodes[id] ?? { items: 0, bytes: 0, failed: 0 }
      const perSecond = (n: number) => (seconds > 0 ? (n * 1000) / seconds : 0)
      rows.push([
        id,
        count(stats.items),
        formatBytes(stats.bytes),
        count(stats.failed),
        count(perSecond(stats.items - first.items)),
        `${formatBytes(Math.round(perSecond(stats.bytes - first.bytes)))}`,
      ])
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
    for (const row of rows) {
      this.#write(
        `${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')}\n`,
      )
    }
  }
}

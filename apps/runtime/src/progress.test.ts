import { describe, expect, it } from 'vitest'
import { ProgressLine } from './progress.js'

const stats = (items: number, bytes = 0, failed = 0) => ({ items, bytes, failed })

describe('ProgressLine', () => {
  it('rewrites one line with items, bytes and rates per node', () => {
    const out: string[] = []
    const line = new ProgressLine((t) => out.push(t))
    line.update({ src: stats(0) }, 1000)
    line.update({ src: stats(2500, 3 * 1024 * 1024, 2) }, 2000)
    expect(out[1]).toBe('\r\x1b[2Ksrc 2,500 items 3.0 MiB 2,500/s 3.0 MiB/s 2 failed')
  })

  it('keeps a rate when events arrive in a burst (the same millisecond), instead of 0/s', () => {
    const out: string[] = []
    const line = new ProgressLine((t) => out.push(t))
    line.update({ src: stats(0) }, 0)
    line.update({ src: stats(1000) }, 1000)
    line.update({ src: stats(1000) }, 1000)
    line.update({ src: stats(1001) }, 1001)
    expect(out.at(-1)).toContain('1,000/s')
    expect(out.join('')).not.toContain(' 0/s')
  })

  it('measures over a sliding window, so a rate follows a slowdown', () => {
    const out: string[] = []
    const line = new ProgressLine((t) => out.push(t))
    let items = 0
    for (let t = 0; t <= 10_000; t += 1000) {
      line.update({ src: stats(items) }, t)
      items += t < 5000 ? 1000 : 100
    }
    // The last five seconds ran at 100 items/s; an average since the start would say ~550.
    expect(out.at(-1)).toContain(' 100/s')
  })

  it('ends with a table of totals and average rates', () => {
    const out: string[] = []
    const line = new ProgressLine((t) => out.push(t))
    line.update({ src: stats(0), dst: stats(0) }, 0)
    line.update({ src: stats(4000, 4096), dst: stats(3990, 4000, 10) }, 2000)
    line.end(2000)
    const table = out.slice(out.indexOf('\n') + 1).join('')
    expect(table).toMatch(/node\s+items\s+bytes\s+failed\s+items\/s\s+bytes\/s/)
    expect(table).toMatch(/src\s+4,000\s+4\.0 KiB\s+0\s+2,000\s+2\.0 KiB/)
    expect(table).toMatch(/dst\s+3,990\s+3\.9 KiB\s+10\s+1,995/)
  })

  it('prints nothing at the end when nothing was shown', () => {
    const out: string[] = []
    new ProgressLine((t) => out.push(t)).end()
    expect(out).toEqual([])
  })
})

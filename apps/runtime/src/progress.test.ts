import { describe, expect, it } from 'vitest'
import { ProgressLine } from './progress.js'

describe('ProgressLine', () => {
  it('rewrites one line with items, bytes and rate per node', () => {
    const out: string[] = []
    const line = new ProgressLine((t) => out.push(t))
    line.update({ src: { items: 0, bytes: 0, failed: 0 } }, 1000)
    line.update({ src: { items: 2500, bytes: 3 * 1024 * 1024, failed: 2 } }, 2000)
    line.end()
    expect(out[1]).toBe('\r\x1b[2Ksrc 2,500 items 3.0 MiB 2,500/s 2 failed')
    expect(out.at(-1)).toBe('\n')
  })
})

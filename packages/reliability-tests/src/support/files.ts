import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { finished } from 'node:stream/promises'

/** Write `count` JSON lines made by `line(i)`, with backpressure. */
export async function writeJsonl(path: string, count: number, line: (i: number) => object) {
  const out = createWriteStream(path)
  for (let i = 0; i < count; i++) {
    if (!out.write(`${JSON.stringify(line(i))}\n`)) await once(out, 'drain')
  }
  out.end()
  await finished(out)
}

// Shared by the benchmark scripts: time a body of work and sample this process's peak RSS.
import { spawn } from 'node:child_process'

/**
 * A meter for one benchmark process. `measure(name, body)` runs `body`, sampling RSS every
 * 20 ms (call `sampleRss()` from tight loops too, as timers may not fire there), and returns
 * `{ [unit]: items per second, seconds, peakRssMiB }`, also printed to stderr.
 */
export function createMeter({ items, unit }) {
  let peakRss = 0
  const sampleRss = () => {
    const rss = process.memoryUsage().rss
    if (rss > peakRss) peakRss = rss
  }
  async function measure(name, body) {
    global.gc?.()
    peakRss = process.memoryUsage().rss
    const sampler = setInterval(sampleRss, 20)
    const started = process.hrtime.bigint()
    await body()
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    clearInterval(sampler)
    sampleRss()
    const result = {
      [unit]: Math.round(items / seconds),
      seconds: Number(seconds.toFixed(3)),
      peakRssMiB: Math.round(peakRss / 1048576),
    }
    process.stderr.write(`${name}: ${JSON.stringify(result)}\n`)
    return result
  }
  return { sampleRss, measure }
}

/**
 * Run `script` in a child Node process (one side of a comparison, so its peak RSS and CPU
 * time are its own) and resolve with the JSON object it prints on stdout; stderr passes
 * through. Rejects when the child exits with a non-zero code.
 */
export function runJsonChild(script, args, { name = 'child', nodeArgs = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${name} exited with ${code}`))
      try {
        resolve(JSON.parse(out))
      } catch (error) {
        reject(new Error(`${name} printed no JSON report: ${error.message}`))
      }
    })
  })
}

// Shared by the benchmark scripts: time a body of work and sample this process's peak RSS.

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

// Shared by the benchmark scripts: time a body of work and sample this process's peak RSS.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

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

/** True when `name` is a command on the PATH. */
export function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0
}

/**
 * Install the Debian packages a benchmark needs (`{ package, present() }` each) with apt-get
 * when missing, as on a fresh CI machine; without root, fail with the command to run.
 */
export function ensurePackages(wanted, log = (message) => process.stderr.write(`${message}\n`)) {
  const missing = wanted.filter((w) => !w.present())
  if (missing.length === 0) return
  const names = missing.map((w) => w.package)
  if (process.getuid?.() !== 0)
    throw new Error(
      `missing ${names.join(', ')}: run as root or apt-get install -y ${names.join(' ')}`,
    )
  log(`installing ${names.join(' ')} (apt-get)`)
  const stdio = ['ignore', process.stderr, process.stderr]
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update', '-qq'], { stdio, env })
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], {
    stdio,
    env,
  })
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length / 2
  return Number.isInteger(mid) ? (sorted[mid - 1] + sorted[mid]) / 2 : sorted[Math.floor(mid)]
}

/**
 * Run a command under `/usr/bin/time -v` in `cwd`: wall seconds measured here, peak RSS and
 * CPU time from time(1), and the last MiB of its stdout and stderr (also written to
 * `<cwd>/<name>.out`). Rejects with the output's tail when it exits non-zero.
 */
export function timedCommand(name, command, commandArgs, { env, cwd }) {
  const timeFile = join(cwd, `${name}.time`)
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn('/usr/bin/time', ['-v', '-o', timeFile, command, ...commandArgs], {
      env,
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    const keep = (chunk) => {
      out = (out + chunk).slice(-1024 * 1024)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.on('error', reject)
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      writeFileSync(join(cwd, `${name}.out`), out)
      if (code !== 0) {
        reject(new Error(`${name} exited ${code}; last output:\n${out.slice(-3000)}`))
        return
      }
      const time = readFileSync(timeFile, 'utf8')
      const field = (label) => Number(new RegExp(`${label}: ([0-9.]+)`).exec(time)?.[1])
      resolve({
        seconds,
        peakRssKb: field('Maximum resident set size \\(kbytes\\)'),
        cpuSeconds: field('User time \\(seconds\\)') + field('System time \\(seconds\\)'),
        output: out,
      })
    })
  })
}

/**
 * Two synchronous loops compared in one process: `count` calls of each side after `warmup`
 * calls (so the JIT has tiered both up), alternating which side goes first over `rounds`.
 * Each round is printed to stderr as `{ [unit]/s, seconds, cpuMicrosPer<Unit> }`; returns
 * the best round of each side (by rate), `ratio` (ours / bare by rate) and `cpuRatio` (bare /
 * ours by lowest CPU time per call, the steadier measure on a shared machine).
 */
export function compareLoops({ ours, bare, count, rounds, warmup, unit }) {
  const rate = `${unit}sPerSec`
  const cpu = `cpuMicrosPer${unit[0].toUpperCase()}${unit.slice(1)}`
  const measure = (body) => {
    for (let i = 0; i < warmup; i++) body()
    const started = process.hrtime.bigint()
    const cpuStart = process.cpuUsage()
    for (let i = 0; i < count; i++) body()
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const used = process.cpuUsage(cpuStart)
    return {
      [rate]: Math.round(count / seconds),
      seconds: Number(seconds.toFixed(3)),
      [cpu]: Number(((used.user + used.system) / count).toFixed(2)),
    }
  }
  const runs = { ours: [], bare: [] }
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? ['bare', 'ours'] : ['ours', 'bare']) {
      const result = measure(side === 'ours' ? ours : bare)
      runs[side].push(result)
      process.stderr.write(`round ${r + 1} ${side}: ${JSON.stringify(result)}\n`)
    }
  }
  const best = (list) => list.reduce((a, b) => (b[rate] > a[rate] ? b : a))
  const lowestCpu = (list) => Math.min(...list.map((r) => r[cpu]))
  return {
    ours: best(runs.ours),
    bare: best(runs.bare),
    ratio: Number((best(runs.ours)[rate] / best(runs.bare)[rate]).toFixed(2)),
    cpuRatio: Number((lowestCpu(runs.bare) / lowestCpu(runs.ours)).toFixed(2)),
  }
}

/**
 * psql against a `postgres://` URL: `env` (PGHOST...), `psql(sql)` (one statement, unaligned
 * output, trimmed) and `sliceDigest(table, columns)`: md5 of the ordered md5s of 100,000-row
 * slices by `id` (one string of 10M rows exceeds PostgreSQL's 1 GB limit), plus the count.
 */
export function psqlClient(urlText) {
  const url = new URL(urlText)
  const env = {
    ...process.env,
    PGHOST: url.hostname,
    PGPORT: url.port || '5432',
    PGUSER: decodeURIComponent(url.username || 'postgres'),
    PGDATABASE: url.pathname.slice(1) || 'test',
  }
  const psql = (sql) =>
    execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], {
      env,
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    }).trim()
  const sliceDigest = (table, columns) =>
    psql(
      `SELECT md5(string_agg(h, '' ORDER BY g)) || ' ' || sum(c) FROM (SELECT id / 100000 AS g,
        md5(string_agg(t::text, E'\\n' ORDER BY id)) AS h, count(*) AS c
        FROM (SELECT ${columns} FROM ${table}) t GROUP BY 1) s`,
    )
  return { env, psql, sliceDigest }
}

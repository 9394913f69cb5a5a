// The built `nvisy` CLI (apps/runtime/dist/cli.js) run as a user runs it: its own process, a
// working directory, only the environment given (plus PATH), stdout and stderr captured.
import { spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const runtimeDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const repoRoot = join(runtimeDir, '..', '..')
export const CLI = join(runtimeDir, 'dist', 'cli.js')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export function runCli(
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      // Nothing from the test's own environment (no NVISY_* variable leaks in) but PATH.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/**
 * A folder holding an fs -> fs pipeline (`pipeline.json`, `nvisy.config.json`) that copies
 * `in/files/a.txt` (with `content`) to `out/copied/files/a.txt`: the smallest real run.
 */
export async function fsCopyFolder(work: string, content: string): Promise<void> {
  await mkdir(join(work, 'in/files'), { recursive: true })
  await mkdir(join(work, 'out'))
  await writeFile(join(work, 'in/files/a.txt'), content)
  const pipeline = {
    id: 'fs-copy',
    nodes: [
      {
        id: 'files',
        role: 'source',
        provider: 'fs',
        connection: { params: { root: join(work, 'in'), readOnly: true } },
        stream: { kind: 'blob', prefix: 'files/' },
      },
      {
        id: 'copy',
        role: 'sink',
        provider: 'fs',
        connection: { params: { root: join(work, 'out') } },
        stream: { kind: 'blob', prefix: 'copied/' },
      },
    ],
    edges: [{ from: 'files', to: 'copy' }],
  }
  await writeFile(join(work, 'pipeline.json'), JSON.stringify(pipeline))
  await writeFile(
    join(work, 'nvisy.config.json'),
    JSON.stringify({ providers: ['@nvisy/provider-fs'] }),
  )
}

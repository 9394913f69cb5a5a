// The built `nvisy` CLI (apps/runtime/dist/cli.js) run as a user runs it: its own process, a
// working directory, only the environment given (plus PATH), stdout and stderr captured.
import { spawn } from 'node:child_process'
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

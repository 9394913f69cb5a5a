import { toProviderError } from '@nvisy/provider-core'
import { checkCommand } from './commands/check.js'
import { connectionsCommand } from './commands/connections.js'
import { discoverCommand } from './commands/discover.js'
import { helpFor, USAGE } from './commands/help.js'
import { keysCommand } from './commands/keys.js'
import { providersCommand } from './commands/providers.js'
import { runCommand } from './commands/run.js'
import { serveCommand } from './commands/serve.js'
import { type CliIo, EXIT, FileSyntaxError, UsageError } from './commands/shared.js'
import { validateCommand } from './commands/validate.js'
import { VERSION } from './version.js'

// The `nvisy` CLI: from argv to the command. Each command lives in commands/<command>.ts, what
// several share in commands/shared.ts, the help texts with their command (commands/help.ts
// gathers them).

export { COMMAND_HELP } from './commands/help.js'
export { runExitCode } from './commands/run.js'
export { type CliIo, EXIT } from './commands/shared.js'

/** The `nvisy` command: returns the exit code instead of exiting, so tests run it in-process. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  // Help first, before any flag is parsed or anything is read, loaded or connected.
  const help = command === undefined ? undefined : helpFor(command, rest)
  if (help !== undefined) {
    io.stdout.write(help)
    return EXIT.completed
  }
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest, io)
      case 'validate':
        return await validateCommand(rest, io)
      case 'providers':
        return await providersCommand(rest, io)
      case 'check':
        return await checkCommand(rest, io)
      case 'discover':
        return await discoverCommand(rest, io)
      case 'serve':
        return await serveCommand(rest, io)
      case 'keys':
        return await keysCommand(rest, io)
      case 'connections':
        return await connectionsCommand(rest, io)
      case '--version':
      case '-v':
        io.stdout.write(`${VERSION}\n`)
        return EXIT.completed
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE)
        return command === undefined ? EXIT.usage : EXIT.completed
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    }
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      const hint = error instanceof FileSyntaxError ? '' : 'Run nvisy --help for usage.\n'
      io.stderr.write(`nvisy: ${(error as Error).message}\n${hint}`)
      return EXIT.usage
    }
    const providerError = toProviderError(error)
    io.stderr.write(`nvisy: ${providerError.message}\n`)
    return providerError.kind === 'config' ? EXIT.usage : EXIT.failed
  }
}

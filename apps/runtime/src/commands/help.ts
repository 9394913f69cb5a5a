import { VERSION } from '../version.js'
import { CHECK_HELP } from './check.js'
import {
  CONNECTIONS_ADD_HELP,
  CONNECTIONS_HELP,
  CONNECTIONS_LIST_HELP,
  CONNECTIONS_REMOVE_HELP,
} from './connections.js'
import { DISCOVER_HELP } from './discover.js'
import { KEYS_HELP } from './keys.js'
import { PROVIDERS_HELP } from './providers.js'
import { RUN_HELP } from './run.js'
import { SERVE_HELP } from './serve.js'
import { VALIDATE_HELP } from './validate.js'

export const USAGE = `nvisy ${VERSION}: run Nvisy pipelines

Usage:
  nvisy run <pipeline.json> [--config nvisy.config.json] [--checkpoints .nvisy/checkpoints.json] [--no-resume] [--partitions N] [--run-id id] [--store file]
  nvisy validate <pipeline.json> [--check] [--config ...] [--store file]
  nvisy providers [--config ...]
  nvisy check <provider> (--connection conn.json | --connection-id uuid | --params '{json}'|file) [--credentials-env PREFIX] [--config ...] [--store file]
  nvisy discover <provider> (--connection conn.json | --connection-id uuid | --params ...) [--credentials-env PREFIX] [--format table|json | --json] [--config ...]
  nvisy connections add --provider <id|package> [--params params.json|'{json}'] (--credentials creds.json | --credentials-env PREFIX) [--id uuid] [--store file]
  nvisy connections list [--store file]
  nvisy connections remove <id> [--store file]
  nvisy keys [--out file] [--force] [--print-seed]
  nvisy serve [--nats nats://127.0.0.1:4222] [--server-key X...] [--seed-file file] [--dev-plain-credentials] [--config ...]
              [--nats-creds file] [--nats-tls-ca file] [--nats-tls-cert file --nats-tls-key file]
              [--subject-prefix nvisy.v1] [--events-stream S] [--checkpoint-bucket B] [--queue-group G]
              [--drain-grace seconds] [--drain-timeout seconds] [--fs-root dir]...

Every command takes --help (-h): it prints that command's help and does nothing else.
run, check, discover and connections add take --allow-insecure-key-file (see Master key).

Providers are the packages named in nvisy.config.json ({"providers": [...]}, looked up next to
the pipeline file, then in the working directory), --provider name[,name] and NVISY_PROVIDERS.
Connection values may be {"$env": "NAME"} references, resolved when the run starts.
A node's connection may be {"connectionId": "<uuid>"}: a connection from the local store
(--store, NVISY_CONNECTIONS_FILE, default ~/.nvisy/connections.json), its credentials encrypted
with the master key from NVISY_MASTER_KEY or NVISY_MASTER_KEY_FILE and decrypted only for the run.
nvisy keys creates the runtime's key pair: the seed goes to ~/.nvisy/runtime.seed (mode 0600; --out
another file), the public key is printed for the Nvisy server, which seals credentials to it.
serve reads NVISY_NATS_URL, NVISY_SERVER_PUBLIC_KEY and the runtime seed (NVISY_RUNTIME_SEED, else
the file --seed-file or NVISY_RUNTIME_SEED_FILE names, else ~/.nvisy/runtime.seed) from the environment,
NATS authentication from NVISY_NATS_TOKEN, NVISY_NATS_USER + NVISY_NATS_PASSWORD or
NVISY_NATS_CREDS_FILE (one of them), TLS files from NVISY_NATS_TLS_{CA,CERT,KEY}_FILE, and
NVISY_NATS_{SUBJECT_PREFIX,EVENTS_STREAM,CHECKPOINT_BUCKET,QUEUE_GROUP}. On SIGTERM or SIGINT it
drains: no new requests, runs go on for --drain-grace (default 0 s), are then stopped at a batch
boundary with their checkpoints written (at most --drain-timeout, default 30 s), then it exits 0.

Master key: a NVISY_MASTER_KEY_FILE (or a runtime seed file for serve) that group or others can
read is refused (exit 2; fix it with chmod 600 <file>) unless --allow-insecure-key-file is given
(then a warning is printed).
serve confines local paths (the fs provider's root) of every request to the folders given by
--fs-root (repeatable) and NVISY_FS_ROOTS (colon-separated); with none, fs requests are refused.

Exit codes (run, validate, check, discover, connections, keys):
  0  ok: the run completed (every item arrived), the pipeline is valid, the check passed
  1  failed: the run failed or ended 'partial' (items refused under a failure budget), the check
     or discover failed (unreachable or unknown host, bad credentials, missing permission)
  2  usage or configuration error: bad flags, an invalid pipeline or connection file, an unknown
     provider, invalid params, a missing or unusable master key or store entry
  3  cancelled (SIGINT/SIGTERM); the run's checkpoints are saved
`

/** Each command's help: printed by `nvisy <command> --help` (and `-h`), which does nothing else. */
export const COMMAND_HELP: Record<string, string> = {
  run: RUN_HELP,
  validate: VALIDATE_HELP,
  providers: PROVIDERS_HELP,
  check: CHECK_HELP,
  discover: DISCOVER_HELP,
  connections: CONNECTIONS_HELP,
  'connections add': CONNECTIONS_ADD_HELP,
  'connections list': CONNECTIONS_LIST_HELP,
  'connections remove': CONNECTIONS_REMOVE_HELP,
  keys: KEYS_HELP,
  serve: SERVE_HELP,
}

/** True when `--help` or `-h` is among the options (before a `--`). */
function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false
    if (arg === '--help' || arg === '-h') return true
  }
  return false
}

/** The help for `args` (a command and maybe a subcommand) when they ask for it. */
export function helpFor(command: string, rest: readonly string[]): string | undefined {
  if (!wantsHelp(rest)) return undefined
  if (command === 'connections') {
    const sub = { ls: 'list', rm: 'remove' }[rest[0] ?? ''] ?? rest[0]
    return COMMAND_HELP[`connections ${sub}`] ?? COMMAND_HELP.connections
  }
  return COMMAND_HELP[command]
}

// `--credentials-env PREFIX` for every provider package in the repository, through the built
// CLI: the variables named after each provider's credentials schema (every anyOf branch, e.g.
// MySQL's user/password or URL, NATS's token or user/password) are accepted by
// `nvisy connections add` (the schema check), and `nvisy check` with credentials given only by
// the environment succeeds against the local service or emulator, which requires them. A wrong
// secret in a variable makes the check fail (so the variables really reach the provider), and
// no secret ever appears in the output.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type MongoEmulator,
  type Neo4jEmulator,
  type PineconeEmulator,
  type SearchEmulator,
  startMongoEmulator,
  startNeo4jEmulator,
  startPineconeEmulator,
  startSearchEmulator,
} from '@nvisy/emulators'
import { freePort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { generateMasterKey } from '@nvisy/vault'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliResult, repoRoot, runCli } from './__fixtures__/cli.js'
import { buildRuntimeDist, PG, S3 } from './__fixtures__/harness.js'

const NATS_SERVER = process.env.NVISY_NATS_SERVER_BIN ?? '/usr/sbin/nats-server'
const MYSQL = {
  host: process.env.NVISY_TEST_MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.NVISY_TEST_MYSQL_PORT ?? 3306),
  database: process.env.NVISY_TEST_MYSQL_DATABASE ?? 'test',
  user: process.env.NVISY_TEST_MYSQL_USER ?? 'root',
  password: process.env.NVISY_TEST_MYSQL_PASSWORD ?? '',
}
const REDIS = { host: '127.0.0.1', port: Number(process.env.NVISY_TEST_REDIS_PORT ?? 6379) }
const GCS = {
  endpoint: process.env.NVISY_TEST_GCS_ENDPOINT ?? 'http://127.0.0.1:9199',
  project: process.env.NVISY_TEST_GCS_PROJECT ?? 'demo-nvisy',
}
const secret = (label: string) => `${label}-${randomBytes(9).toString('hex')}`

/** One way to give a provider its credentials through variables. */
interface Variant {
  /** What the variables select (the schema branch). */
  name: string
  params: Record<string, unknown>
  env: Record<string, string>
  /** The check's exit code with these credentials (0 unless the test says why not). */
  expectCheck?: 0 | 1
  /** The error kind when the check is expected to fail. */
  expectKind?: string
}

interface ProviderCase {
  id: string
  prefix: string
  variants: Variant[]
  /** Variables with a wrong secret: the check fails (exit 1) and never prints the secret. */
  wrong?: Variant
}

let dir: string
let masterKey: string
const cases: ProviderCase[] = []
const cleanups: (() => Promise<unknown>)[] = []
const servers: ChildProcess[] = []

/** nats-server with JetStream and the given authentication flags, on a free port. */
async function startNatsServer(auth: string[]): Promise<string> {
  const port = await freePort()
  const store = await mkdtemp(join(dir, 'nats-'))
  const child = spawn(
    NATS_SERVER,
    ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store, ...auth],
    { stdio: 'ignore' },
  )
  servers.push(child)
  const deadline = Date.now() + 15_000
  while (!(await tcpReachable('127.0.0.1', port))) {
    if (Date.now() > deadline) throw new Error(`nats-server did not start on ${port}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return `nats://127.0.0.1:${port}`
}

async function createS3Bucket(bucket: string): Promise<void> {
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3')
  const client = new S3Client({
    region: S3.region,
    endpoint: S3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey },
  })
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  client.destroy()
}

/** A well-formed service account key whose private key is not a key: signing fails at once. */
function brokenServiceAccount(canary: string): string {
  return JSON.stringify({
    type: 'service_account',
    project_id: GCS.project,
    private_key_id: 'test',
    private_key: `-----BEGIN PRIVATE KEY-----\n${canary}\n-----END PRIVATE KEY-----\n`,
    client_email: 'nvisy-test@demo-nvisy.iam.gserviceaccount.com',
    client_id: '1',
    token_uri: 'http://127.0.0.1:1/token',
  })
}

function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runCli(args, {
    cwd: dir,
    env: {
      HOME: dir,
      NVISY_MASTER_KEY: masterKey,
      NVISY_CONNECTIONS_FILE: join(dir, 'connections.json'),
      ...env,
    },
  })
}

/** Every variable's value that is a secret (all of them but user names, hosts and flags). */
function secretsIn(env: Record<string, string>): string[] {
  return Object.entries(env)
    .filter(([name, value]) => !/_(USER|USERNAME)$/.test(name) && value.length >= 8)
    .map(([, value]) => value)
}

function expectNoSecret(result: CliResult, env: Record<string, string>): void {
  for (const value of secretsIn(env)) {
    expect(result.stdout, 'stdout shows a secret').not.toContain(value)
    expect(result.stderr, 'stderr shows a secret').not.toContain(value)
  }
}

// With NVISY_REQUIRE_SERVICES=1 (CI) a missing server fails instead of skipping.
const natsSkip = await serviceSkipReason('nats-server (the binary)', NATS_SERVER, async () =>
  existsSync(NATS_SERVER),
)
const gcsSkip = await serviceSkipReason('GCS emulator', GCS.endpoint, async () => {
  const response = await fetch(GCS.endpoint, { signal: AbortSignal.timeout(3000) })
  await response.arrayBuffer()
  return true
})
const s3Skip = await serviceSkipReason('S3 server', S3.endpoint, async () => {
  const response = await fetch(S3.endpoint, { signal: AbortSignal.timeout(3000) })
  await response.arrayBuffer()
  return true
})
/** Providers whose service is not here (only outside CI): their cases are left out. */
const skipped = [natsSkip && 'nats', gcsSkip && 'gcs', s3Skip && 's3'].filter(
  (id): id is string => typeof id === 'string',
)

beforeAll(async () => {
  await buildRuntimeDist()
  dir = await mkdtemp(join(tmpdir(), 'nvisy-credentials-env-'))
  masterKey = generateMasterKey().base64
  const fsRoot = join(dir, 'fs-root')
  await mkdir(fsRoot)

  cases.push({
    id: 'fs',
    prefix: 'FS',
    variants: [{ name: 'no credentials', params: { root: fsRoot }, env: {} }],
  })

  const pgParams = { host: PG.host, port: PG.port, database: PG.database }
  cases.push({
    id: 'postgres',
    prefix: 'PG',
    variants: [
      {
        name: 'user and password',
        params: pgParams,
        env: { PG_USER: PG.user, PG_PASSWORD: secret('pg-password') },
      },
      {
        name: 'URL',
        params: {},
        env: { PG_URL: `postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}` },
      },
    ],
    // The local server trusts every password: a role that does not exist proves the
    // variables are what the provider logs in with.
    wrong: {
      name: 'a role that does not exist',
      params: pgParams,
      env: {
        PG_USER: `nvisy_no_role_${randomBytes(3).toString('hex')}`,
        PG_PASSWORD: secret('pg'),
      },
    },
  })

  const mysqlParams = { host: MYSQL.host, port: MYSQL.port, database: MYSQL.database }
  cases.push({
    id: 'mysql',
    prefix: 'MYSQL',
    variants: [
      {
        name: 'user and password (anyOf branch 1)',
        params: mysqlParams,
        env: { MYSQL_USER: MYSQL.user, MYSQL_PASSWORD: MYSQL.password },
      },
      {
        name: 'URL (anyOf branch 2)',
        params: {},
        env: {
          MYSQL_URL: `mysql://${encodeURIComponent(MYSQL.user)}${MYSQL.password ? `:${encodeURIComponent(MYSQL.password)}` : ''}@${MYSQL.host}:${MYSQL.port}/${MYSQL.database}`,
        },
      },
    ],
    wrong: {
      name: 'a wrong password',
      params: mysqlParams,
      env: { MYSQL_USER: MYSQL.user, MYSQL_PASSWORD: secret('mysql-wrong') },
    },
  })

  // The local Redis's default user has no password (any password passes for it); a user that
  // does not exist is refused, so the variables are what the provider authenticates with.
  const redisParams = { host: REDIS.host, port: REDIS.port }
  cases.push({
    id: 'redis',
    prefix: 'REDIS',
    variants: [
      {
        name: 'ACL user and password',
        params: redisParams,
        env: { REDIS_USERNAME: 'default', REDIS_PASSWORD: secret('redis-password') },
      },
    ],
    wrong: {
      name: 'an unknown ACL user',
      params: redisParams,
      env: {
        REDIS_USERNAME: `nvisy-nobody-${randomBytes(3).toString('hex')}`,
        REDIS_PASSWORD: secret('redis-wrong'),
      },
    },
  })

  if (!natsSkip) {
    const natsPassword = secret('nats-password')
    const userServer = await startNatsServer(['--user', 'nvisy', '--pass', natsPassword])
    const natsToken = secret('nats-token')
    const tokenServer = await startNatsServer(['--auth', natsToken])
    cases.push({
      id: 'nats',
      prefix: 'NATS',
      variants: [
        {
          name: 'user and password (anyOf branch)',
          params: { servers: userServer },
          env: { NATS_USER: 'nvisy', NATS_PASSWORD: natsPassword },
        },
        {
          name: 'token (anyOf branch)',
          params: { servers: tokenServer },
          env: { NATS_TOKEN: natsToken },
        },
      ],
      wrong: {
        name: 'a wrong password',
        params: { servers: userServer },
        env: { NATS_USER: 'nvisy', NATS_PASSWORD: secret('nats-wrong') },
      },
    })
  }

  const s3Bucket = `nvisy-env-${randomBytes(4).toString('hex')}`
  if (!s3Skip) await createS3Bucket(s3Bucket)
  const s3Params = { bucket: s3Bucket, region: S3.region, endpoint: S3.endpoint }
  if (!s3Skip)
    cases.push({
      id: 's3',
      prefix: 'S3',
      variants: [
        {
          name: 'access key',
          params: s3Params,
          env: { S3_ACCESS_KEY_ID: S3.accessKeyId, S3_SECRET_ACCESS_KEY: S3.secretAccessKey },
        },
      ],
      wrong: {
        name: 'a wrong secret key',
        params: s3Params,
        env: { S3_ACCESS_KEY_ID: S3.accessKeyId, S3_SECRET_ACCESS_KEY: secret('s3-wrong-secret') },
      },
    })

  // The GCS emulator takes no credentials (the client sends none to a custom endpoint unless
  // it has a key): a key file from the variable is used, so a key that cannot sign fails the
  // check with an auth error, naming nothing of the key.
  const gcsBucket = `nvisy-env-${randomBytes(4).toString('hex')}`
  if (!gcsSkip) {
    const created = await fetch(`${GCS.endpoint}/storage/v1/b?project=${GCS.project}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: gcsBucket }),
    })
    expect(created.status, await created.text()).toBeLessThan(300)
  }
  if (!gcsSkip)
    cases.push({
      id: 'gcs',
      prefix: 'GCS',
      variants: [
        {
          name: 'service account key (reaches the client: a key that cannot sign is an auth failure)',
          params: { bucket: gcsBucket, projectId: GCS.project, apiEndpoint: GCS.endpoint },
          env: { GCS_SERVICE_ACCOUNT_JSON: brokenServiceAccount(secret('gcs-key-canary')) },
          expectCheck: 1,
          expectKind: 'auth',
        },
      ],
    })

  const mongoPassword = secret('mongo-password')
  const mongo: MongoEmulator = await startMongoEmulator({ users: { nvisy: mongoPassword } })
  cleanups.push(() => mongo.close())
  const mongoParams = { url: mongo.url, database: 'test', serverSelectionTimeoutMS: 5000 }
  cases.push({
    id: 'mongodb',
    prefix: 'MONGO',
    variants: [
      {
        name: 'user and password',
        params: mongoParams,
        env: { MONGO_USERNAME: 'nvisy', MONGO_PASSWORD: mongoPassword },
      },
      {
        name: 'connection string with the user in it',
        params: { database: 'test', serverSelectionTimeoutMS: 5000 },
        env: {
          MONGO_CONNECTION_STRING: mongo.url.replace(
            'mongodb://',
            `mongodb://nvisy:${encodeURIComponent(mongoPassword)}@`,
          ),
        },
      },
    ],
    wrong: {
      name: 'a wrong password',
      params: mongoParams,
      env: { MONGO_USERNAME: 'nvisy', MONGO_PASSWORD: secret('mongo-wrong') },
    },
  })

  const neo4jPassword = secret('neo4j-password')
  const neo4j: Neo4jEmulator = await startNeo4jEmulator({
    auth: { user: 'neo4j', password: neo4jPassword },
  })
  const neo4jToken = secret('neo4j-token')
  const neo4jSso: Neo4jEmulator = await startNeo4jEmulator({ auth: { token: neo4jToken } })
  cleanups.push(
    () => neo4j.close(),
    () => neo4jSso.close(),
  )
  cases.push({
    id: 'neo4j',
    prefix: 'NEO4J',
    variants: [
      {
        name: 'user and password',
        params: { url: neo4j.url },
        env: { NEO4J_USER: 'neo4j', NEO4J_PASSWORD: neo4jPassword },
      },
      { name: 'bearer token', params: { url: neo4jSso.url }, env: { NEO4J_TOKEN: neo4jToken } },
    ],
    wrong: {
      name: 'a wrong password',
      params: { url: neo4j.url },
      env: { NEO4J_USER: 'neo4j', NEO4J_PASSWORD: secret('neo4j-wrong') },
    },
  })

  const pineconeKey = secret('pinecone-key')
  const pinecone: PineconeEmulator = await startPineconeEmulator({
    apiKey: pineconeKey,
    indexes: [{ name: 'main', dimension: 4, metric: 'cosine' }],
  })
  cleanups.push(() => pinecone.close())
  const pineconeParams = { index: 'main', controlPlaneUrl: pinecone.url, maxRetries: 0 }
  cases.push({
    id: 'pinecone',
    prefix: 'PINECONE',
    variants: [{ name: 'API key', params: pineconeParams, env: { PINECONE_API_KEY: pineconeKey } }],
    wrong: {
      name: 'a wrong API key',
      params: pineconeParams,
      env: { PINECONE_API_KEY: secret('pinecone-wrong') },
    },
  })

  for (const flavor of ['elasticsearch', 'opensearch'] as const) {
    const password = secret(`${flavor}-password`)
    const bearer = secret(`${flavor}-bearer`)
    const apiKey = Buffer.from(`keyid:${secret('api')}`).toString('base64')
    const search: SearchEmulator = await startSearchEmulator({
      flavor,
      users: { admin: password },
      bearerTokens: [bearer],
      ...(flavor === 'elasticsearch' ? { apiKeys: [apiKey] } : {}),
    })
    cleanups.push(() => search.close())
    const P = flavor === 'elasticsearch' ? 'ES' : 'OS'
    const params = { url: search.url, requestTimeoutMs: 10_000, maxRetries: 0 }
    cases.push({
      id: flavor,
      prefix: P,
      variants: [
        {
          name: 'user and password',
          params,
          env: { [`${P}_USERNAME`]: 'admin', [`${P}_PASSWORD`]: password },
        },
        { name: 'bearer token', params, env: { [`${P}_BEARER_TOKEN`]: bearer } },
        ...(flavor === 'elasticsearch'
          ? [{ name: 'API key', params, env: { ES_API_KEY: apiKey } }]
          : []),
      ],
      wrong: {
        name: 'a wrong password',
        params,
        env: { [`${P}_USERNAME`]: 'admin', [`${P}_PASSWORD`]: secret(`${flavor}-wrong`) },
      },
    })
  }
}, 300_000)

afterAll(async () => {
  for (const child of servers) child.kill('SIGTERM')
  for (const cleanup of cleanups) await cleanup().catch(() => {})
  if (dir) await rm(dir, { recursive: true, force: true })
})

const provider = (id: string) => ['--provider', `@nvisy/provider-${id}`]

describe('--credentials-env for every provider', () => {
  it('covers every provider package in the repository', () => {
    const packages = readdirSync(join(repoRoot, 'packages'))
      .filter((name) => name.startsWith('provider-'))
      .map((name) => name.slice('provider-'.length))
      .filter((id) => id !== 'core' && id !== 'testkit')
    expect([...cases.map((c) => c.id), ...skipped].sort()).toEqual(packages.sort())
  })

  it("connections add accepts each provider's variables (every schema branch) and prints no secret", async () => {
    for (const c of cases) {
      for (const variant of c.variants) {
        const result = await cli(
          [
            'connections',
            'add',
            ...provider(c.id),
            '--params',
            JSON.stringify(variant.params),
            '--credentials-env',
            c.prefix,
          ],
          variant.env,
        )
        expect(result.code, `${c.id} (${variant.name}): ${result.stderr}`).toBe(0)
        expect(JSON.parse(result.stdout)).toMatchObject({ provider: c.id, params: variant.params })
        expectNoSecret(result, variant.env)
      }
    }
  })

  it('check succeeds with credentials given only by the environment', async () => {
    for (const c of cases) {
      for (const variant of c.variants) {
        const result = await cli(
          [
            'check',
            c.id,
            ...provider(c.id),
            '--params',
            JSON.stringify(variant.params),
            '--credentials-env',
            c.prefix,
          ],
          variant.env,
        )
        const what = `${c.id} (${variant.name}): ${result.stdout}${result.stderr}`
        expect(result.code, what).toBe(variant.expectCheck ?? 0)
        if ((variant.expectCheck ?? 0) === 0)
          expect(JSON.parse(result.stdout), what).toMatchObject({ ok: true })
        else expect(JSON.parse(result.stdout).error.kind, what).toBe(variant.expectKind)
        expectNoSecret(result, variant.env)
      }
    }
  })

  it('a wrong secret in a variable fails the check (exit 1) and is never printed', async () => {
    for (const c of cases) {
      if (!c.wrong) continue
      const result = await cli(
        [
          'check',
          c.id,
          ...provider(c.id),
          '--params',
          JSON.stringify(c.wrong.params),
          '--credentials-env',
          c.prefix,
        ],
        c.wrong.env,
      )
      const what = `${c.id} (${c.wrong.name}): ${result.stdout}${result.stderr}`
      expect(result.code, what).toBe(1)
      expect(JSON.parse(result.stdout).error, what).toBeDefined()
      expectNoSecret(result, c.wrong.env)
    }
  })

  it('MySQL with variables of both anyOf branches: a usage error naming the variables, no value', async () => {
    const env = {
      MYSQL_USER: MYSQL.user,
      MYSQL_URL: `mysql://root:${secret('both')}@127.0.0.1/test`,
    }
    const result = await cli(
      ['check', 'mysql', ...provider('mysql'), '--params', '{}', '--credentials-env', 'MYSQL'],
      env,
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('(from MYSQL_URL)')
    expect(result.stderr).toContain(
      'set the variables of one of User and password (MYSQL_USER required, MYSQL_PASSWORD) or Connection URL (MYSQL_URL required)',
    )
    expectNoSecret(result, env)
  })

  it('no variable of the schema set is a usage error that lists them', async () => {
    const result = await cli(
      ['check', 'mysql', ...provider('mysql'), '--params', '{}', '--credentials-env', 'NOPE'],
      {},
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('none of NOPE_USER, NOPE_PASSWORD, NOPE_URL is set')
  })
})

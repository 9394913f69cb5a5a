import { ProviderError } from '@nvisy/provider-core'
import type { MongoClientOptions } from 'mongodb'
import type { MongoCredentials, MongoParams } from './mongodb-schemas.js'

function configError(message: string): ProviderError {
  return new ProviderError({ kind: 'config', operation: 'connect', message })
}

function hasUserInfo(url: string): boolean {
  const authority = url.replace(/^mongodb(\+srv)?:\/\//, '').split(/[/?]/)[0] ?? ''
  return authority.includes('@')
}

/** The connection string and driver options for validated credentials and params. */
export function clientSettings(
  credentials: MongoCredentials,
  params: MongoParams,
): { url: string; options: MongoClientOptions } {
  let url: string
  if (credentials.connectionString) {
    url = credentials.connectionString
  } else if (params.url) {
    if (hasUserInfo(params.url)) {
      throw configError(
        'params.url must not contain a user or password: put the whole string in credentials.connectionString, or the user and password in credentials',
      )
    }
    url = params.url
  } else if (params.hosts) {
    url = `mongodb://${params.hosts.join(',')}/`
  } else {
    throw configError('MongoDB needs credentials.connectionString, params.url or params.hosts')
  }
  if ((credentials.username === undefined) !== (credentials.password === undefined)) {
    throw configError(
      'credentials.username and credentials.password go together: give both or neither',
    )
  }
  const timeout = params.serverSelectionTimeoutMS ?? 10_000
  const options: MongoClientOptions = {
    serverSelectionTimeoutMS: timeout,
    connectTimeoutMS: Math.min(timeout, 10_000),
    appName: params.appName ?? 'nvisy',
  }
  if (credentials.username !== undefined && credentials.password !== undefined) {
    options.auth = { username: credentials.username, password: credentials.password }
  }
  if (params.tls !== undefined) options.tls = params.tls
  if (params.tlsCAFile !== undefined) options.tlsCAFile = params.tlsCAFile
  if (params.authSource !== undefined) options.authSource = params.authSource
  if (params.authMechanism !== undefined) options.authMechanism = params.authMechanism
  if (params.readPreference !== undefined) options.readPreference = params.readPreference
  if (params.replicaSet !== undefined) options.replicaSet = params.replicaSet
  if (params.directConnection !== undefined) options.directConnection = params.directConnection
  return { url, options }
}

import { type Static, Type } from '@sinclair/typebox'

/**
 * TLS settings of a provider that connects over TCP (PostgreSQL, MySQL...), in its params as
 * `tls`: `{ mode: 'off' | 'require' | 'verify', ca?, servername? }`. Nothing here is secret:
 * a CA certificate is public. A client certificate's key would be, and belongs in the
 * credentials (marked `Secret`), not here.
 */
export const TlsSchema = Type.Object(
  {
    mode: Type.Optional(
      Type.Union([Type.Literal('off'), Type.Literal('require'), Type.Literal('verify')], {
        default: 'off',
        description:
          'off: plain TCP; require: TLS without checking the certificate; verify: TLS checked against `ca` (or the system CAs)',
      }),
    ),
    ca: Type.Optional(
      Type.String({ minLength: 1, description: 'PEM CA certificate(s) for mode verify' }),
    ),
    servername: Type.Optional(
      Type.String({ minLength: 1, description: 'Host name to verify, when it differs from host' }),
    ),
  },
  { additionalProperties: false },
)
export type TlsSettings = Static<typeof TlsSchema>
export type TlsMode = NonNullable<TlsSettings['mode']>

/** The options of Node's `tls.connect` that TLS settings stand for. */
export interface TlsConnectOptions {
  rejectUnauthorized: boolean
  ca?: string
  servername?: string
}

/**
 * Node TLS options for these settings, as drivers built on `tls.connect` take them (the `ssl`
 * option of node-postgres and mysql2): `undefined` for mode `off` (or no settings); for
 * `require`, encryption without checking the certificate; for `verify`, the certificate
 * checked against `ca` (or the system CAs) and the host name against `servername` when set.
 * `ca` and `servername` count only with `verify`.
 */
export function tlsConnectOptions(
  settings: TlsSettings | undefined,
): TlsConnectOptions | undefined {
  const mode: TlsMode = settings?.mode ?? 'off'
  if (mode === 'off') return undefined
  if (mode === 'require') return { rejectUnauthorized: false }
  return {
    rejectUnauthorized: true,
    ...(settings?.ca ? { ca: settings.ca } : {}),
    ...(settings?.servername ? { servername: settings.servername } : {}),
  }
}

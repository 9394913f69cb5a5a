// Server-side copies: a blob -> blob edge whose source and sink are one provider, with the
// same credentials, at the same place (endpoint, region), can copy each object inside the
// store (S3 CopyObject, GCS rewrite) instead of streaming its bytes through the runtime.
//
// The contract, in three optional parts (a provider that uses none of them is unchanged):
// - the source sets `BlobData.origin` (where it read the object);
// - the provider defines `serverSideCopy(source, sink)`: whether two of its connections are
//   one place, so that one connection's credentials may read the source and write the sink;
// - the sink copies blobs that carry an `origin` when a write's `serverSideCopy` is set, and
//   streams the body when the store refuses the copy.
// The runtime sets `serverSideCopy` only where `canCopyServerSide` says yes.
import { isDeepStrictEqual } from 'node:util'
import type { ConnectInput, Provider } from './contract.js'

/**
 * Where a source read a blob, in the store's own terms, so a sink of the same provider can
 * copy it server-side. A small JSON value; it never holds a credential.
 */
export interface BlobOrigin {
  /** The bucket (or container) the object is in. */
  bucket: string
  /** The object's key (name) in that bucket. */
  key: string
  /** The object version (S3 version id, GCS generation) the source listed, when it knows it. */
  versionId?: string | undefined
  /** The entity tag the source listed: a copy is pinned to it, like the source's own reads. */
  etag?: string | undefined
  /** The object's size in bytes as listed. */
  size?: number | undefined
}

/** One side of an edge as the runtime resolved it: its provider, connection input and stream settings. */
export interface CopyEnd {
  provider: Provider
  /** The credentials and params the node connects with (resolved: env references, sealed credentials opened). */
  input: ConnectInput
  /** The node's stream settings (source stream for the source, sink stream for the sink). */
  stream: unknown
}

/**
 * Whether the runtime may ask `sink` to copy `source`'s blobs server-side (a write's
 * `serverSideCopy`): both ends are the same provider, which defines `serverSideCopy`; both
 * streams are blob streams; both inputs are valid and their credentials deep-equal (compared
 * here, in memory, never logged); and the provider says the two params (and streams) name one
 * place. Any doubt (an invalid input, a hook that throws) answers no: the edge streams.
 */
export function canCopyServerSide(source: CopyEnd, sink: CopyEnd): boolean {
  const provider = sink.provider
  // The same provider object: one definition decides for both ends.
  if (source.provider !== provider) return false
  const decide = provider.definition.serverSideCopy
  if (typeof decide !== 'function' || !provider.capabilities.read || !provider.capabilities.write)
    return false
  try {
    const sourceStream = provider.validateStream(structuredClone(source.stream))
    const sinkStream = provider.validateSinkStream(structuredClone(sink.stream))
    if (provider.sourceDataKind(sourceStream) !== 'blob') return false
    if (provider.sinkDataKind(sinkStream) !== 'blob') return false
    const from = provider.validateInput(source.input)
    const to = provider.validateInput(sink.input)
    if (!isDeepStrictEqual(from.credentials, to.credentials)) return false
    return (
      decide(
        { params: from.params, stream: sourceStream },
        { params: to.params, stream: sinkStream },
      ) === true
    )
  } catch {
    return false
  }
}

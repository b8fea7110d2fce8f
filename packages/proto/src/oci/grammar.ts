/** The OCI distribution spec's name and tag grammar (spec.md, "Pulling manifests"). */
export const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*'
export const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`)
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/
/** Names longer than this are refused; distribution itself caps repository names at 255. */
export const MAX_NAME_LENGTH = 255

export function isValidName (name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_RE.test(name)
}

export function isValidTag (tag: string): boolean {
  return TAG_RE.test(tag)
}

/** Manifest media types a mirror asks for when it needs "any manifest". */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json'
] as const

/** OCI error codes (distribution spec, "Error Codes"). */
export type OciErrorCode =
  | 'BLOB_UNKNOWN' | 'BLOB_UPLOAD_INVALID' | 'BLOB_UPLOAD_UNKNOWN' | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN' | 'MANIFEST_INVALID' | 'MANIFEST_UNKNOWN' | 'NAME_INVALID'
  | 'NAME_UNKNOWN' | 'SIZE_INVALID' | 'UNAUTHORIZED' | 'DENIED' | 'UNSUPPORTED' | 'TOOMANYREQUESTS'

/** The OCI error body `{"errors":[{code,message,detail}]}`. */
export function ociErrorBody (code: OciErrorCode, message: string, detail?: unknown): { errors: Array<{ code: OciErrorCode, message: string, detail?: unknown }> } {
  return { errors: [detail === undefined ? { code, message } : { code, message, detail }] }
}

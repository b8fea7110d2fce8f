import type { Response } from 'express'
import { ociErrorBody, type OciErrorCode } from '@damselfly/proto'

/** Sends an OCI error body `{"errors":[{code,message,detail}]}`; a no-op once headers are out. */
export function sendOciError (res: Response, status: number, code: OciErrorCode, message: string, detail?: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = JSON.stringify(ociErrorBody(code, message, detail))
  res.status(status)
  res.setHeader('Content-Type', 'application/json')
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.end(body)
}

import { expect, it } from 'vitest'
import { parseImageRef } from './image-ref.js'

const D = `sha256:${'d'.repeat(64)}`
const cases: Array<[string, ReturnType<typeof parseImageRef>]> = [
  ['nginx', { host: 'docker.io', repository: 'library/nginx', reference: 'latest' }],
  ['nginx:1.25', { host: 'docker.io', repository: 'library/nginx', reference: '1.25' }],
  ['bitnami/redis:7', { host: 'docker.io', repository: 'bitnami/redis', reference: '7' }],
  ['127.0.0.1:5000/test/app:v1', { host: '127.0.0.1:5000', repository: 'test/app', reference: 'v1' }],
  ['localhost/app', { host: 'localhost', repository: 'app', reference: 'latest' }],
  [`ghcr.io/org/app:v1@${D}`, { host: 'ghcr.io', repository: 'org/app', reference: D }],
  ['index.docker.io/library/debian', { host: 'docker.io', repository: 'library/debian', reference: 'latest' }]
]
for (const [text, want] of cases) it(`parses ${text}`, () => { expect(parseImageRef(text)).toEqual(want) })
it('reports bad references', () => {
  expect(parseImageRef('Upper/Case')).toMatch(/not a repository name/)
  expect(parseImageRef('app@sha256:xyz')).toMatch(/not a digest/)
  expect(parseImageRef('app:-bad')).toMatch(/not a tag/)
})

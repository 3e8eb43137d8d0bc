// tests/s3rver_uploads.js: s3rver 5 with the two multipart-upload operations
// it lacks, for tests (tests/objstore.sh starts it instead of s3rver's cli.js).
//
//   node tests/s3rver_uploads.js S3RVER_LIB_DIR [s3rver cli options...]
//
// s3rver 5.0.0 answers ListMultipartUploads (GET /bucket?uploads) with 501
// NotImplemented and AbortMultipartUpload (DELETE /bucket/key?uploadId=) with
// 405, so unfinished uploads left by a killed writer can be neither found nor
// removed by any client. This adds both, over s3rver's own on-disk store of
// uploads (FilesystemStore: <root>/<bucket>/._S3rver_uploads/<uploadId>/ with
// `key`, `metadata` and one file per part), answering as the AWS S3 API
// reference documents:
//   ListMultipartUploads  prefix, delimiter, key-marker, upload-id-marker,
//                         max-uploads (at most 1000), encoding-type=url;
//                         uploads sorted by key, then upload id; Initiated is
//                         when the upload's `key` file was written (a test ages
//                         an upload by moving that file's mtime back)
//   AbortMultipartUpload  204, or 404 NoSuchUpload (unknown id, or an id of
//                         another key)
// Both go through s3rver's own authentication middleware (Signature V2/V4
// checked as for every other route) and, unlike s3rver's anonymous default,
// refuse an unsigned request (403 AccessDenied).
//
// It also signs bucket requests written with a trailing slash as sent:
// s3rver builds the Signature V4 canonical URI from the bucket and key it
// routed, so "GET /bucket/?list-type=2..." (pgBackRest's path-style listing)
// is checked against "/bucket" and refused (403 SignatureDoesNotMatch),
// where AWS signs the path as the client sent it, "/bucket/". The signature
// is still checked, over what was sent: a client that signs "/bucket" and
// sends "/bucket/" is refused as AWS would.
//
// UW_S3_UPLOADS_PAGE (environment): the most uploads one page holds (default
// 1000), so that a test can make a client follow the markers.
// UW_S3_KEY_PAIR (environment): ID:SECRET, a credential accepted besides
// S3RVER:S3RVER (never on argv).
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { AsyncLocalStorage } = require('node:async_hooks')

const lib = process.argv[2]
if (!lib) {
  console.error('usage: s3rver_uploads.js S3RVER_LIB_DIR [s3rver options]')
  process.exit(2)
}
const S3rver = require(path.join(lib, 's3rver.js'))
const S3Error = require(path.join(lib, 'models', 'error.js'))
const authentication = require(path.join(lib, 'middleware', 'authentication.js'))
const v4 = require(path.join(lib, 'signature', 'v4.js'))
const { parseAsync } = require(path.join(lib, 'cli.js'))

if (process.env.UW_S3_KEY_PAIR) {
  const k = process.env.UW_S3_KEY_PAIR
  const i = k.indexOf(':')
  require(path.join(lib, 'models', 'account.js')).DUMMY_ACCOUNT.createKeyPair(
    k.slice(0, i),
    k.slice(i + 1)
  )
}

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/'
const PAGE_MAX = Math.max(1, Math.min(1000, Number(process.env.UW_S3_UPLOADS_PAGE) || 1000))
const OWNER = { ID: 'S3RVER', DisplayName: 'S3rver' }

function uploadsDir(ctx, bucket) {
  return ctx.app.store.getResourcePath(bucket, undefined, 'uploads')
}

// Every upload of the bucket: { key, id, initiated (Date) }. A directory
// without its `key` file is no upload (a part written after an abort).
async function readUploads(dir) {
  let names
  try {
    names = await fs.promises.readdir(dir)
  } catch (err) {
    if (err.code === 'ENOENT') return []
    throw err
  }
  const out = []
  for (const id of names) {
    try {
      const keyFile = path.join(dir, id, 'key')
      const [key, st] = await Promise.all([fs.promises.readFile(keyFile, 'utf8'), fs.promises.stat(keyFile)])
      out.push({ key, id, initiated: st.mtime })
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err
    }
  }
  return out
}

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0)

async function listMultipartUploads(ctx, bucket) {
  const q = ctx.query
  const prefix = q.prefix || ''
  const delimiter = q.delimiter || ''
  const keyMarker = q['key-marker'] || ''
  // Ignored without key-marker (AWS: "If key-marker is not specified, the
  // upload-id-marker parameter is ignored").
  const idMarker = keyMarker ? q['upload-id-marker'] || '' : ''
  let maxUploads = 1000
  if (q['max-uploads'] !== undefined) {
    maxUploads = Number(q['max-uploads'])
    if (!Number.isInteger(maxUploads) || maxUploads < 0) {
      throw new S3Error('InvalidArgument', 'Provided max-uploads not an integer or within integer range', {
        ArgumentName: 'max-uploads',
        ArgumentValue: q['max-uploads'],
      })
    }
    maxUploads = Math.min(maxUploads, 1000)
  }
  const pageMax = Math.min(maxUploads, PAGE_MAX)
  const urlEncode = q['encoding-type'] === 'url'
  if (q['encoding-type'] !== undefined && !urlEncode) {
    throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', {
      ArgumentName: 'encoding-type',
      ArgumentValue: q['encoding-type'],
    })
  }
  const enc = (s) => (urlEncode ? encodeURIComponent(s).replace(/%2F/g, '/') : s)

  const all = (await readUploads(uploadsDir(ctx, bucket)))
    .filter((u) => u.key.startsWith(prefix))
    .filter((u) => !keyMarker || u.key > keyMarker || (idMarker && u.key === keyMarker && u.id > idMarker))
    .sort((a, b) => cmp(a.key, b.key) || cmp(a.id, b.id))

  const uploads = []
  const prefixes = []
  let truncated = false
  let last = null
  for (const u of all) {
    let cp = null
    if (delimiter) {
      const at = u.key.indexOf(delimiter, prefix.length)
      if (at !== -1) cp = u.key.slice(0, at + delimiter.length)
    }
    if (cp && prefixes.length && prefixes[prefixes.length - 1] === cp) {
      last = { key: u.key, id: u.id }
      continue
    }
    if (uploads.length + prefixes.length >= pageMax) {
      truncated = true
      break
    }
    if (cp) prefixes.push(cp)
    else uploads.push(u)
    last = { key: u.key, id: u.id }
  }

  const body = {
    '@': { xmlns: XMLNS },
    Bucket: bucket,
    KeyMarker: enc(keyMarker),
    UploadIdMarker: idMarker,
  }
  if (truncated && last) body.NextKeyMarker = enc(last.key)
  body.Prefix = enc(prefix)
  if (delimiter) body.Delimiter = enc(delimiter)
  if (truncated && last) body.NextUploadIdMarker = last.id
  body.MaxUploads = maxUploads
  body.IsTruncated = truncated
  if (uploads.length) {
    body.Upload = uploads.map((u) => ({
      Key: enc(u.key),
      UploadId: u.id,
      Initiator: OWNER,
      Owner: OWNER,
      StorageClass: 'STANDARD',
      Initiated: u.initiated.toISOString(),
    }))
  }
  if (prefixes.length) body.CommonPrefixes = prefixes.map((p) => ({ Prefix: enc(p) }))
  if (urlEncode) body.EncodingType = 'url'
  ctx.body = { ListMultipartUploadsResult: body }
}

async function abortMultipartUpload(ctx, bucket, key) {
  const id = ctx.query.uploadId
  const dir = path.join(uploadsDir(ctx, bucket), path.basename(id || ''))
  let stored = null
  if (id && /^[A-Za-z0-9._-]+$/.test(id)) {
    try {
      stored = await fs.promises.readFile(path.join(dir, 'key'), 'utf8')
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err
    }
  }
  if (stored === null || stored !== key) {
    throw new S3Error(
      'NoSuchUpload',
      'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      { UploadId: id || '' }
    )
  }
  await fs.promises.rm(dir, { recursive: true, force: true })
  ctx.status = 204
}

// Which request this is, from the (vhost-rewritten) path: null for anything
// s3rver answers itself.
function route(ctx) {
  const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path)
  if (!m) return null
  const bucket = decodeURIComponent(m[1])
  const key = m[2] ? m[2].split('/').map(decodeURIComponent).join('/') : ''
  if (ctx.method === 'GET' && !key && 'uploads' in ctx.query) return { op: 'list', bucket, key }
  if (ctx.method === 'DELETE' && key && 'uploadId' in ctx.query) return { op: 'abort', bucket, key }
  return null
}

// The request path as sent (koa's ctx.path: not decoded, after s3rver's
// virtual-host rewrite), for the canonical URI below.
const sent = new AsyncLocalStorage()
function sentPathMiddleware(ctx, next) {
  return sent.run({ path: ctx.path, vhost: Boolean(ctx.state.vhost) }, next)
}

// authentication.js calls v4.getStringToSign through the module object for
// every request (s3rver's routes and ours): a path-style bucket request sent
// as "/bucket/" keeps its trailing slash in the canonical URI. Key requests
// and virtual-host requests are s3rver's own business, left as they are.
const getStringToSign = v4.getStringToSign
v4.getStringToSign = function (canonicalRequest, request) {
  const req = sent.getStore()
  const uri = canonicalRequest.uri
  if (
    req &&
    !req.vhost &&
    /^\/[^/]+\/$/.test(req.path) &&
    uri.length > 1 &&
    !uri.endsWith('/') &&
    uri.indexOf('/', 1) === -1
  ) {
    canonicalRequest = { ...canonicalRequest, uri: `${uri}/` }
  }
  return getStringToSign.call(this, canonicalRequest, request)
}

const auth = authentication()

async function uploadsMiddleware(ctx, next) {
  const r = route(ctx)
  if (!r) return next()
  ctx.params = { ...(ctx.params || {}), bucket: r.bucket, ...(r.key ? { key: r.key } : {}) }
  await auth(ctx, async () => {
    if (!ctx.state.account) {
      throw new S3Error('AccessDenied', 'Access Denied')
    }
    if (!(await ctx.app.store.getBucket(r.bucket))) {
      throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: r.bucket })
    }
    if (r.op === 'list') await listMultipartUploads(ctx, r.bucket)
    else await abortMultipartUpload(ctx, r.bucket, r.key)
  })
}

// Test hook (UW_S3_HOLD_FILE): while that file exists, an UploadPart with
// partNumber 2 or more whose key starts with the file's first line is held
// before s3rver reads it. A test then catches a push with exactly one part
// stored and still running, however slow or busy the machine, and kills it
// there: no race between the push's speed and the test's polling.
const holdFile = process.env.UW_S3_HOLD_FILE
async function holdMiddleware(ctx, next) {
  if (holdFile && ctx.method === 'PUT' && 'uploadId' in ctx.query && Number(ctx.query.partNumber) >= 2) {
    const m = /^\/[^/]+\/(.*)$/.exec(ctx.path)
    const key = m ? m[1].split('/').map(decodeURIComponent).join('/') : ''
    for (;;) {
      let prefix
      try {
        prefix = fs.readFileSync(holdFile, 'utf8').split('\n')[0]
      } catch {
        break
      }
      if (!prefix || !key.startsWith(prefix)) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return next()
}

// s3rver builds its middleware stack in its constructor, the router last:
// ours goes just before the router (after the logger, the XML encoder and
// the virtual-host rewrite), when the server starts listening.
const listen = S3rver.prototype.listen
S3rver.prototype.listen = function (...args) {
  if (!this.middleware.includes(uploadsMiddleware)) {
    this.middleware.splice(this.middleware.length - 1, 0, sentPathMiddleware, holdMiddleware, uploadsMiddleware)
  }
  return listen.apply(this, args)
}

parseAsync([process.argv[0], 's3rver', ...process.argv.slice(3)]).catch((err) => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})

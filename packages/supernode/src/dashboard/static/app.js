// Damselfly supernode dashboard: polls GET /api/v1/dashboard and renders it. Plain browser
// JavaScript, no framework and no build step. Every value from the supernode (hostnames and
// addresses come from peers) is inserted as text, never as markup.
'use strict'

;(function () {
  const API = '/api/v1/dashboard'
  const POLL_MS = 2000
  /** A reply older than this (failed polls in between) marks the view stale. */
  const STALE_MS = 10000
  const TOKEN_KEY = 'damselfly.dashboard.token'

  const $ = (id) => document.getElementById(id)
  let timer
  let lastOk = 0
  let inFlight = false

  // ---- formatting ----
  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  function bytes (n) {
    if (!Number.isFinite(n) || n <= 0) return '0 B'
    let i = 0
    while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++ }
    return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${UNITS[i]}`
  }
  const rate = (n) => n > 0 ? `${bytes(n)}/s` : '–'
  const pct = (part, whole) => whole > 0 ? `${Math.round(100 * part / whole)}%` : '–'
  function ago (ms) {
    const s = Math.max(0, Math.round(ms / 1000))
    if (s < 60) return `${s} s ago`
    if (s < 3600) return `${Math.floor(s / 60)} min ago`
    return `${Math.floor(s / 3600)} h ago`
  }
  function duration (ms) {
    const s = Math.max(0, Math.floor(ms / 1000))
    const d = Math.floor(s / 86400)
    const h = Math.floor(s % 86400 / 3600)
    const m = Math.floor(s % 3600 / 60)
    if (d > 0) return `${d} d ${h} h`
    if (h > 0) return `${h} h ${m} min`
    return m > 0 ? `${m} min` : `${s} s`
  }
  const shortId = (id) => id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
  const shortDigest = (d) => { const [alg, hex = ''] = d.split(':'); return `${alg}:${hex.slice(0, 12)}…${hex.slice(-4)}` }
  const clock = (t) => new Date(t).toLocaleTimeString()

  /** `el('td', { class: 'num' }, 'text', child)`: attributes as strings, children as nodes or text. */
  function el (tag, attrs, ...children) {
    const node = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) node.setAttribute(k, String(v))
    for (const c of children) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c))
    return node
  }
  function setText (id, text) { const n = $(id); if (n.textContent !== text) n.textContent = text }

  /** Updates a keyed list in place: kept items keep their element (and any text selection). */
  function reconcile (container, items, keyOf, create, update) {
    const existing = new Map([...container.children].map((n) => [n.dataset.key, n]))
    let previous = null
    for (const item of items) {
      const key = keyOf(item)
      let node = existing.get(key)
      if (node === undefined) { node = create(item); node.dataset.key = key } else existing.delete(key)
      update(node, item)
      const want = previous === null ? container.firstChild : previous.nextSibling
      if (node !== want) container.insertBefore(node, want)
      previous = node
    }
    for (const gone of existing.values()) gone.remove()
  }

  // ---- live status ----
  function live (state, text) {
    $('live-dot').dataset.state = state
    setText('live-text', text)
  }

  // ---- token ----
  const token = () => sessionStorage.getItem(TOKEN_KEY) || ''
  function showAuth (message) {
    $('content').hidden = true
    $('auth').hidden = false
    setText('auth-error', message)
    live('offline', 'Token required')
    $('token-input').focus()
  }
  $('auth-form').addEventListener('submit', (e) => {
    e.preventDefault()
    sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim())
    $('token-input').value = ''
    setText('auth-error', '')
    schedule(0)
  })

  // ---- rendering ----
  function renderHeader (s) {
    setText('sn-peer-id', shortId(s.supernode.peerId || '–'))
    $('sn-peer-id').title = s.supernode.peerId
    setText('sn-version', s.supernode.version)
    setText('sn-uptime', duration(s.generatedAt - s.supernode.startedAt))
  }

  function renderTotals (s) {
    const t = s.totals
    const b = t.bytes
    setText('stat-peers', String(t.peers))
    setText('stat-peers-sub', `seed uploading ${rate(s.supernode.uploadRate)}`)
    setText('stat-tasks', String(t.tasks.running + t.tasks.succeeded + t.tasks.failed))
    setText('stat-tasks-sub', `${t.tasks.running} running · ${t.tasks.succeeded} done · ${t.tasks.failed} failed`)
    setText('stat-upstream', bytes(b.upstream))
    setText('stat-delivered', bytes(b.delivered))
    setText('stat-delivered-sub', `${pct(b.fromPeers, b.delivered)} of it from other peers`)
    setText('stat-saved', bytes(b.saved))
    setText('stat-saved-sub', b.delivered > 0 ? `${pct(b.saved, b.delivered)} of delivered bytes never left the registry` : 'nothing delivered yet')
    $('share-peers').style.width = b.delivered > 0 ? `${100 * b.fromPeers / b.delivered}%` : '0'
    $('share-seed').style.width = b.delivered > 0 ? `${100 * b.fromSupernode / b.delivered}%` : '0'
    $('share-bar').setAttribute('aria-label', b.delivered > 0
      ? `${pct(b.fromPeers, b.delivered)} of delivered bytes came from other peers, ${pct(b.fromSupernode, b.delivered)} from the supernode seed`
      : 'No bytes delivered yet')
    setText('legend-peers', bytes(b.fromPeers))
    setText('legend-seed', bytes(b.fromSupernode))
    setText('legend-upstream', bytes(b.upstream))
  }

  function peerRowCells () {
    return ['host', 'id', 'addrs', 'held', 'rate', 'seen', 'state'].map((c) => el('td', { 'data-col': c, class: ['held', 'rate', 'seen'].includes(c) ? 'num' : undefined }))
  }

  function renderPeers (s) {
    $('peers-empty').hidden = s.peers.length > 0
    setText('peers-note', s.peersOmitted > 0 ? `${s.peers.length} of ${s.totals.peers} shown` : `${s.totals.peers} live`)
    reconcile($('peers-body'), s.peers, (p) => p.peerId, () => el('tr', {}, ...peerRowCells()), (row, p) => {
      row.dataset.peerId = p.peerId
      row.dataset.heldBytes = String(p.heldBytes)
      const cell = (c) => row.querySelector(`[data-col="${c}"]`)
      cell('host').replaceChildren(el('span', { class: 'host' }, p.hostname), p.version ? el('span', { class: 'host-version' }, `dfclient ${p.version}`) : '')
      cell('id').replaceChildren(el('span', { class: 'peer-id', title: p.peerId }, shortId(p.peerId)))
      cell('addrs').replaceChildren(el('ul', { class: 'addrs' }, ...p.addrs.map((a) => el('li', {}, a))))
      cell('held').textContent = p.heldPieces > 0 ? `${bytes(p.heldBytes)} (${p.heldPieces} pieces)` : '0 B'
      cell('rate').textContent = rate(p.uploadRate)
      cell('seen').textContent = ago(s.generatedAt - p.lastSeen)
      cell('state').replaceChildren(el('span', { class: `badge badge-${p.state}` }, p.state))
    })
  }

  function cellClass (published, pieces, holders) {
    if (published === 0) return 'cell unpublished'
    const level = holders >= 5 ? 4 : holders >= 3 ? 3 : holders
    return `cell h${level}${published < pieces ? ' partial' : ''}`
  }

  function renderMap (container, t) {
    const cells = t.map.cells
    if (container.children.length !== cells.length) container.replaceChildren(...cells.map(() => el('span', {})))
    const per = t.map.piecesPerCell
    cells.forEach(([published, pieces, holders], i) => {
      const node = container.children[i]
      const first = i * per
      const name = pieces === 1 ? `piece ${first}` : `pieces ${first}–${first + pieces - 1}`
      const what = published === 0 ? 'not published yet' : `${published < pieces ? `${published} of ${pieces} published, ` : ''}${holders === 0 ? 'seed only' : `${holders} peer${holders === 1 ? '' : 's'}${pieces > 1 ? ' (rarest)' : ''}`}`
      const cls = cellClass(published, pieces, holders)
      if (node.className !== cls) node.className = cls
      node.dataset.holders = String(holders)
      node.title = `${name}: ${what}`
    })
    container.setAttribute('aria-label', `Piece map: ${t.publishedPieces} of ${t.pieceCount} pieces published, ${t.piecesWithHolders} held by peers`)
  }

  function renderTasks (s) {
    $('tasks-empty').hidden = s.tasks.length > 0
    const total = s.totals.tasks.running + s.totals.tasks.succeeded + s.totals.tasks.failed
    setText('tasks-note', s.tasksOmitted > 0 ? `running first, then newest: ${s.tasks.length} of ${total} shown` : `${total} known`)
    const hosts = new Map(s.peers.map((p) => [p.peerId, p.hostname]))
    reconcile($('tasks'), s.tasks, (t) => t.taskId, (t) => {
      return el('li', { class: 'task' },
        el('div', { class: 'task-head' },
          el('span', { class: 'badge', 'data-part': 'state' }),
          el('code', { class: 'digest', title: t.taskId }, shortDigest(t.taskId)),
          el('span', { class: 'task-meta', 'data-part': 'meta' })),
        el('div', { class: 'piece-map', role: 'img', 'data-part': 'map' }),
        el('p', { class: 'task-foot', 'data-part': 'quarantine', hidden: '' }))
    }, (node, t) => {
      node.dataset.taskId = t.taskId
      const part = (p) => node.querySelector(`[data-part="${p}"]`)
      const state = part('state')
      state.className = `badge badge-${t.state}`
      state.textContent = t.state
      part('meta').textContent = `${bytes(t.size)} · ${t.publishedPieces}/${t.pieceCount} pieces of ${bytes(t.pieceSize)} · ${t.holders} holder${t.holders === 1 ? '' : 's'}`
      renderMap(part('map'), t)
      const q = part('quarantine')
      q.hidden = t.quarantines.length === 0
      q.replaceChildren(...(t.quarantines.length === 0 ? [] : ['Quarantined for serving a bad piece: ', ...t.quarantines.flatMap((x, i) => [
        i > 0 ? ', ' : '',
        el('span', { class: 'peer-id', title: x.peerId }, x.hostname || hosts.get(x.peerId) || shortId(x.peerId)),
        ` until ${clock(x.until)}`
      ])]))
    })
  }

  function render (s) {
    $('auth').hidden = true
    $('content').hidden = false
    renderHeader(s)
    renderTotals(s)
    renderPeers(s)
    renderTasks(s)
  }

  // ---- polling ----
  async function poll () {
    if (inFlight) return
    inFlight = true
    try {
      const headers = { accept: 'application/json' }
      if (token() !== '') headers.authorization = `Bearer ${token()}`
      const res = await fetch(API, { headers, cache: 'no-store' })
      if (res.status === 401) {
        const had = token() !== ''
        sessionStorage.removeItem(TOKEN_KEY)
        showAuth(had ? 'That token was not accepted.' : '')
        return
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      render(await res.json())
      lastOk = Date.now()
      live('live', `Live · updated ${new Date(lastOk).toLocaleTimeString()}`)
      schedule(POLL_MS)
    } catch (err) {
      const stale = lastOk === 0 || Date.now() - lastOk > STALE_MS
      live(stale ? 'offline' : 'stale', `${stale ? 'Supernode unreachable' : 'Retrying'} (${err instanceof Error ? err.message : err})`)
      schedule(POLL_MS)
    } finally {
      inFlight = false
    }
  }

  function schedule (ms) {
    clearTimeout(timer)
    if (document.visibilityState === 'hidden') return
    timer = setTimeout(poll, ms)
  }

  // A hidden tab stops polling; showing it again refreshes at once.
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') schedule(0); else clearTimeout(timer) })
  schedule(0)
})()

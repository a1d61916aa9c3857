/*
 * The fleetq dashboard (docs/operations.md): one page, hash routes, live
 * data from GET /api/events. Served as written by the broker's HTTP listener;
 * Preact and htm come from /vendor/ through the import map in index.html.
 */
import { render } from 'preact'
import { useCallback, useEffect, useState } from 'preact/hooks'
import { html } from './html.js'
import { clearCredentials, hasCredentials, whenUnauthenticated, whoami } from './api.js'
import { openSnapshotStream } from './events.js'
import { addSnapshot, emptyHistory } from './history.js'
import { Login } from './login.js'
import { Toast } from './toast.js'
import { Overview } from './overview.js'
import { Clients } from './clients.js'
import { Groups } from './groups.js'
import { DeadLetters } from './dead-letters.js'
import { Schedules } from './schedules.js'

const PAGES = [
  { route: 'overview', label: 'Overview', component: Overview },
  { route: 'clients', label: 'Clients', component: Clients },
  { route: 'groups', label: 'Groups', component: Groups },
  { route: 'dead', label: 'Dead letters', short: 'Dead', component: DeadLetters },
  { route: 'schedules', label: 'Schedules', component: Schedules }
]

function currentRoute () {
  const route = location.hash.replace(/^#\/?/, '').split('/')[0]
  return PAGES.some((p) => p.route === route) ? route : 'overview'
}

function useRoute () {
  const [route, setRoute] = useState(currentRoute)
  useEffect(() => {
    const onChange = () => setRoute(currentRoute())
    addEventListener('hashchange', onChange)
    return () => removeEventListener('hashchange', onChange)
  }, [])
  return route
}

/** The snapshot feed and the rate history built from it, while `enabled`. */
function useSnapshots (enabled, onUnauthenticated) {
  const [snapshot, setSnapshot] = useState(null)
  const [history, setHistory] = useState(emptyHistory)
  const [stream, setStream] = useState({ state: 'connecting', detail: 'connecting' })
  useEffect(() => {
    if (!enabled) return undefined
    const feed = openSnapshotStream({
      onSnapshot (data) {
        setSnapshot(data)
        setHistory((h) => addSnapshot(h, data))
      },
      onState: (state, detail) => setStream({ state, detail }),
      onUnauthenticated
    })
    return () => feed.stop()
  }, [enabled])
  /** Applies an action's answer at once, until the next snapshot replaces it. */
  const patch = useCallback((change) => setSnapshot((s) => (s === null ? s : change(s))), [])
  return { snapshot, history, stream, patch }
}

function Header ({ identity, stream, onLogout, route }) {
  return html`
    <header class="topbar">
      <div class="topbar-inner">
        <a class="brand" href="#/overview"><span class="brand-mark" aria-hidden="true"></span>fleetq</a>
        <span class="stream stream-${stream.state}" data-testid="stream-status" data-state=${stream.state} title=${stream.detail}>
          <span class="dot" aria-hidden="true"></span>${stream.state === 'live' ? 'Live' : stream.state === 'connecting' ? 'Connecting' : 'Reconnecting'}
        </span>
        <div class="who">
          <span class="who-user" data-testid="whoami-user">${identity.user ?? 'open broker'}</span>
          <span class="badge badge-${identity.role}" data-testid="whoami-role">${identity.role}</span>
          ${identity.user !== null && html`<button type="button" class="button button-small" data-testid="logout" onClick=${onLogout}>Log out</button>`}
        </div>
      </div>
      <nav class="tabs" aria-label="Pages">
        ${PAGES.map((p) => html`
          <a href=${`#/${p.route}`} class=${p.route === route ? 'tab tab-active' : 'tab'} aria-current=${p.route === route ? 'page' : undefined}
            data-testid=${`nav-${p.route}`}>
            ${p.short ? html`<span class="long">${p.label}</span><span class="short">${p.short}</span>` : p.label}
          </a>`)}
      </nav>
    </header>`
}

function App () {
  // 'checking' → 'login' or { user, role }
  const [identity, setIdentity] = useState('checking')
  const [loginReason, setLoginReason] = useState(null)
  const route = useRoute()
  const signedIn = typeof identity === 'object' && identity.role !== undefined

  const toLogin = useCallback((reason) => {
    clearCredentials()
    setLoginReason(reason)
    setIdentity('login')
  }, [])

  const check = useCallback(() => {
    setIdentity('checking')
    whoami().then(setIdentity, (err) => {
      if (err.status === 401) toLogin(hasCredentials() ? 'Your session has ended: sign in again.' : null)
      else setIdentity({ failed: err.message })
    })
  }, [])
  useEffect(check, [])
  useEffect(() => whenUnauthenticated(() => toLogin('Your session has ended: sign in again.')), [])

  const { snapshot, history, stream, patch } = useSnapshots(signedIn, () => toLogin('Your session has ended: sign in again.'))

  if (identity === 'checking') return html`<p class="boot">Loading fleetq…</p>`
  if (identity.failed !== undefined) {
    return html`
      <main class="login">
        <div class="card login-card">
          <p class="form-error" role="alert">Cannot reach the broker: ${identity.failed}</p>
          <button type="button" class="button button-primary" onClick=${check}>Try again</button>
        </div>
      </main>`
  }
  if (identity === 'login') return html`<${Login} reason=${loginReason} onLoggedIn=${(who) => { setLoginReason(null); setIdentity(who) }} />`

  const page = PAGES.find((p) => p.route === route)
  const Page = page.component
  return html`
    <${Header} identity=${identity} stream=${stream} route=${route} onLogout=${() => toLogin(null)} />
    <main class="content" data-testid=${`page-${route}`}>
      ${snapshot === null
        ? html`<p class="muted">Waiting for the first snapshot…</p>`
        : html`<${Page} snapshot=${snapshot} history=${history} canWrite=${identity.role === 'admin'} patch=${patch} />`}
    </main>
    <${Toast} />`
}

document.title = 'fleetq dashboard'
render(html`<${App} />`, document.getElementById('app'))

/* The login form, shown when GET /api/whoami answers 401. */
import { useState } from 'preact/hooks'
import { html } from './html.js'
import { clearCredentials, saveCredentials, whoami } from './api.js'

export function Login ({ onLoggedIn, reason }) {
  const [user, setUser] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState(reason ?? null)
  const [busy, setBusy] = useState(false)

  async function submit (event) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    saveCredentials(user, password)
    try {
      onLoggedIn(await whoami())
    } catch (err) {
      clearCredentials()
      setError(err.status === 401 ? 'Wrong user name or password.' : err.message)
      setBusy(false)
    }
  }

  return html`
    <main class="login">
      <form class="card login-card" data-testid="login-form" onSubmit=${submit}>
        <div class="brand brand-large"><span class="brand-mark" aria-hidden="true"></span>fleetq</div>
        <p class="muted">Sign in with a user of the broker's users file.</p>
        <label>User
          <input name="user" autocomplete="username" required value=${user} data-testid="login-user"
            onInput=${(e) => setUser(e.currentTarget.value)} />
        </label>
        <label>Password
          <input name="password" type="password" autocomplete="current-password" required value=${password}
            data-testid="login-password" onInput=${(e) => setPassword(e.currentTarget.value)} />
        </label>
        ${error && html`<p class="form-error" role="alert" data-testid="login-error">${error}</p>`}
        <button class="button button-primary" type="submit" disabled=${busy} data-testid="login-submit">
          ${busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>`
}

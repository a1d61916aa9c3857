/*
 * The status line at the bottom: what the last action did, or the server's
 * problem+json `detail` when it was refused.
 */
import { useEffect, useState } from 'preact/hooks'
import { html } from './html.js'

const listeners = new Set()
let current = null
let serial = 0

export function showToast (kind, text) {
  current = { id: ++serial, kind, text }
  for (const listener of listeners) listener(current)
}

/**
 * Runs an API action and reports it: `describe(result)` is the success text;
 * a refusal shows its detail (and the first issue, if any). Resolves with
 * the result, or undefined when it failed.
 */
export async function runAction (fn, describe) {
  try {
    const result = await fn()
    showToast('ok', describe(result))
    return result
  } catch (err) {
    const issue = err?.issues?.[0]
    showToast('error', issue ? `${err.message} (${issue.path || '/'}: ${issue.message})` : (err?.message ?? String(err)))
    return undefined
  }
}

const SHOWN_MS = { ok: 4000, error: 8000 }

export function Toast () {
  const [toast, setToast] = useState(current)
  useEffect(() => {
    listeners.add(setToast)
    return () => listeners.delete(setToast)
  }, [])
  useEffect(() => {
    if (toast === null) return undefined
    const timer = setTimeout(() => setToast(null), SHOWN_MS[toast.kind] ?? 4000)
    return () => clearTimeout(timer)
  }, [toast])
  if (toast === null) return null
  return html`
    <div class="toast toast-${toast.kind}" role="status" aria-live="polite" data-testid="toast" data-kind=${toast.kind}>
      <span>${toast.text}</span>
      <button type="button" class="toast-close" aria-label="Dismiss" data-testid="toast-close" onClick=${() => setToast(null)}>×</button>
    </div>`
}

/* Clients and topics: connected clients (ClientView) and retained messages (RetainedView). */
import { useState } from 'preact/hooks'
import { html } from './html.js'
import { del, segment } from './api.js'
import { bytes, count, preview, relative, when } from './format.js'
import { usePoll } from './poll.js'
import { runAction } from './toast.js'

const SHOWN_SUBSCRIPTIONS = 3

function Subscriptions ({ list }) {
  if (list.length === 0) return html`<span class="muted">none</span>`
  const shown = list.slice(0, SHOWN_SUBSCRIPTIONS)
  const more = list.length - shown.length
  return html`
    <div class="chips">
      ${shown.map((s) => html`<span class="chip mono" title=${`QoS ${s.qos}`}>${s.topic}</span>`)}
      ${more > 0 && html`<span class="chip chip-more" title=${list.slice(SHOWN_SUBSCRIPTIONS).map((s) => s.topic).join('\n')}>+${more}</span>`}
    </div>`
}

function ClientsTable ({ clients, canWrite, refresh }) {
  async function disconnect (clientId) {
    if (!confirm(`Disconnect ${clientId}? A client that reconnects by itself will come back.`)) return
    const done = await runAction(() => del(`/api/clients/${segment(clientId)}`), () => `Disconnected ${clientId}`)
    if (done !== undefined) refresh()
  }
  if (clients.length === 0) return html`<p class="empty" data-testid="clients-empty">No client is connected.</p>`
  return html`
    <div class="table-wrap">
      <table class="table">
        <thead><tr><th>Client id</th><th>User</th><th>Address</th><th>Connected</th><th>Subscriptions</th>${canWrite && html`<th class="actions-col"></th>`}</tr></thead>
        <tbody>
          ${clients.map((c) => html`
            <tr key=${c.clientId} data-testid=${`client-row-${c.clientId}`}>
              <td class="mono strong" data-label="Client id">${c.clientId}${c.cleanSession ? '' : html` <span class="badge badge-muted" title="persistent session">persistent</span>`}</td>
              <td data-label="User">${c.username ?? html`<span class="muted">anonymous</span>`}</td>
              <td class="mono" data-label="Address">${c.address ?? '–'}</td>
              <td data-label="Connected" title=${c.connectedAt}>${when(c.connectedAt)} <span class="muted">${relative(c.connectedAt)}</span></td>
              <td data-label="Subscriptions"><${Subscriptions} list=${c.subscriptions} /></td>
              ${canWrite && html`<td class="actions">
                <button type="button" class="button button-small button-danger" data-testid=${`disconnect-${c.clientId}`}
                  onClick=${() => disconnect(c.clientId)}>Disconnect</button></td>`}
            </tr>`)}
        </tbody>
      </table>
    </div>`
}

function RetainedTable ({ retained, canWrite, refresh }) {
  async function remove (topic) {
    const done = await runAction(() => del(`/api/retained?topic=${encodeURIComponent(topic)}`), () => `Deleted the retained message of ${topic}`)
    if (done !== undefined) refresh()
  }
  if (retained.length === 0) return html`<p class="empty" data-testid="retained-empty">No retained message matches.</p>`
  return html`
    <div class="table-wrap">
      <table class="table">
        <thead><tr><th>Topic</th><th class="num">QoS</th><th class="num">Size</th><th>Payload</th>${canWrite && html`<th class="actions-col"></th>`}</tr></thead>
        <tbody>
          ${retained.map((r) => html`
            <tr key=${r.topic} data-testid=${`retained-row-${r.topic}`}>
              <td class="mono strong" data-label="Topic">${r.topic}</td>
              <td class="num" data-label="QoS">${r.qos}</td>
              <td class="num" data-label="Size">${bytes(r.bytes)}</td>
              <td class="mono payload-preview" data-label="Payload" title=${r.payload ?? ''}>
                ${r.payload !== null ? preview(r.payload) : html`<span class="muted">binary</span>`}${r.truncated ? html` <span class="muted">(cut)</span>` : ''}
              </td>
              ${canWrite && html`<td class="actions">
                <button type="button" class="button button-small" data-testid=${`retained-delete-${r.topic}`} onClick=${() => remove(r.topic)}>Delete</button></td>`}
            </tr>`)}
        </tbody>
      </table>
    </div>`
}

export function Clients ({ canWrite }) {
  const clients = usePoll('/api/clients')
  const [filter, setFilter] = useState('#')
  const retained = usePoll(`/api/retained?filter=${encodeURIComponent(filter || '#')}&limit=100`)
  return html`
    <section class="card">
      <div class="card-head">
        <h2>Clients <span class="count">${clients.data ? count(clients.data.length) : ''}</span></h2>
        <button type="button" class="button button-small" onClick=${clients.refresh}>Refresh</button>
      </div>
      ${clients.error && html`<p class="form-error">${clients.error}</p>`}
      ${clients.data && html`<${ClientsTable} clients=${clients.data} canWrite=${canWrite} refresh=${clients.refresh} />`}
    </section>
    <section class="card">
      <div class="card-head">
        <h2>Retained messages <span class="count">${retained.data ? count(retained.data.length) : ''}</span></h2>
        <label class="inline-field">Filter
          <input class="mono" value=${filter} size="16" data-testid="retained-filter" onChange=${(e) => setFilter(e.currentTarget.value)} />
        </label>
      </div>
      ${retained.error && html`<p class="form-error">${retained.error}</p>`}
      ${retained.data && html`<${RetainedTable} retained=${retained.data} canWrite=${canWrite} refresh=${retained.refresh} />`}
    </section>`
}

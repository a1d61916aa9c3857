/* Dead letters (DeadLetterView): why each task died, and requeue or delete. */
import { html } from './html.js'
import { del, post, segment } from './api.js'
import { count, preview, pretty, relative, when } from './format.js'
import { runAction } from './toast.js'

const without = (ids) => (s) => {
  const gone = new Set(ids)
  const kept = s.deadLetters.filter((d) => !gone.has(d.id))
  const removed = s.deadLetters.length - kept.length
  return { ...s, deadLetters: kept, status: { ...s.status, deadLetters: Math.max(0, s.status.deadLetters - removed) } }
}

function requeued (result) {
  const skipped = result.skipped.length > 0 ? `; ${result.skipped.length} skipped (${result.skipped[0].reason})` : ''
  return `Requeued ${count(result.requeued)} task(s)${skipped}`
}

/** What the task carried: the envelope's payload, else the original submission, else the record. */
function payloadOf (d) {
  if (d.task !== null && typeof d.task === 'object' && 'payload' in d.task) return d.task.payload
  if (d.payload !== null) return d.payload
  return d.record
}

function Issues ({ issues }) {
  if (issues.length === 0) return html`<span class="muted">–</span>`
  return html`
    <ul class="issues">
      ${issues.map((i) => html`<li><span class="mono">${i.path || '/'}</span> ${i.message}</li>`)}
    </ul>`
}

function DeadRow ({ d, canWrite, patch }) {
  async function requeue () {
    const result = await runAction(() => post(`/api/dead-letters/${segment(d.id)}/requeue`), requeued)
    if (result !== undefined && result.requeued > 0) patch(without([d.id]))
  }
  async function remove () {
    if (!confirm(`Delete this ${d.taskType} dead letter for good?`)) return
    const done = await runAction(() => del(`/api/dead-letters/${segment(d.id)}`), () => 'Dead letter deleted')
    if (done !== undefined) patch(without([d.id]))
  }
  const payload = payloadOf(d)
  return html`
    <tr key=${d.id} data-testid=${`dead-row-${d.id}`}>
      <td data-label="Time" title=${d.deadAt ?? ''}>${when(d.deadAt)}<div class="muted small">${relative(d.deadAt)}</div></td>
      <td class="mono strong" data-label="Type">${d.taskType}</td>
      <td data-label="Reason">
        <span class="badge badge-error">${d.reason}</span>
        ${d.attempts !== null && html`<div class="muted small">${d.attempts} attempt(s)</div>`}
      </td>
      <td data-label="Error" class="error-text">${d.error ?? html`<span class="muted">–</span>`}</td>
      <td data-label="Issues"><${Issues} issues=${d.issues} /></td>
      <td data-label="Payload" class="payload-cell">
        <details data-testid=${`dead-payload-${d.id}`}>
          <summary class="mono">${preview(typeof payload === 'string' ? payload : JSON.stringify(payload), 40) || 'empty'}</summary>
          <pre class="code">${pretty(payload)}</pre>
        </details>
      </td>
      ${canWrite && html`
        <td class="actions">
          <button type="button" class="button button-small button-primary" data-testid=${`requeue-${d.id}`} onClick=${requeue}>Requeue</button>
          <button type="button" class="button button-small button-danger" data-testid=${`delete-${d.id}`} onClick=${remove}>Delete</button>
        </td>`}
    </tr>`
}

export function DeadLetters ({ snapshot, canWrite, patch }) {
  const letters = [...snapshot.deadLetters].sort((a, b) => (b.deadAt ?? '').localeCompare(a.deadAt ?? ''))
  const byType = new Map()
  for (const d of letters) byType.set(d.taskType, (byType.get(d.taskType) ?? 0) + 1)
  const total = snapshot.status.deadLetters

  async function requeueType (type) {
    if (!confirm(`Requeue every stored ${type} dead letter?`)) return
    const result = await runAction(() => post('/api/dead-letters/requeue', { type }), requeued)
    if (result !== undefined) {
      const skipped = new Set(result.skipped.map((s) => s.id))
      patch(without(letters.filter((d) => d.taskType === type && !skipped.has(d.id)).map((d) => d.id)))
    }
  }

  return html`
    <section class="card">
      <div class="card-head">
        <h2>Dead letters <span class="count" data-testid="dead-count">${count(total)}</span></h2>
        ${total > letters.length && html`<span class="muted">showing the newest ${count(letters.length)}</span>`}
      </div>
      ${canWrite && byType.size > 0 && html`
        <div class="toolbar">
          <span class="muted">Requeue all of a type:</span>
          ${[...byType.entries()].sort().map(([type, n]) => html`
            <button type="button" class="button button-small" data-testid=${`requeue-type-${type}`} onClick=${() => requeueType(type)}>
              <span class="mono">${type}</span> <span class="muted">(${count(n)})</span>
            </button>`)}
        </div>`}
      ${letters.length === 0
        ? html`<p class="empty" data-testid="dead-empty">No dead letters. Tasks that fail validation or run out of attempts land here.</p>`
        : html`
          <div class="table-wrap">
            <table class="table">
              <thead><tr><th>Time</th><th>Type</th><th>Reason</th><th>Error</th><th>Issues</th><th>Payload</th>${canWrite && html`<th class="actions-col"></th>`}</tr></thead>
              <tbody>${letters.map((d) => html`<${DeadRow} key=${d.id} d=${d} canWrite=${canWrite} patch=${patch} />`)}</tbody>
            </table>
          </div>`}
    </section>`
}

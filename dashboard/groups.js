/* Groups / task queues: shared subscription groups (GroupView), their depth and rate. */
import { html } from './html.js'
import { post, segment } from './api.js'
import { count, duration, rate } from './format.js'
import { runAction } from './toast.js'

const replaceGroup = (view) => (s) => ({ ...s, groups: s.groups.map((g) => (g.key === view.key ? view : g)) })

function Members ({ members }) {
  if (members.length === 0) return html`<span class="muted">0</span>`
  const detail = members.map((m) => `${m.clientId}: ${m.inflight} in flight / prefetch ${m.prefetch}`).join('\n')
  return html`<span title=${detail}>${count(members.length)}</span>`
}

function GroupRow ({ g, groupRate, canWrite, patch }) {
  const key = g.key
  async function pauseOrResume () {
    const action = g.paused ? 'resume' : 'pause'
    const view = await runAction(() => post(`/api/groups/${segment(key)}/${action}`), (v) => `${v.paused ? 'Paused' : 'Resumed'} ${key}`)
    if (view !== undefined) patch(replaceGroup(view))
  }
  async function purge () {
    if (!confirm(`Drop the ${g.depth} waiting message(s) of ${key}? Messages in flight stay.`)) return
    const done = await runAction(() => post(`/api/groups/${segment(key)}/purge`), (r) => `Purged ${count(r.purged)} message(s) from ${key}`)
    if (done !== undefined) patch(replaceGroup({ ...g, depth: Math.max(0, g.depth - done.purged), oldestAgeMs: null }))
  }
  return html`
    <tr key=${key} data-testid=${`group-row-${key}`} class=${g.paused ? 'row-paused' : ''}>
      <td data-label="Group">
        <div class="strong">${g.group}</div>
        <div class="mono muted small">${g.filter}</div>
      </td>
      <td class="num strong" data-label="Waiting" data-testid=${`group-depth-${key}`}>${count(g.depth)}</td>
      <td class="num" data-label="In flight" data-testid=${`group-inflight-${key}`}>${count(g.inflight)}</td>
      <td class="num" data-label="Members" data-testid=${`group-members-${key}`}><${Members} members=${g.members} /></td>
      <td class="num" data-label="In /s" data-testid=${`group-rate-in-${key}`}>${rate(groupRate?.in)}</td>
      <td class="num" data-label="Done /s" data-testid=${`group-rate-${key}`}>${rate(groupRate?.done)}</td>
      <td class="num" data-label="Oldest">${g.oldestAgeMs === null ? html`<span class="muted">–</span>` : duration(g.oldestAgeMs / 1000)}</td>
      <td data-label="State">
        <span class=${g.paused ? 'badge badge-warn' : 'badge badge-ok'} data-testid=${`group-state-${key}`}>${g.paused ? 'paused' : 'active'}</span>
      </td>
      ${canWrite && html`
        <td class="actions">
          <button type="button" class="button button-small" data-testid=${`group-${g.paused ? 'resume' : 'pause'}-${key}`} onClick=${pauseOrResume}>
            ${g.paused ? 'Resume' : 'Pause'}
          </button>
          <button type="button" class="button button-small button-danger" data-testid=${`group-purge-${key}`} disabled=${g.depth === 0} onClick=${purge}>Purge</button>
        </td>`}
    </tr>`
}

export function Groups ({ snapshot, history, canWrite, patch }) {
  const groups = [...snapshot.groups].sort((a, b) => a.key.localeCompare(b.key))
  return html`
    <section class="card">
      <div class="card-head">
        <h2>Groups and task queues <span class="count">${count(groups.length)}</span></h2>
        <span class="muted">${count(snapshot.status.groups.depth)} waiting · ${count(snapshot.status.groups.inflight)} in flight</span>
      </div>
      ${groups.length === 0
        ? html`<p class="empty" data-testid="groups-empty">No shared subscription group yet: one starts when a worker subscribes to <span class="mono">$share/{group}/{filter}</span>.</p>`
        : html`
          <div class="table-wrap">
            <table class="table">
              <thead><tr>
                <th>Group</th><th class="num">Waiting</th><th class="num">In flight</th><th class="num">Members</th>
                <th class="num">In /s</th><th class="num">Done /s</th><th class="num">Oldest</th><th>State</th>
                ${canWrite && html`<th class="actions-col"></th>`}
              </tr></thead>
              <tbody>
                ${groups.map((g) => html`<${GroupRow} key=${g.key} g=${g} groupRate=${history.rates.groups[g.key]} canWrite=${canWrite} patch=${patch} />`)}
              </tbody>
            </table>
          </div>`}
    </section>`
}

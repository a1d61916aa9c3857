/* Schedules (ScheduleView): periodic publishes and tasks; pause, resume, trigger. */
import { html } from './html.js'
import { post, segment } from './api.js'
import { count, preview, relative, when } from './format.js'
import { runAction } from './toast.js'

const replaceSchedule = (view) => (s) => {
  const schedules = s.schedules.map((x) => (x.name === view.name ? view : x))
  const paused = schedules.filter((x) => x.paused).length
  return { ...s, schedules, status: { ...s.status, schedules: { ...s.status.schedules, paused } } }
}

function Target ({ s }) {
  const kind = s.task !== undefined ? 'task' : 'topic'
  const payload = s.payload === undefined ? '' : typeof s.payload === 'string' ? s.payload : JSON.stringify(s.payload)
  return html`
    <span class="badge badge-muted">${kind}</span> <span class="mono">${s.task ?? s.topic}</span>
    ${payload && html`<div class="mono muted small" title=${payload}>${preview(payload, 40)}</div>`}`
}

function ScheduleRow ({ s, canWrite, patch }) {
  const name = s.name
  async function pauseOrResume () {
    const action = s.paused ? 'resume' : 'pause'
    const view = await runAction(() => post(`/api/schedules/${segment(name)}/${action}`), (v) => `${v.paused ? 'Paused' : 'Resumed'} ${name}`)
    if (view !== undefined) patch(replaceSchedule(view))
  }
  async function trigger () {
    const view = await runAction(() => post(`/api/schedules/${segment(name)}/trigger`), () => `Triggered ${name}`)
    if (view !== undefined) patch(replaceSchedule(view))
  }
  return html`
    <tr key=${name} data-testid=${`schedule-row-${name}`} class=${s.paused ? 'row-paused' : ''}>
      <td data-label="Name"><div class="strong">${name}</div><div class="muted small">${s.source}</div></td>
      <td data-label="Cron"><span class="mono">${s.cron}</span><div class="muted small">${s.timezone}</div></td>
      <td data-label="Target"><${Target} s=${s} /></td>
      <td data-label="Next run" title=${s.nextRunAt ?? ''} data-testid=${`schedule-next-${name}`}>
        ${s.paused ? html`<span class="muted">–</span>` : when(s.nextRunAt)}
        ${!s.paused && s.nextRunAt && html`<div class="muted small">${relative(s.nextRunAt)}</div>`}
      </td>
      <td data-label="Last run" title=${s.lastRunAt ?? ''}>
        ${s.lastRunAt ? when(s.lastRunAt) : html`<span class="muted">never</span>`}
        ${s.lastRunAt && html`<div class="muted small">${relative(s.lastRunAt)}</div>`}
      </td>
      <td data-label="State">
        <span class=${s.paused ? 'badge badge-warn' : 'badge badge-ok'} data-testid=${`schedule-state-${name}`}>${s.paused ? 'paused' : 'active'}</span>
      </td>
      ${canWrite && html`
        <td class="actions">
          <button type="button" class="button button-small" data-testid=${`schedule-${s.paused ? 'resume' : 'pause'}-${name}`} onClick=${pauseOrResume}>
            ${s.paused ? 'Resume' : 'Pause'}
          </button>
          <button type="button" class="button button-small" data-testid=${`schedule-trigger-${name}`} onClick=${trigger}>Trigger</button>
        </td>`}
    </tr>`
}

export function Schedules ({ snapshot, canWrite, patch }) {
  const schedules = [...snapshot.schedules].sort((a, b) => a.name.localeCompare(b.name))
  return html`
    <section class="card">
      <div class="card-head">
        <h2>Schedules <span class="count">${count(schedules.length)}</span></h2>
        <span class="muted">${count(snapshot.status.schedules.paused)} paused</span>
      </div>
      ${schedules.length === 0
        ? html`<p class="empty" data-testid="schedules-empty">No schedule. Add them in the config file's <span class="mono">schedules</span> or with PUT /api/schedules/{name}.</p>`
        : html`
          <div class="table-wrap">
            <table class="table">
              <thead><tr><th>Name</th><th>Cron</th><th>Target</th><th>Next run</th><th>Last run</th><th>State</th>${canWrite && html`<th class="actions-col"></th>`}</tr></thead>
              <tbody>${schedules.map((s) => html`<${ScheduleRow} key=${s.name} s=${s} canWrite=${canWrite} patch=${patch} />`)}</tbody>
            </table>
          </div>`}
    </section>`
}

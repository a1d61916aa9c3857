/* Overview: the broker at a glance, from StatusView (broker/admin/admin-api.ts). */
import { html } from './html.js'
import { bytes, count, duration, rate, when } from './format.js'
import { ThroughputChart } from './throughput-chart.js'

function Stat ({ id, label, value, detail, href }) {
  const body = html`
    <div class="stat-label">${label}</div>
    <div class="stat-value" data-testid=${`stat-${id}`}>${value}</div>
    ${detail && html`<div class="stat-detail">${detail}</div>`}`
  return href
    ? html`<a class="card stat stat-link" href=${href}>${body}</a>`
    : html`<div class="card stat">${body}</div>`
}

export function Overview ({ snapshot, history }) {
  const s = snapshot.status
  const { rates } = history
  return html`
    <section class="stats">
      <${Stat} id="connections" label="Connections" value=${count(s.connectedClients)}
        detail=${`${count(s.queuedMessages)} queued for offline sessions`} href="#/clients" />
      <${Stat} id="rate-in" label="Messages in /s" value=${rate(rates.in)} detail=${`${count(s.traffic.messagesReceived)} since start`} />
      <${Stat} id="rate-out" label="Messages out /s" value=${rate(rates.out)} detail=${`${count(s.traffic.messagesSent)} since start`} />
      <${Stat} id="uptime" label="Uptime" value=${duration(s.uptimeSeconds)} detail=${`since ${when(s.startedAt)}`} />
      <${Stat} id="groups" label="Queued in groups" value=${count(s.groups.depth)}
        detail=${`${count(s.groups.count)} groups · ${count(s.groups.inflight)} in flight`} href="#/groups" />
      <${Stat} id="dead-letters" label="Dead letters" value=${count(s.deadLetters)} detail="stored until requeued or deleted" href="#/dead" />
      <${Stat} id="schedules" label="Schedules" value=${count(s.schedules.count)} detail=${`${count(s.schedules.paused)} paused`} href="#/schedules" />
      <${Stat} id="memory" label="Memory (RSS)" value=${bytes(s.memory.rssBytes)} detail=${`heap ${bytes(s.memory.heapUsedBytes)}`} />
    </section>

    <section class="card">
      <div class="card-head">
        <h2>Throughput</h2>
        <span class="muted">PUBLISH messages per second</span>
      </div>
      <${ThroughputChart} points=${history.points} />
    </section>

    <section class="card">
      <div class="card-head"><h2>Broker</h2></div>
      <dl class="facts">
        <dt>Version</dt><dd data-testid="broker-version">${s.version}</dd>
        <dt>Id</dt><dd class="mono">${s.id}</dd>
        <dt>Log level</dt><dd>${s.logLevel}</dd>
        <dt>Retained</dt><dd><a href="#/clients" data-testid="stat-retained">${count(s.retainedMessages)} messages</a></dd>
        <dt>Delayed</dt><dd>${count(s.delayedPending)} pending</dd>
        <dt>Traffic</dt><dd>${bytes(s.traffic.bytesReceived)} in · ${bytes(s.traffic.bytesSent)} out</dd>
        <dt>Listeners</dt>
        <dd>${s.listeners.map((l) => html`<span class="chip mono">${l.kind} ${l.host}:${l.port}</span>`)}</dd>
      </dl>
    </section>`
}

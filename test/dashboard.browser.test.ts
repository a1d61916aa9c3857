import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import type { Browser, Page } from 'playwright-core'
import { createBroker, type Broker } from '../broker/index.js'
import { connect, createWorker, UnrecoverableError, type Client, type Worker } from '../client/index.js'
import { artifactsDir, CHROMIUM_PATH, hasChromium, launchChromium, publishScreenshot, screenshot } from './helpers/browser.js'
import { writeUsers } from './helpers/security-fixtures.js'
import { testSchemas } from './helpers/task-schemas.js'
import { tempRoot } from './helpers/temp-root.js'
import { waitUntil } from './helpers/wait.js'

/*
 * The dashboard (dashboard/, docs/operations.md) in a real browser against a
 * real broker: log in, watch a task queue fill and drain live, requeue a dead
 * letter and pause a schedule by clicking, and look right on a phone.
 * Screenshots of every page go to test-artifacts/dashboard/ (git-ignored);
 * FLEETQ_UPDATE_SCREENSHOTS=1 also copies the screenshots the README links to docs/dashboard*.png.
 */

const ADMIN = { user: 'admin', password: 'admin-secret-1' }
const DEVICE = { user: 'device', password: 'device-secret-1' }
const GROUP = 'thumbnail/tasks/thumbnail'
const SCHEDULE = 'nightly-report'
const TASKS = 20

interface Thumb { imageUrl: string, width: number, height: number }
const thumb = (n: number, name = 'img'): Thumb => ({ imageUrl: `https://example.com/${name}/${n}.png`, width: n + 1, height: 1 })

const suite = hasChromium() ? describe : describe.skip
const title = hasChromium()
  ? 'dashboard in headless chromium'
  : `dashboard in headless chromium (skipped: ${CHROMIUM_PATH} is missing; apt-get install chromium)`

suite(title, () => {
  const temp = tempRoot('fleetq-dashboard-')
  let broker: Broker
  let baseUrl: string
  let mqttUrl: string
  let browser: Browser
  let page: Page
  let shots: string
  const clients: Client[] = []
  const raws: MqttClient[] = []
  const workers: Worker[] = []
  /** imageUrl → how many times a worker finished it. */
  const done = new Map<string, number>()
  const pageErrors: string[] = []

  beforeAll(async () => {
    const dir = await temp.freshDir('broker')
    const usersFile = await writeUsers(join(dir, 'users'), { [ADMIN.user]: ADMIN.password, [DEVICE.user]: DEVICE.password })
    broker = await createBroker({
      port: 0,
      http: { port: 0 },
      dataDir: join(dir, 'data'),
      logLevel: 'silent',
      auth: { usersFile, admins: [ADMIN.user] },
      schedules: [{ name: SCHEDULE, cron: '0 3 * * *', timezone: 'Europe/Paris', topic: 'reports/nightly', payload: { scope: 'fleet' } }]
    })
    const http = broker.endpoints.find((e) => e.kind === 'http')
    if (http === undefined) throw new Error('the broker opened no HTTP listener')
    baseUrl = `http://127.0.0.1:${http.port}`
    mqttUrl = `mqtt://127.0.0.1:${broker.port}`
    shots = await artifactsDir('dashboard')
    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
    page.setDefaultTimeout(15_000)
    page.on('pageerror', (err) => pageErrors.push(err.message))
    // Purge asks confirm(); nothing in this test should, but a dialog left open would hang the page.
    page.on('dialog', (dialog) => { void dialog.accept() })
  })

  afterAll(async () => {
    await browser?.close()
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await Promise.all(raws.splice(0).map((c) => c.endAsync(true)))
    await broker?.close()
  })

  async function client (): Promise<Client> {
    const c = await connect(mqttUrl, { username: DEVICE.user, password: DEVICE.password, schemas: await testSchemas(), reconnectPeriod: 100 })
    clients.push(c)
    return c
  }

  /** A thumbnail worker: counts what it finishes; the first run of a `poison` task fails for good. */
  async function startWorker (): Promise<Worker> {
    const failed = new Set<string>()
    const worker = await createWorker(await client(), 'thumbnail', (payload: Thumb) => {
      if (payload.imageUrl.includes('/poison/') && !failed.has(payload.imageUrl)) {
        failed.add(payload.imageUrl)
        throw new UnrecoverableError('image host answered 404')
      }
      done.set(payload.imageUrl, (done.get(payload.imageUrl) ?? 0) + 1)
      return { ok: true }
    })
    workers.push(worker)
    return worker
  }

  /** A device publishing bare payloads with plain mqtt.js: the broker's task gate wraps them. */
  async function device (): Promise<MqttClient> {
    const raw = await mqtt.connectAsync(mqttUrl, { protocolVersion: 4, reconnectPeriod: 0, username: DEVICE.user, password: DEVICE.password, clientId: 'device-7' })
    raws.push(raw)
    return raw
  }

  const byTestId = (id: string) => page.getByTestId(id)
  /** Waits (Playwright polling) until the element's whole text is `text`. */
  const textIs = (id: string, text: string) => byTestId(id).filter({ hasText: new RegExp(`^\\s*${text}\\s*$`) }).waitFor()
  const open = async (route: string): Promise<void> => {
    await byTestId(`nav-${route}`).click()
    await byTestId(`page-${route}`).waitFor()
  }

  it('asks for credentials, refuses wrong ones, and shows who is logged in', async () => {
    await page.goto(`${baseUrl}/`)
    await byTestId('login-form').waitFor()
    await publishScreenshot(await screenshot(page, shots, 'login'), 'dashboard-login.png')

    await byTestId('login-user').fill(ADMIN.user)
    await byTestId('login-password').fill('wrong')
    await byTestId('login-submit').click()
    await byTestId('login-error').waitFor()

    await byTestId('login-password').fill(ADMIN.password)
    await byTestId('login-submit').click()
    await textIs('whoami-user', ADMIN.user)
    await textIs('whoami-role', 'admin')
    // the live feed is up: the overview shows the broker's figures
    await byTestId('stream-status').and(page.locator('[data-state="live"]')).waitFor()
    await textIs('stat-schedules', '1')
  })

  it('shows a queue filling while no worker runs, then draining to 0 as a worker completes the tasks', async () => {
    // The group exists once a worker has subscribed; with it gone, tasks wait in the queue.
    const first = await startWorker()
    await first.close({ timeoutMs: 500 })
    await open('groups')
    await byTestId(`group-row-${GROUP}`).waitFor()
    await textIs(`group-members-${GROUP}`, '0')

    const publisher = await device()
    for (let n = 0; n < TASKS; n++) {
      await publisher.publishAsync('tasks/thumbnail', JSON.stringify(thumb(n)), { qos: 1 })
      if (n === 4) await textIs(`group-depth-${GROUP}`, '5')
    }
    await textIs(`group-depth-${GROUP}`, String(TASKS))
    await publishScreenshot(await screenshot(page, shots, 'groups-waiting'), 'dashboard-groups.png')

    await startWorker()
    await textIs(`group-depth-${GROUP}`, '0')
    await textIs(`group-members-${GROUP}`, '1')
    await waitUntil(() => done.size === TASKS, () => `${TASKS} tasks done (got ${done.size})`)
    await screenshot(page, shots, 'groups')
  })

  it('requeues a dead letter with a click: the row goes and a worker runs the task again', async () => {
    const poison = thumb(99, 'poison')
    const publisher = raws[0]!
    await publisher.publishAsync('tasks/thumbnail', JSON.stringify(poison), { qos: 1 })
    await waitUntil(() => broker.admin.deadLetters('thumbnail', 10).length === 1, 'the dead letter of the poison task')
    const [letter] = broker.admin.deadLetters('thumbnail', 10)
    const id = letter!.id

    await open('dead')
    await byTestId(`dead-row-${id}`).waitFor()
    await expect(byTestId(`dead-row-${id}`).textContent()).resolves.toContain('unrecoverable')
    await byTestId(`dead-payload-${id}`).locator('summary').click()
    await publishScreenshot(await screenshot(page, shots, 'dead-letters'), 'dashboard-dead-letters.png')

    await byTestId(`requeue-${id}`).click()
    await byTestId(`dead-row-${id}`).waitFor({ state: 'detached' })
    await byTestId('toast').filter({ hasText: 'Requeued 1 task' }).waitFor()
    await waitUntil(() => done.get(poison.imageUrl) === 1, 'the requeued task done by the worker')
    expect(broker.admin.deadLetters('thumbnail', 10)).toEqual([])
    await byTestId('dead-empty').waitFor()
  })

  it('pauses a schedule with a click', async () => {
    await open('schedules')
    await textIs(`schedule-state-${SCHEDULE}`, 'active')
    await byTestId(`schedule-pause-${SCHEDULE}`).click()
    await textIs(`schedule-state-${SCHEDULE}`, 'paused')
    await byTestId(`schedule-resume-${SCHEDULE}`).waitFor()
    expect(broker.admin.schedule(SCHEDULE).paused).toBe(true)
    await publishScreenshot(await screenshot(page, shots, 'schedules'), 'dashboard-schedules.png')
  })

  it('shows a read-only user no buttons that change anything, and logs out', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } })
    try {
      const reader = await context.newPage()
      reader.setDefaultTimeout(15_000)
      await reader.goto(`${baseUrl}/#/groups`)
      await reader.getByTestId('login-user').fill(DEVICE.user)
      await reader.getByTestId('login-password').fill(DEVICE.password)
      await reader.getByTestId('login-submit').click()
      await reader.getByTestId('whoami-role').filter({ hasText: 'read' }).waitFor()
      await reader.getByTestId(`group-row-${GROUP}`).waitFor()
      await expect(reader.locator('main button').count()).resolves.toBe(0)
      await reader.getByTestId('nav-schedules').click()
      await reader.getByTestId(`schedule-row-${SCHEDULE}`).waitFor()
      await expect(reader.locator('main button').count()).resolves.toBe(0)

      await reader.getByTestId('logout').click()
      await reader.getByTestId('login-form').waitFor()
      await reader.reload()
      await reader.getByTestId('login-form').waitFor()
    } finally {
      await context.close()
    }
  })

  it('lists the connected clients and their subscriptions', async () => {
    await open('clients')
    await byTestId('client-row-device-7').waitFor()
    await expect(page.locator('[data-testid^="client-row-"]', { hasText: '$share/thumbnail/tasks/thumbnail' }).count()).resolves.toBeGreaterThan(0)
    await publishScreenshot(await screenshot(page, shots, 'clients'), 'dashboard-clients.png')
  })

  it('overview: live throughput, and a layout that fits a phone', async () => {
    await open('overview')
    // the chart has drawn points from successive snapshots
    await page.locator('[data-testid="throughput-chart"]:not([data-points="0"]):not([data-points="1"])').waitFor()
    await textIs('stat-schedules', '1')
    await textIs('stat-dead-letters', '0')

    // Steady telemetry, so the rates and the chart show traffic: the rate cell leaves 0.0.
    const telemetry = raws[0]!
    let reading = 0
    const feed = setInterval(() => { void telemetry.publishAsync(`fleet/device-7/telemetry`, JSON.stringify({ reading: reading++ }), { qos: 0 }) }, 20)
    try {
      await byTestId('stat-rate-in').filter({ hasNotText: /^0\.0$/ }).waitFor()
    } finally {
      clearInterval(feed)
    }
    // the status line of the last action would cover part of the page
    if (await byTestId('toast').isVisible()) await byTestId('toast-close').click()
    await byTestId('toast').waitFor({ state: 'detached' })
    const desktop = await screenshot(page, shots, 'overview')
    await publishScreenshot(desktop, 'dashboard.png')

    await page.setViewportSize({ width: 375, height: 812 })
    await byTestId('nav-schedules').waitFor()
    // nothing wider than the screen: no sideways scrolling on a phone
    await expect(page.evaluate('document.documentElement.scrollWidth')).resolves.toBeLessThanOrEqual(375)
    const phone = await screenshot(page, shots, 'overview-phone')
    await publishScreenshot(phone, 'dashboard-phone.png')
    expect(pageErrors).toEqual([])
  })
})

import { existsSync } from 'node:fs'
import { copyFile, mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'

/*
 * A real browser for the dashboard tests: Debian's chromium (the `chromium`
 * package, which .ci/run installs), driven headless by playwright-core, so
 * no browser is downloaded at install time.
 */

export const CHROMIUM_PATH = '/usr/bin/chromium'

export const hasChromium = (): boolean => existsSync(CHROMIUM_PATH)

/** Launches headless chromium with nothing that reaches beyond the machine (updates, sync, QUIC probes). */
export function launchChromium (): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // --no-sandbox: CI containers often run as root, where chromium's sandbox refuses to start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 20_000
  })
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** test-artifacts/{name}/ (git-ignored): screenshots a run leaves to look at. */
export async function artifactsDir (name: string): Promise<string> {
  const dir = join(repoRoot, 'test-artifacts', name)
  await mkdir(dir, { recursive: true })
  return dir
}

/** Saves a full-page screenshot as `{dir}/{name}.png`; resolves with its path. */
export async function screenshot (page: Page, dir: string, name: string): Promise<string> {
  const path = join(dir, `${name}.png`)
  await page.screenshot({ path, fullPage: true, animations: 'disabled' })
  return path
}

/**
 * With FLEETQ_UPDATE_SCREENSHOTS=1, copies an artifact into docs/ (the
 * README shows docs/dashboard.png). A normal run leaves docs/ alone.
 */
export async function publishScreenshot (artifact: string, docsName: string): Promise<void> {
  if (process.env['FLEETQ_UPDATE_SCREENSHOTS'] !== '1') return
  await copyFile(artifact, join(repoRoot, 'docs', docsName))
}

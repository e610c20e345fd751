import { defineConfig } from '@playwright/test';
import type { ProviderOptions } from './tests/helpers';

/**
 * Real Chromium (Debian's, never a downloaded one) against the real app on :3000 and the
 * embedded OpenID Provider on :4000, both started by scripts/e2e.sh; and, for the Redis journey
 * only, a second app on :3100 (provider :4100) whose sessions live in Redis; and for silent renew,
 * a third on :3200 (provider :4200) that renews through a hidden iframe only; and for interop, a
 * fifth on :3500 whose provider is panva's oidc-provider on :4500 (end2end/interop/provider.mjs):
 * the `interop` project runs the journeys tagged @interop again there, and tests/interop.spec.ts;
 * and for the fault panel, a sixth on :3600 (provider :4600, end2end/provider-faults.toml).
 * The journeys run side by side: most of a renewal journey is waiting for tokens to expire, and
 * each journey that counts figures at the provider signs in as a user of its own (tests/users.ts).
 */
export default defineConfig<ProviderOptions>({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  timeout: 120_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: Number(process.env.E2E_WORKERS ?? 4),
  // One retry: a journey that passes only on its second run is listed as "flaky" in the summary,
  // to be looked into, rather than failing the whole suite over a loaded machine.
  retries: 1,
  reporter: [['list']],
  projects: [
    { name: 'sqlite', testIgnore: /(redis|iframe|cross-site|interop|faults)\.spec\.ts/ },
    {
      // One journey at a time: the slow provider and the outage are switches of its whole provider.
      name: 'faults',
      testMatch: /faults\.spec\.ts/,
      fullyParallel: false,
      use: { baseURL: process.env.FAULTS_APP_URL ?? 'http://localhost:3600' },
    },
    {
      name: 'interop',
      testMatch: /(sign-in|renewal|logout|interop)\.spec\.ts/,
      grep: [/@interop/, /interop with panva/],
      use: {
        baseURL: process.env.INTEROP_APP_URL ?? 'http://localhost:3500',
        providerUrl: process.env.INTEROP_PROVIDER_URL ?? 'http://localhost:4500',
      },
    },
    {
      name: 'cross-site',
      testMatch: /cross-site\.spec\.ts/,
      use: { baseURL: process.env.CROSS_SITE_APP_URL ?? 'http://localhost:3300' },
    },
    { name: 'iframe', testMatch: /iframe\.spec\.ts/, use: { baseURL: process.env.IFRAME_APP_URL ?? 'http://localhost:3200' } },
    { name: 'redis', testMatch: /redis\.spec\.ts/, use: { baseURL: process.env.REDIS_APP_URL ?? 'http://localhost:3100' } },
  ],
  use: {
    baseURL: process.env.APP_URL ?? 'http://localhost:3000',
    browserName: 'chromium',
    headless: true,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
});

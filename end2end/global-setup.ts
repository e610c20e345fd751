/** Waits until the app answers: cargo-leptos starts the server and the tests at the same time. */
export default async function globalSetup(): Promise<void> {
  const url = `${process.env.APP_URL ?? 'http://localhost:3000'}/auth/session`.replace('localhost', '127.0.0.1');
  const deadline = Date.now() + 120_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
      lastError = new Error(`HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the app did not come up at ${url}: ${String(lastError)}`);
}

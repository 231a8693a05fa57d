// Drives Debian's chromium through hoist server's dashboard, as a person would:
// log in with an API token, open the run, watch its log lines arrive, approve the
// prod gate, and see prod serve the new version. A screenshot of every page goes to
// $OUT. crates/hoist/tests/server.rs starts the server and the run, and answers the
// lines this prints ("page open").
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";

const { HOIST_URL, HOIST_TOKEN, HOIST_RUN, PROD_URL, PROD_BODY, OUT } = process.env;
mkdirSync(OUT, { recursive: true });
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
const step = (what) => console.log(what);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });

  // No session: the login page.
  await page.goto(`${HOIST_URL}/runs/${HOIST_RUN}`);
  await page.waitForURL(/\/login/);
  await shot("login");
  await page.getByLabel("API token").fill(HOIST_TOKEN);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(new RegExp(`/runs/${HOIST_RUN}$`));

  // The runs list links the run.
  await page.goto(`${HOIST_URL}/runs`);
  await page.getByRole("link", { name: `#${HOIST_RUN}` }).waitFor();
  await shot("runs");

  // The run's page: the test stage's log so far, then lines arriving live.
  await page.getByRole("link", { name: `#${HOIST_RUN}` }).click();
  const testLog = page.getByLabel("Log of test");
  await testLog.getByText("started").waitFor();
  await shot("run");
  step("page open");
  await lines.next(); // the test lets the step finish
  await testLog.getByText("flagged").waitFor({ timeout: 120000 });
  step("log arrived");

  // The gate appears live.
  const approve = page.getByRole("button", { name: "Approve prod" });
  await approve.waitFor({ state: "visible", timeout: 300000 });
  await shot("gate");

  // Meanwhile the overview shows dev on the run's image and nothing in prod.
  // (The run's image, `web@sha256:...`, as the API records it.)
  const api = await page.request.get(`${HOIST_URL}/api/v1/runs/${HOIST_RUN}`, {
    headers: { Authorization: `Bearer ${HOIST_TOKEN}` },
  });
  const image = (await api.json()).image;
  const overview = await context.newPage(); // a tab of the same session
  await overview.goto(`${HOIST_URL}/`);
  const version = (env) => overview.locator(`tr[data-service="${env}"] .version`);
  await version("web-dev").getByText(image).waitFor();
  if (await overview.locator('tr[data-service="web-prod"] .version').count() !== 0) {
    throw new Error("prod runs something before the approval");
  }
  await overview.screenshot({ path: `${OUT}/overview-before.png`, fullPage: true });

  // Approve.
  await page.bringToFront();
  await approve.click();
  await page.locator("#run-status", { hasText: "succeeded" }).waitFor({ timeout: 300000 });
  // The page reloads itself once the run ended: the ended run's page.
  await page.locator('#live[data-final="true"]').waitFor({ state: "attached" });
  await shot("succeeded");
  step("run succeeded");

  // The overview shows prod's version changed to the run's image.
  await overview.reload();
  await version("web-prod").getByText(image).waitFor();
  await overview.screenshot({ path: `${OUT}/overview.png`, fullPage: true });
  step("overview shows prod on it");
  await overview.getByRole("link", { name: "web-prod" }).click();
  await overview.getByRole("heading", { name: "Deployments" }).waitFor();
  // Two samples of the proxy's counts make the first point of the charts.
  await overview.getByText("tasks live").waitFor({ timeout: 20000 });
  await overview.screenshot({ path: `${OUT}/environment.png`, fullPage: true });

  // The images page, and the image's scan report.
  await overview.goto(`${HOIST_URL}/images`);
  await overview.getByRole("heading", { name: "Images" }).waitFor();
  await overview.screenshot({ path: `${OUT}/images.png`, fullPage: true });
  await overview.getByRole("link", { name: `Scan report of run #${HOIST_RUN}` }).click();
  await overview.getByText("findings shown").waitFor();
  await overview.screenshot({ path: `${OUT}/scan.png`, fullPage: true });

  // Prod serves the run's version (in a tab of its own).
  const prod = await context.newPage();
  await prod.goto(PROD_URL);
  await prod.getByText(PROD_BODY).waitFor();
  await prod.screenshot({ path: `${OUT}/prod.png` });
  step("prod serves it");
} finally {
  await browser.close();
  stdin.close();
}

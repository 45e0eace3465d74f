/**
 * What an operator at a terminal sees and does: the spinner, NO_COLOR, and Ctrl-C. These run
 * syncctl on a real pseudo-terminal (script(1), util-linux): a piped child is no test of Ctrl-C.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCrmServer, type CrmServer } from '../../fixtures/crm/server.js';
import { startInventoryServer } from '../../fixtures/inventory/server.js';
import { isolatedEnv, runSyncctl, waitFor } from '../helpers/cli.js';
import { firstRound, publishAll, SourceWorld } from '../helpers/consume-data.js';
import { createHarness, writeLog, type Harness } from '../helpers/consume-harness.js';
import { testBrokers } from '../helpers/kafka.js';
import { startSyncctlOnPty, type PtyChild } from '../helpers/pty.js';
import { tempDir } from './fetch-helpers.js';

const TOKEN = 'crm-terminal-token';
// ESC [ 3x m: a foreground colour (SGR 30–39).
const SGR_COLOUR = new RegExp(String.raw`\u001b\[3\dm`);
const children: PtyChild[] = [];
const servers: CrmServer[] = [];
const harnesses: Harness[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
  while (servers.length > 0) await servers.pop()?.close();
  for (const h of harnesses.splice(0)) await h.close();
});

async function crm(latencyMs: number, count = 1000): Promise<CrmServer> {
  const server = await startCrmServer({ seed: 5, count, products: 20, token: TOKEN, faults: { latencyMs } });
  servers.push(server);
  return server;
}

function fetchArgs(server: CrmServer, extraEnv: Record<string, string> = {}) {
  const dir = tempDir();
  const env = isolatedEnv({
    SYNCCTL_CRM_URL: server.url,
    SYNCCTL_CRM_TOKEN: TOKEN,
    SYNCCTL_STATE: join(dir, 'state.db'),
    ...extraEnv,
  });
  const args = [
    'fetch',
    '--source',
    'crm',
    '--full',
    '--crm-page-size',
    '10',
    '--out',
    join(dir, 'x.ndjson'),
  ];
  return { args, env };
}

function fetchOnPty(server: CrmServer, extraEnv: Record<string, string> = {}): PtyChild {
  const { args, env } = fetchArgs(server, extraEnv);
  const child = startSyncctlOnPty(args, env);
  children.push(child);
  return child;
}

describe('Ctrl-C on a terminal', () => {
  it('fetch: the first Ctrl-C stops after the page in flight with the summary and exit 75', async () => {
    const child = fetchOnPty(await crm(250));
    await waitFor('the spinner counting pages', () => /crm: [1-9]\d* record\(s\)/.test(child.output()));
    child.ctrlC();
    const exit = await Promise.race([
      child.exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`still running after Ctrl-C:\n${child.output()}`)), 30_000),
      ),
    ]);
    const output = child.output();
    expect(exit.code, output).toBe(75);
    expect(output).toMatch(/SIGINT: finishing the page in flight/);
    expect(output).toMatch(/crm full: interrupted — \d+ record\(s\)/);
    expect(output).toMatch(/fetch interrupted; \d+ page\(s\) with \d+ record\(s\) before it are written/);
  });

  it('consume: the first Ctrl-C delivers what was read, prints the summary and exits 0', async () => {
    const h = await createHarness('sqlite', { faults: { latencyMs: 25 } });
    harnesses.push(h);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 300, 30);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const child = startSyncctlOnPty(
      [...h.cliArgs(), '--batch-size', '10', '--shutdown-timeout', '20'],
      isolatedEnv(h.cliEnv()),
    );
    children.push(child);
    await waitFor('deliveries', async () => (await writeLog(h.server)).length >= 30);
    expect(child.output()).toMatch(/consuming…/);
    child.ctrlC();
    const exit = await child.exited;
    const output = child.output();
    expect(exit.code, output).toBe(0);
    expect(output).toMatch(/SIGINT: finishing the batch in flight/);
    expect(output).toMatch(/consumed \d+ message\(s\) from /);
    expect(output).toMatch(/delivered \d+ unified record\(s\)/);
  });

  it('consume: a second Ctrl-C quits at once, without waiting for the delivery in flight', async () => {
    // Every Analytics answer takes 2.5 s, so delivering what was read on the way out would take long.
    const h = await createHarness('sqlite', { faults: { latencyMs: 2500 } });
    harnesses.push(h);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 100, 10);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const child = startSyncctlOnPty(
      [...h.cliArgs(), '--batch-size', '5', '--max-delivery-delay', '0', '--shutdown-timeout', '60'],
      isolatedEnv(h.cliEnv()),
    );
    children.push(child);
    await waitFor('a delivery in flight', () => h.server.stats().length > 0);
    child.ctrlC();
    await waitFor('the first Ctrl-C to be acknowledged', () => /SIGINT: finishing/.test(child.output()));
    child.ctrlC();
    const exit = await child.exited;
    expect(exit.code, child.output()).toBe(130);
    expect(child.output()).not.toMatch(/consumed \d+ message\(s\)/);
  });
});

describe('the spinner', () => {
  it('is coloured on a terminal, and not at all with NO_COLOR set', async () => {
    const server = await crm(100, 60);
    const coloured = fetchOnPty(server);
    expect((await coloured.exited).code, coloured.output()).toBe(0);
    expect(coloured.output()).toMatch(/crm: \d+ record\(s\)/);
    expect(coloured.output()).toMatch(SGR_COLOUR);

    const plain = fetchOnPty(server, { NO_COLOR: '1' });
    expect((await plain.exited).code, plain.output()).toBe(0);
    expect(plain.output()).toMatch(/crm: \d+ record\(s\)/);
    expect(plain.output()).not.toMatch(SGR_COLOUR);
  });
});

describe('progress', () => {
  it('fetch shows live pages, records and records/s on a terminal', async () => {
    const child = fetchOnPty(await crm(100, 200));
    await waitFor('a live count with a rate', () =>
      /crm: [1-9]\d* record\(s\) in [1-9]\d* page\(s\), \d+ records\/s/.test(child.output()),
    );
    expect((await child.exited).code, child.output()).toBe(0);
  });

  it('consume --once shows consumed, delivered, lag left and records/s on a terminal', async () => {
    const h = await createHarness('sqlite', { faults: { latencyMs: 50 } });
    harnesses.push(h);
    const world = new SourceWorld();
    const { customerEnvelopes, productEnvelopes } = firstRound(world, 200, 20);
    await publishAll([
      { topic: h.productTopic, envelopes: productEnvelopes },
      { topic: h.customerTopic, envelopes: customerEnvelopes },
    ]);
    const child = startSyncctlOnPty(
      [...h.cliArgs(), '--once', '--batch-size', '10', '--session-timeout', '6'],
      isolatedEnv(h.cliEnv()),
    );
    children.push(child);
    const exit = await child.exited;
    const output = child.output();
    expect(output).toMatch(/consumed \d+, delivered \d+, lag left \d+, \d+ records\/s/);
    // A first join can meet a loading coordinator (retried; only its warning differs).
    expect(exit.code, output).toBe(0);
  });

  it('run shows each step with its live counts on a terminal', async () => {
    const server = await crm(30, 150);
    const inventory = await startInventoryServer({ seed: 5, count: 20, user: 'u', password: 'p-terminal' });
    const h = await createHarness('sqlite');
    harnesses.push(h);
    try {
      const env = isolatedEnv({
        ...h.cliEnv(),
        SYNCCTL_CRM_URL: server.url,
        SYNCCTL_CRM_TOKEN: TOKEN,
        SYNCCTL_CRM_PAGE_SIZE: '10',
        SYNCCTL_INVENTORY_WSDL: inventory.wsdlUrl,
        SYNCCTL_INVENTORY_USER: 'u',
        SYNCCTL_INVENTORY_PASSWORD: 'p-terminal',
      });
      const args = ['--brokers', testBrokers(), '--state', h.state, 'run', '--group', h.group];
      args.push('--customer-topic', h.customerTopic, '--product-topic', h.productTopic);
      args.push('--dlq-topic', h.dlqTopic, '--session-timeout', '6');
      const child = startSyncctlOnPty(args, env);
      children.push(child);
      const exit = await child.exited;
      const output = child.output();
      expect(exit.code, output).toBe(0);
      expect(output).toMatch(/fetch:crm: records [1-9]\d*, pages [1-9]\d*/);
    } finally {
      await inventory.close();
    }
  });

  it('nothing animated and no escape sequence when not a terminal, or under CI on one', async () => {
    const server = await crm(20, 60);
    const { args, env } = fetchArgs(server);
    const piped = await runSyncctl(args, { env });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout + piped.stderr).not.toContain('\u001b');
    expect(piped.stdout).toMatch(/crm full: completed — 60 record\(s\)/);

    const ci = fetchOnPty(server, { CI: 'true' });
    expect((await ci.exited).code, ci.output()).toBe(0);
    expect(ci.output()).not.toContain('\u001b');
    expect(ci.output()).not.toMatch(/records\/s/);
    const quiet = startSyncctlOnPty(['--quiet', ...fetchArgs(server).args], fetchArgs(server).env);
    children.push(quiet);
    expect((await quiet.exited).code, quiet.output()).toBe(0);
    expect(quiet.output()).not.toContain('\u001b');
  });
});

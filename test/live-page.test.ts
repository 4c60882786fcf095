// The live page in a real browser: Debian's Chromium, headless, driven by
// playwright-core, loads the page while `netrr demo` runs, sees the counts
// change, clicks the divergence and finds the differing byte highlighted on
// both sides. The screenshot is kept in artifacts/live-page.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { Demo } from '../src/app/demo.ts';
import { DEFAULT_DEMO_TRAFFIC } from '../src/engine/demo-traffic.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { REPO_ROOT } from './helpers/run.ts';

const CHROMIUM = process.env.NETRR_CHROMIUM ?? '/usr/bin/chromium';

test('the live page in Chromium during a demo: counts change, a divergence shows both sides\' bytes with the differing one highlighted', async () => {
  const lines: string[] = [];
  const demo = new Demo({ durationMs: 5000, traffic: { ...DEFAULT_DEMO_TRAFFIC, fileBytes: 2_000_000, divergeSegment: 300, divergeOffset: 100 }, host: '127.0.0.1', port: 0, lingerMs: 0, log: (l) => lines.push(l) });
  const running = demo.run();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    await waitFor(() => lines.some((l) => l.includes('live page at')), 10_000, 'the page URL');
    const url = /live page at (\S+)/.exec(lines.find((l) => l.includes('live page at'))!)![1]!;
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    await page.goto(url);
    const frames = async (): Promise<number> => Number(await page.textContent('#world-frames'));
    // Page-side predicates as strings: this project compiles without the DOM's types.
    await page.waitForFunction("Number(document.querySelector('#world-frames').textContent) > 0", undefined, { timeout: 10_000 });
    const first = await frames();
    await page.waitForFunction(`Number(document.querySelector('#world-frames').textContent) > ${first}`, undefined, { timeout: 10_000 });
    assert.ok((await frames()) > first, 'the world count moves');
    assert.equal(await page.locator('.card[data-instance="compare"]').count(), 1);
    // The compare's card: its counts are read from the status it is sent (a renamed field shows as "undefined"), and its connection table or the note that none holds packets.
    const card = (await page.textContent('.card[data-instance="compare"]'))!;
    assert.doesNotMatch(card, /undefined|NaN/, card);
    assert.ok(Number(/primary in\s*(\d+)/.exec(card)?.[1]) > 0, card);
    assert.ok((await page.locator('.card[data-instance="compare"] table.conns, .card[data-instance="compare"] .muted').count()) > 0);
    await page.waitForSelector('li.divergence', { timeout: 15_000 });
    await page.click('li.divergence');
    await page.waitForSelector('#detail .diff');
    const d = demo.controller.divergences[0]!;
    const p = d.primary!.context;
    const s = d.secondary!.context;
    const at = [...Array(p.length / 2).keys()].filter((i) => p.slice(i * 2, i * 2 + 2) !== s.slice(i * 2, i * 2 + 2));
    assert.equal(at.length, 1, 'one byte differs');
    const highlighted = await page.$$eval('#detail .diff', (els) => els.map((e) => e.textContent));
    assert.deepEqual(highlighted, [p.slice(at[0]! * 2, at[0]! * 2 + 2), s.slice(at[0]! * 2, at[0]! * 2 + 2)]);
    assert.match((await page.textContent('#detail'))!, /first differing byte at offset 100/);
    const dir = join(REPO_ROOT, 'artifacts');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, 'live-page.png'), fullPage: true });
    const summary = await running;
    assert.equal(summary.complete, true);
  } finally {
    await browser.close();
    await running.catch(() => {});
    await demo.close();
  }
});

// run.mjs - the browser half of tests/t_browser.sh (see there): drives
// /usr/bin/chromium headless with playwright-core against two running
// `synth serve` processes and compares what the page shows with what the
// API answers. Prints "ok"/"FAIL" lines and "N passed, N failed".
//
// Environment: URL_A (server without a key, static variant), URL_B (server
// with API_KEY, dense variant, slow enough to stop mid-stream), ART (folder
// for screenshots), TEXT_FILE (a text to drop on the score panel),
// CHROMIUM (executable), PROFILE (a fresh user-data folder).
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error('run.mjs: ' + k + ' is not set');
  return v;
};
const URL_A = env('URL_A');
const URL_B = env('URL_B');
const KEY = env('API_KEY');
const ART = env('ART');
const TEXT_FILE = env('TEXT_FILE');

let pass = 0;
let fail = 0;
function check(name, cond, detail) {
  if (cond) {
    pass++;
    console.log('ok   ' + name);
  } else {
    fail++;
    console.log('FAIL ' + name + (detail !== undefined ? ': ' + detail : ''));
  }
  return cond;
}

async function api(base, method, p, body, key) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (key) headers.Authorization = 'Bearer ' + key;
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

async function metric(base, name, key) {
  const r = await api(base, 'GET', '/metrics', undefined, key);
  const m = r.text.match(new RegExp('^' + name + ' ([0-9.eE+-]+)$', 'm'));
  return m ? Number(m[1]) : NaN;
}

async function waitFor(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Collect console errors, uncaught exceptions and CSP violations of a page.
function watchPage(page, problems) {
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push('console: ' + m.text());
  });
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
}

// Before a full-page screenshot: no focus ring or hover, at the top, two
// frames painted after the last layout change.
async function settle(page) {
  await page.mouse.move(0, 0);
  await page.evaluate(() => new Promise((r) => {
    if (document.activeElement) document.activeElement.blur();
    window.scrollTo(0, 0);
    requestAnimationFrame(() => requestAnimationFrame(r));
  }));
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent);
const dataValue = (page, sel) => page.$eval(sel, (e) => e.dataset.value);

async function genForm(page, p) {
  await page.fill('#prompt', p.prompt);
  await page.fill('#max-tokens', String(p.max_tokens));
  await page.fill('#temperature', String(p.temperature));
  await page.fill('#top-k', String(p.top_k));
  await page.fill('#top-p', String(p.top_p));
  await page.fill('#seed', p.seed === undefined ? '' : String(p.seed));
}

async function waitGenDone(page, ms) {
  await page.waitForFunction(() => {
    const f = document.getElementById('gen-finish').textContent;
    return !document.getElementById('gen-start').disabled && f !== '\u2013';
  }, null, { timeout: ms });
}

// ------------------------------------------------------------------ server A

async function partA(browser) {
  const page = await browser.newPage();
  const problems = [];
  watchPage(page, problems);

  // headers of the page itself
  const root = await api(URL_A, 'GET', '/');
  const csp = root.headers.get('content-security-policy') || '';
  check('GET / is text/html with a strict CSP', root.status === 200 &&
    /^text\/html/.test(root.headers.get('content-type')) && /default-src 'none'/.test(csp) &&
    /script-src 'self'(;|$)/.test(csp) && !/unsafe/.test(csp), root.status + ' ' + csp);
  const etag = root.headers.get('etag');
  const again = await fetch(URL_A + '/', { headers: { 'If-None-Match': etag } });
  check('GET / with its ETag is 304 Not Modified', again.status === 304 && root.headers.get('cache-control') === 'no-cache',
    again.status);
  const js = await api(URL_A, 'GET', '/app.js');
  check('GET /app.js is text/javascript', js.status === 200 && /^text\/javascript/.test(js.headers.get('content-type')));
  const head = await fetch(URL_A + '/', { method: 'HEAD' });
  check('HEAD / has the headers and no body', head.status === 200 && (await head.text()) === '' &&
    head.headers.get('etag') === etag);
  const fav = await api(URL_A, 'GET', '/favicon.svg');
  check('GET /favicon.svg is image/svg+xml', fav.status === 200 && fav.headers.get('content-type') === 'image/svg+xml');
  for (const q of ['layer=0', 'layer=0&head=9', 'layer=x&head=0', 'layer=0&head=0&scale=2', 'layer=-1&head=0']) {
    const r = await api(URL_A, 'GET', '/v1/attention?' + q);
    check('GET /v1/attention?' + q + ' is 400', r.status === 400 && r.json && r.json.error.type === 'invalid_request_error',
      r.status + ' ' + r.text);
  }
  const post = await api(URL_A, 'POST', '/', {});
  check('POST / is 405', post.status === 405);
  const html = root.text;
  check('no inline script or style in the page', !/<script(?![^>]*\bsrc=)/i.test(html) && !/\sstyle=/i.test(html) &&
    !/\son[a-z]+=/i.test(html));

  const resp = await page.goto(URL_A + '/');
  check('the page loads', resp.status() === 200);
  const models = (await api(URL_A, 'GET', '/v1/models')).json.data[0];
  await page.waitForFunction((v) => document.getElementById('model-line').textContent.includes(v), models.variant,
    { timeout: 10000 });
  const info = await text(page, '#model-info');
  check('model panel shows variant, context, quantization', info.includes(models.variant) &&
    info.includes(String(models.context_length)) && info.includes(models.quantization), info);

  // every form control has a label, every button a name
  const unlabelled = await page.$$eval('input, textarea, select', (els) =>
    els.filter((e) => !e.labels || e.labels.length === 0).map((e) => e.id));
  check('every input has a label', unlabelled.length === 0, unlabelled.join(','));
  const nameless = await page.$$eval('button', (els) => els.filter((e) => !e.textContent.trim()).length);
  check('every button has a name', nameless === 0);

  // ---- generate: the streamed text equals POST /generate's
  const g = { prompt: 'The server', max_tokens: 48, temperature: 0.9, top_k: 30, top_p: 0.95, seed: 1234 };
  await genForm(page, g);
  await page.click('#gen-start');
  await waitGenDone(page, 20000);
  const shown = await text(page, '#gen-text');
  const ref = await api(URL_A, 'POST', '/generate', { ...g, stream: false });
  check('streamed text equals POST /generate text (seed 1234)', ref.status === 200 && shown === ref.json.text,
    JSON.stringify(shown) + ' vs ' + JSON.stringify(ref.json && ref.json.text));
  check('finish reason and token counts shown', await text(page, '#gen-finish') === ref.json.finish_reason &&
    Number(await dataValue(page, '#gen-completion-tokens')) === ref.json.usage.completion_tokens &&
    Number(await dataValue(page, '#gen-prompt-tokens')) === ref.json.usage.prompt_tokens,
    await text(page, '#gen-stats'));
  check('tokens/s shown', /^[0-9.]+$/.test(await text(page, '#gen-tps')), await text(page, '#gen-tps'));
  check('prompt echoed before the generated text', await text(page, '#gen-prompt') === g.prompt);

  // a second run, greedy, with the keyboard (Ctrl+Enter in the prompt)
  const g2 = { prompt: 'Synthesizer', max_tokens: 20, temperature: 0, top_k: 0, top_p: 1, seed: undefined };
  await genForm(page, g2);
  await page.focus('#prompt');
  await page.keyboard.press('Control+Enter');
  await waitGenDone(page, 20000);
  const ref2 = await api(URL_A, 'POST', '/generate', { prompt: g2.prompt, max_tokens: 20, temperature: 0 });
  check('greedy run from the keyboard equals POST /generate', await text(page, '#gen-text') === ref2.json.text);

  // a bad parameter is reported, nothing is sent
  await page.fill('#top-p', '0');
  await page.click('#gen-start');
  check('bad top-p is reported', /Top-p/.test(await text(page, '#gen-status')) &&
    await page.$eval('#gen-status', (e) => e.classList.contains('error')));
  await page.fill('#top-p', '1');
  await genForm(page, g);
  await page.click('#gen-start');
  await waitGenDone(page, 20000);
  await page.locator('#generate').screenshot({ path: path.join(ART, 'generate-panel.png') });

  // ---- score: pasted text
  const sample = readFileSync(TEXT_FILE, 'utf8');
  const pasted = 'The model learns attention weights without queries or keys.\n' + sample;
  await page.fill('#score-text', pasted);
  await page.click('#score-start');
  await page.waitForFunction(() => document.getElementById('score-tokens').dataset.value !== undefined, null,
    { timeout: 20000 });
  await checkScore(page, pasted, 'pasted text');

  // hover and keyboard show the exact logprob
  const sref = (await api(URL_A, 'POST', '/score', { text: pasted, token_logprobs: true })).json;
  await page.hover('#tok-3');
  const tip = await page.$eval('#tok-3', (e) => e.title);
  check('hover: title holds the exact logprob', tip.includes('logprob ' + sref.token_logprobs[3].logprob), tip);
  check('hover: detail line names the token', (await text(page, '#tok-detail')).includes('token 4 of'));
  await page.focus('#score-out');
  await page.keyboard.press('Home');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  const det = await text(page, '#tok-detail');
  check('keyboard: arrows move to token 3, its logprob shown', det.includes('token 3 of') &&
    det.includes('logprob ' + sref.token_logprobs[2].logprob), det);
  await page.keyboard.press('End');
  check('keyboard: End goes to the last token', (await text(page, '#tok-detail')).includes(
    'token ' + sref.tokens + ' of'));
  await page.mouse.move(0, 0);

  // ---- score: a file dropped on the text area (then the file input)
  const fileText = readFileSync(TEXT_FILE, 'utf8');
  await page.evaluate((t) => {
    const dt = new DataTransfer();
    dt.items.add(new File([t], 'dropped.txt', { type: 'text/plain' }));
    const ta = document.getElementById('score-text');
    ta.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    ta.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, fileText);
  await page.waitForFunction((t) => document.getElementById('score-text').value === t &&
    document.getElementById('score-status').textContent.startsWith('Scored'), fileText, { timeout: 20000 });
  await checkScore(page, fileText, 'dropped file');
  // longer than the context: scored in sliding windows, every token shown
  const unit = (await api(URL_A, 'POST', '/score', { text: pasted + '\n' })).json.tokens;
  const long = (pasted + '\n').repeat(Math.ceil((2.5 * models.context_length) / unit) + 1);
  await page.fill('#score-text', long);
  await page.click('#score-start');
  const nLong = (await api(URL_A, 'POST', '/score', { text: long })).json.tokens;
  check('the long text spans several windows', nLong > 2 * models.context_length, nLong);
  await page.waitForFunction((n) => document.getElementById('score-tokens').textContent === String(n), nLong,
    { timeout: 20000 });
  await checkScore(page, long, 'text longer than the context');
  await page.setInputFiles('#score-file', TEXT_FILE);
  await page.waitForFunction(() => document.getElementById('score-status').textContent.startsWith('Scored'), null,
    { timeout: 20000 });
  check('opened file is scored', (await page.$$('#score-out .tok')).length > 0);
  await page.fill('#score-text', pasted);
  await page.click('#score-start');
  await page.waitForFunction((n) => document.querySelectorAll('#score-out .tok').length === n, sref.tokens,
    { timeout: 20000 });
  await page.locator('#score').screenshot({ path: path.join(ART, 'score-panel.png') });

  // ---- model panel: the heat map
  await page.waitForFunction(() => document.getElementById('model-status').textContent.includes('precomputed'),
    null, { timeout: 20000 });
  await page.selectOption('#attn-layer', String(models.n_layer - 1));
  await page.waitForFunction((l) => document.getElementById('model-status').textContent.startsWith('Layer ' + l),
    models.n_layer - 1, { timeout: 20000 });
  const att = (await api(URL_A, 'GET', '/v1/attention?layer=' + (models.n_layer - 1) + '&head=0')).json;
  const px = await page.evaluate(() => {
    const c = document.getElementById('attn-canvas');
    const g2d = c.getContext('2d');
    const at = (x, y) => Array.from(g2d.getImageData(x, y, 1, 1).data);
    return { w: c.width, h: c.height, d0: at(0, 0), masked: at(c.width - 1, 0), last: at(c.width - 1, c.height - 1) };
  });
  check('heat map is n_ctx x n_ctx', px.w === models.context_length && px.h === models.context_length,
    px.w + 'x' + px.h);
  check('heat map: weight 1 at (0,0) is dark, the masked corner is grey',
    px.d0[2] > px.d0[0] && px.d0[0] < 40 && px.masked[0] === 236 && px.masked[2] === 242, JSON.stringify(px));
  check('attention rows sum to 1', att.rows.every((r, i) => r.length === i + 1 &&
    Math.abs(r.reduce((a, b) => a + b, 0) - 1) < 1e-4));
  await page.focus('#attn-canvas');
  for (const k of ['ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowRight']) await page.keyboard.press(k);
  const cellText = await text(page, '#attn-detail');
  check('keyboard on the heat map: query 3 -> key 1 shows its weight',
    cellText === 'query 3 \u2192 key 1: weight ' + att.rows[3][1], cellText);
  check('the focused cell is marked', await page.$eval('#attn-cursor', (e) => !e.hidden));
  await page.locator('#model').screenshot({ path: path.join(ART, 'model-panel.png') });
  await settle(page);
  await page.screenshot({ path: path.join(ART, 'page-wide.png'), fullPage: true });

  // narrow screen: nothing wider than the viewport
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check('narrow screen (390 px): no horizontal scrolling', overflow <= 0, overflow + ' px too wide');
  await settle(page);
  await page.screenshot({ path: path.join(ART, 'page-narrow.png'), fullPage: true });

  // keyboard: Tab reaches the generate button before the score button
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(URL_A + '/');
  await page.waitForFunction((v) => document.getElementById('model-line').textContent.includes(v), models.variant);
  const order = [];
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.tagName));
  }
  const iGen = order.indexOf('gen-start');
  const iScore = order.indexOf('score-start');
  check('Tab reaches prompt, Generate, the score text and Score in order',
    order.indexOf('prompt') >= 0 && iGen > order.indexOf('prompt') && order.indexOf('score-text') > iGen &&
    iScore > order.indexOf('score-text'), order.join(' '));

  const mt = (await api(URL_A, 'GET', '/metrics')).text;
  check('/metrics counts the page and the attention route', /synth_requests_total\{route="static",status="200"\} [1-9]/.test(mt) &&
    /synth_requests_total\{route="\/v1\/attention",status="200"\} [1-9]/.test(mt) &&
    /synth_requests_total\{route="static",status="304"\} [1-9]/.test(mt));
  check('no console errors or CSP violations (server A)', problems.length === 0, problems.join(' | '));
  await page.close();
}

async function checkScore(page, textIn, what) {
  const ref = await api(URL_A, 'POST', '/score', { text: textIn, token_logprobs: true });
  const s = ref.json;
  const spans = await page.$$eval('#score-out .tok', (els) => els.map((e) => ({
    t: e.textContent, lp: e.dataset.logprob, bg: e.style.backgroundColor })));
  check(what + ': one coloured span per token (' + s.tokens + ')', spans.length === s.tokens &&
    spans.every((x) => x.bg !== ''), spans.length);
  check(what + ': spans spell the text', spans.map((x) => x.t).join('') === textIn);
  check(what + ': every span carries its exact logprob',
    spans.every((x, i) => Number(x.lp) === s.token_logprobs[i].logprob));
  const shownPpl = await text(page, '#score-ppl');
  check(what + ': perplexity shown equals /score (' + s.perplexity + ')',
    Number(await dataValue(page, '#score-ppl')) === s.perplexity &&
    Math.abs(Number(shownPpl) / s.perplexity - 1) < 1e-5, shownPpl);
  check(what + ': tokens, word perplexity, bits per byte shown', await text(page, '#score-tokens') === String(s.tokens) &&
    Number(await dataValue(page, '#score-wppl')) === s.word_perplexity &&
    Number(await dataValue(page, '#score-bpb')) === s.bits_per_byte);
}

// ------------------------------------------------------------------ server B

async function partB(browser) {
  const page = await browser.newPage();
  const problems = [];
  watchPage(page, problems);
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));

  const noKey = await api(URL_B, 'GET', '/v1/attention?layer=0&head=0');
  const withKey = await api(URL_B, 'GET', '/v1/attention?layer=0&head=0', undefined, KEY);
  const jsNoKey = await api(URL_B, 'GET', '/app.js');
  check('with --api-key: static files need no key, /v1/attention does (401)', jsNoKey.status === 200 &&
    noKey.status === 401 && (await api(URL_B, 'GET', '/v1/models')).status === 401, noKey.status);
  check('dense variant: /v1/attention is 404 not_found_error', withKey.status === 404 &&
    withKey.json.error.type === 'not_found_error', withKey.status + ' ' + withKey.text);
  const res = await page.goto(URL_B + '/');
  check('with --api-key the page itself loads without a key', res.status() === 200);
  await page.waitForFunction(() => document.getElementById('model-line').textContent === 'API key required', null,
    { timeout: 10000 });
  check('without a key the page asks for one', (await text(page, '#key-state')).includes('needs an API key'));
  check('the key field has focus', await page.evaluate(() => document.activeElement.id) === 'api-key');
  await page.keyboard.type(KEY);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('model-line').textContent.includes('dense'), null,
    { timeout: 10000 });
  ok('the key entered once unlocks the model panel');
  check('dense variant: no heat map, explained', (await text(page, '#attn-note')).includes('computes its attention') &&
    await page.$eval('#attn-show', (e) => e.disabled));

  // short greedy generation with the key
  const g = { prompt: 'The', max_tokens: 12, temperature: 0, top_k: 0, top_p: 1, seed: 5 };
  await genForm(page, g);
  await page.click('#gen-start');
  await waitGenDone(page, 30000);
  const ref = await api(URL_B, 'POST', '/generate', { ...g }, KEY);
  check('with the key: streamed text equals POST /generate', ref.status === 200 &&
    await text(page, '#gen-text') === ref.json.text, await text(page, '#gen-status'));

  // stop mid-stream frees the slot
  const c0 = await metric(URL_B, 'synth_requests_cancelled_total', KEY);
  const t0 = await metric(URL_B, 'synth_generated_tokens_total', KEY);
  await genForm(page, { prompt: 'The', max_tokens: 1000, temperature: 0, top_k: 0, top_p: 1, seed: 1 });
  await page.click('#gen-start');
  await page.waitForFunction(() => Number(document.getElementById('gen-completion-tokens').dataset.value || 0) >= 3,
    null, { timeout: 30000 });
  check('the slot is taken while streaming', await metric(URL_B, 'synth_running_batch_size', KEY) === 1);
  await page.click('#gen-stop');
  await page.waitForFunction(() => document.getElementById('gen-finish').textContent === 'stopped', null,
    { timeout: 10000 });
  const freed = await waitFor(async () => await metric(URL_B, 'synth_running_batch_size', KEY) === 0 &&
    await metric(URL_B, 'synth_requests_cancelled_total', KEY) === c0 + 1, 10000);
  const t1 = await metric(URL_B, 'synth_generated_tokens_total', KEY);
  check('stop: /metrics shows the slot freed (running 0, cancelled +1)', freed,
    'cancelled ' + c0 + ' -> ' + (await metric(URL_B, 'synth_requests_cancelled_total', KEY)));
  check('stop: the server generated fewer than the 1000 tokens asked', t1 - t0 < 1000, t1 - t0);
  const shownN = Number(await dataValue(page, '#gen-completion-tokens'));
  check('stop: the page shows the tokens received', shownN >= 3 && shownN < 1000, shownN);
  check('Stop disabled, Generate enabled again', await page.$eval('#gen-stop', (e) => e.disabled) &&
    !(await page.$eval('#gen-start', (e) => e.disabled)));
  await page.locator('#generate').screenshot({ path: path.join(ART, 'generate-stopped.png') });

  // the keyboard: Ctrl+Enter starts, Escape stops
  await page.focus('#prompt');
  await page.keyboard.press('Control+Enter');
  await page.waitForFunction(() => Number(document.getElementById('gen-completion-tokens').dataset.value || 0) >= 3,
    null, { timeout: 30000 });
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.getElementById('gen-finish').textContent === 'stopped', null,
    { timeout: 10000 });
  check('Escape stops the stream and the slot is freed', await waitFor(async () =>
    await metric(URL_B, 'synth_running_batch_size', KEY) === 0 &&
    await metric(URL_B, 'synth_requests_cancelled_total', KEY) === c0 + 2, 10000));

  // the key is kept for the tab, sent as a header, never in a URL
  check('the key never appears in a URL', !urls.some((u) => u.includes(KEY)), urls.filter((u) => u.includes(KEY)));
  await page.reload();
  await page.waitForFunction(() => document.getElementById('model-line').textContent.includes('dense'), null,
    { timeout: 10000 });
  ok('after a reload the tab still has the key (sessionStorage)');
  await page.click('#key-forget');
  await page.fill('#score-text', 'one two three');
  await page.click('#score-start');
  await page.waitForFunction(() => document.getElementById('score-status').classList.contains('error'), null,
    { timeout: 10000 });
  check('after Forget the server answers 401 and the page says so', (await text(page, '#score-status')).includes('401'));
  check('no console errors or CSP violations (server B)',
    problems.filter((p) => !/401/.test(p)).length === 0, problems.join(' | '));
  await page.close();
}

function ok(name) { check(name, true); }

// ------------------------------------------------------------------ main

// A persistent context on a fresh, empty profile folder (PROFILE): the
// --user-data-dir of the launch; each part opens its own page (the two
// servers are two origins, so storage is not shared).
let browser = null;
try {
  browser = await chromium.launchPersistentContext(env('PROFILE'), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    timeout: 30000,
  });
  await partA(browser);
  await partB(browser);
} catch (e) {
  check('browser run', false, e.stack || String(e));
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(pass + ' passed, ' + fail + ' failed');
process.exit(fail ? 1 : 0);

// synth playground - plain JavaScript, no build step, no dependencies.
// Talks to the same origin only: GET /v1/models, GET /v1/attention,
// POST /generate (stream: true, read with fetch + a ReadableStream reader,
// since EventSource cannot POST), POST /score (token_logprobs: true).
// The API key, when the server has one, lives in memory and in this tab's
// sessionStorage, and travels only in the Authorization header.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const KEY_STORE = 'synth.apiKey';
  const STATIC_VARIANTS = ['random', 'fixed_random', 'factorized_random'];

  let apiKey = '';
  try { apiKey = sessionStorage.getItem(KEY_STORE) || ''; } catch (e) { /* storage disabled */ }
  let modelInfo = null;

  // ---------------------------------------------------------------- helpers

  function setStatus(el, text, isError) {
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  function fmtNum(x) {
    if (typeof x !== 'number' || !isFinite(x)) return String(x);
    if (Math.abs(x) >= 1e6) return x.toExponential(4);
    return String(Number(x.toPrecision(6)));
  }

  function fmtCount(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(2) + ' G';
    if (n >= 1e6) return (n / 1e6).toFixed(2) + ' M';
    if (n >= 1e3) return (n / 1e3).toFixed(1) + ' k';
    return String(n);
  }

  function fmtBytes(n) {
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + ' GiB';
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MiB';
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + ' KiB';
    return n + ' B';
  }

  function setValue(id, text, exact) {
    const el = $(id);
    el.textContent = text;
    if (exact === undefined) delete el.dataset.value;
    else el.dataset.value = String(exact);
  }

  function authHeaders(json) {
    const h = {};
    if (json) h['Content-Type'] = 'application/json';
    if (apiKey) h.Authorization = 'Bearer ' + apiKey;
    return h;
  }

  function api(method, path, body, signal) {
    return fetch(path, {
      method,
      headers: authHeaders(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  }

  // The message of an error answer ({"error": {"type", "message"}}).
  async function errorText(res) {
    let msg = 'HTTP ' + res.status;
    try {
      const j = await res.json();
      if (j && j.error && j.error.message) msg = j.error.message + ' (HTTP ' + res.status + ')';
    } catch (e) { /* not JSON */ }
    if (res.status === 401) {
      keyState(apiKey ? 'The server refused this key.' : 'The server needs an API key.', true);
      msg += ': enter the API key at the top of the page';
    }
    return msg;
  }

  // ---------------------------------------------------------------- API key

  function keyState(text, isError) {
    setStatus($('key-state'), text, isError);
  }

  function showKeyState() {
    keyState(apiKey ? 'Key set for this tab.' : '', false);
  }

  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('api-key');
    apiKey = input.value.trim();
    input.value = '';
    try {
      if (apiKey) sessionStorage.setItem(KEY_STORE, apiKey);
      else sessionStorage.removeItem(KEY_STORE);
    } catch (err) { /* memory only */ }
    showKeyState();
    loadModel();
  });

  $('key-forget').addEventListener('click', () => {
    apiKey = '';
    $('api-key').value = '';
    try { sessionStorage.removeItem(KEY_STORE); } catch (err) { /* memory only */ }
    keyState('Key forgotten.', false);
  });

  // ---------------------------------------------------------------- generate

  let genCtl = null;

  function readInt(id, lo, hi, optional) {
    const el = $(id);
    const s = el.value.trim();
    if (s === '' && optional) return undefined;
    const v = Number(s);
    if (s === '' || !Number.isInteger(v) || v < lo || v > hi) {
      throw new Error(el.labels[0].firstChild.textContent.trim() + ': enter a whole number from ' + lo + ' to ' + hi);
    }
    return v;
  }

  function readNum(id, lo, hi, loOpen) {
    const el = $(id);
    const s = el.value.trim();
    const v = Number(s);
    if (s === '' || !isFinite(v) || v > hi || (loOpen ? v <= lo : v < lo)) {
      throw new Error(el.labels[0].firstChild.textContent.trim() + ': enter a number ' +
        (loOpen ? 'above ' : 'from ') + lo + (loOpen ? ' up to ' : ' to ') + hi);
    }
    return v;
  }

  function genRequest() {
    const req = {
      prompt: $('prompt').value,
      max_tokens: readInt('max-tokens', 1, 1000000),
      temperature: readNum('temperature', 0, 100),
      top_k: readInt('top-k', 0, 2147483647),
      top_p: readNum('top-p', 0, 1, true),
    };
    const seed = readInt('seed', 0, Number.MAX_SAFE_INTEGER, true);
    if (seed !== undefined) req.seed = seed;
    req.stream = true;
    return req;
  }

  function genBusy(on) {
    $('gen-start').disabled = on;
    $('gen-stop').disabled = !on;
    $('gen-out').classList.toggle('running', on);
    $('gen-out').setAttribute('aria-busy', on ? 'true' : 'false');
  }

  function genResetStats() {
    for (const id of ['gen-finish', 'gen-prompt-tokens', 'gen-completion-tokens', 'gen-tps', 'gen-ttft']) {
      setValue(id, '\u2013');
    }
  }

  // Split an SSE byte stream into the JSON of its "data:" events.
  function sseParser(onEvent) {
    let buf = '';
    return (chunk) => {
      buf += chunk;
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, k);
        buf = buf.slice(k + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (data) onEvent(JSON.parse(data));
      }
    };
  }

  async function generate() {
    if (genCtl) return;
    let req;
    try {
      req = genRequest();
    } catch (err) {
      setStatus($('gen-status'), err.message, true);
      return;
    }
    const ctl = new AbortController();
    genCtl = ctl;
    genBusy(true);
    genResetStats();
    setStatus($('gen-status'), 'Generating\u2026', false);
    $('gen-prompt').textContent = req.prompt;
    const out = document.createTextNode('');
    $('gen-text').replaceChildren(out);
    const t0 = performance.now();
    let tFirst = 0;
    let tLast = 0;
    let nTok = 0;
    let final = null;
    const liveRate = () => {
      setValue('gen-completion-tokens', String(nTok), nTok);
      if (nTok > 1 && tLast > tFirst) setValue('gen-tps', (((nTok - 1) * 1000) / (tLast - tFirst)).toFixed(1));
    };
    try {
      const res = await api('POST', '/generate', req, ctl.signal);
      if (!res.ok) throw new Error(await errorText(res));
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      const feed = sseParser((ev) => {
        if (ev.error) throw new Error(ev.error.message || 'generation failed');
        if (ev.token) {
          nTok++;
          tLast = performance.now();
          if (!tFirst) {
            tFirst = tLast;
            setValue('gen-ttft', (tFirst - t0).toFixed(0) + ' ms', tFirst - t0);
          }
        }
        if (typeof ev.text === 'string' && ev.text) {
          // follow the end of the text unless the reader scrolled up
          const box = $('gen-out');
          const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
          out.appendData(ev.text);
          if (atEnd) box.scrollTop = box.scrollHeight;
        }
        if (ev.finish_reason) final = ev;
      });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        feed(dec.decode(value, { stream: true }));
        liveRate();
      }
      if (!final) throw new Error('the stream ended before its final event');
      const u = final.usage || {};
      const t = final.timings || {};
      setValue('gen-finish', final.finish_reason);
      setValue('gen-prompt-tokens', String(u.prompt_tokens), u.prompt_tokens);
      setValue('gen-completion-tokens', String(u.completion_tokens), u.completion_tokens);
      // Server-side rate: tokens after the first over the decode time.
      if (u.completion_tokens > 1 && t.decode_ms > 0) {
        const tps = ((u.completion_tokens - 1) * 1000) / t.decode_ms;
        setValue('gen-tps', tps.toFixed(1), tps);
      } else {
        setValue('gen-tps', '\u2013');
      }
      setStatus($('gen-status'), 'Done: ' + u.completion_tokens + ' tokens, ' + final.finish_reason +
        ' (queue ' + fmtNum(t.queue_ms) + ' ms, prefill ' + fmtNum(t.prefill_ms) + ' ms, decode ' +
        fmtNum(t.decode_ms) + ' ms).', false);
    } catch (err) {
      if (ctl.signal.aborted) {
        liveRate();
        setValue('gen-finish', 'stopped');
        setStatus($('gen-status'), 'Stopped after ' + nTok + ' tokens; the server frees the slot.', false);
      } else {
        ctl.abort(); // release the connection if the stream is still open
        setValue('gen-finish', 'error');
        setStatus($('gen-status'), 'Error: ' + err.message, true);
      }
    } finally {
      genCtl = null;
      genBusy(false);
    }
  }

  $('gen-form').addEventListener('submit', (e) => {
    e.preventDefault();
    generate();
  });
  $('gen-stop').addEventListener('click', () => {
    if (genCtl) genCtl.abort();
    $('gen-start').focus();
  });
  // Escape anywhere stops a running generation.
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && genCtl) {
      e.preventDefault();
      genCtl.abort();
    }
  });
  // Ctrl+Enter in the prompt generates.
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      generate();
    }
  });

  // ---------------------------------------------------------------- score

  // Surprisal colour ramp, the same stops as .legend .ramp in style.css.
  const RAMP = [[55, 95, 92], [40, 95, 72], [20, 85, 55], [-5, 75, 38]];
  function surprisalColour(t) {
    t = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(t));
    const f = t - i;
    const a = RAMP[i];
    const b = RAMP[i + 1];
    const h = (a[0] + (b[0] - a[0]) * f + 360) % 360;
    const s = a[1] + (b[1] - a[1]) * f;
    const l = a[2] + (b[2] - a[2]) * f;
    return { bg: 'hsl(' + h.toFixed(1) + ', ' + s.toFixed(1) + '%, ' + l.toFixed(1) + '%)', dark: l < 50 };
  }

  function utf8Len(cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }

  // Bytes of the original text a token stands for. The server sends each
  // token's bytes as a string with every byte of an invalid UTF-8 sequence
  // (a character split between tokens) replaced by U+FFFD; a genuine
  // U+FFFD in the text is the 3 bytes EF BF BD.
  function tokenBytes(text, bytes, off) {
    let n = 0;
    for (const ch of text) {
      const cp = ch.codePointAt(0);
      if (cp === 0xfffd && !(bytes[off + n] === 0xef && bytes[off + n + 1] === 0xbf && bytes[off + n + 2] === 0xbd)) {
        n += 1;
      } else {
        n += utf8Len(cp);
      }
    }
    return n;
  }

  // The text shown for each token: its byte range of the original text,
  // where a character split between tokens goes whole to the token holding
  // its first byte (the next token may then show nothing).
  function tokenPieces(text, toks) {
    const bytes = new TextEncoder().encode(text);
    const ends = [];
    let off = 0;
    for (const t of toks) {
      off += tokenBytes(t.text, bytes, off);
      ends.push(off);
    }
    if (off !== bytes.length) return toks.map((t) => t.text); // unexpected: show the server's strings
    const isCont = (k) => k < bytes.length && (bytes[k] & 0xc0) === 0x80;
    const dec = new TextDecoder();
    const out = [];
    let start = 0;
    for (const e0 of ends) {
      let e = e0;
      while (isCont(e)) e++;
      out.push(e > start ? dec.decode(bytes.subarray(start, e)) : '');
      start = Math.max(start, e);
    }
    return out;
  }

  let scoreToks = [];
  let activeTok = -1;

  function tokenDescription(i) {
    const t = scoreToks[i];
    const s = -t.logprob;
    return 'token ' + (i + 1) + ' of ' + scoreToks.length + ', id ' + t.id + ' ' + JSON.stringify(t.text) +
      ': logprob ' + t.logprob + ', surprisal ' + s.toFixed(3) + ' nats (' + (s / Math.LN2).toFixed(3) + ' bits)';
  }

  function setActive(i, scroll) {
    const box = $('score-out');
    const spans = box.children;
    if (!spans.length) return;
    i = Math.max(0, Math.min(spans.length - 1, i));
    if (activeTok >= 0 && activeTok < spans.length) spans[activeTok].classList.remove('active');
    activeTok = i;
    spans[i].classList.add('active');
    box.setAttribute('aria-activedescendant', spans[i].id);
    $('tok-detail').textContent = tokenDescription(i);
    if (scroll) spans[i].scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }

  function renderScore(text, res) {
    const toks = res.token_logprobs || [];
    scoreToks = toks;
    activeTok = -1;
    const V = modelInfo && modelInfo.n_vocab > 1 ? modelInfo.n_vocab : Math.E ** 10;
    const sMax = Math.log(V); // surprisal of a uniform guess over the vocabulary
    $('legend-hi').textContent = '\u2265 ' + sMax.toFixed(2) + ' nats (ln V)';
    const pieces = tokenPieces(text, toks);
    const frag = document.createDocumentFragment();
    toks.forEach((t, i) => {
      const span = document.createElement('span');
      span.className = 'tok';
      span.id = 'tok-' + i;
      span.textContent = pieces[i];
      if (pieces[i].startsWith('\n')) span.classList.add('nl');
      const c = surprisalColour(-t.logprob / sMax);
      span.style.backgroundColor = c.bg;
      if (c.dark) span.style.color = '#fff';
      span.dataset.i = String(i);
      span.dataset.logprob = String(t.logprob);
      span.title = 'id ' + t.id + ' ' + JSON.stringify(t.text) + '\nlogprob ' + t.logprob +
        '\nsurprisal ' + (-t.logprob).toFixed(4) + ' nats';
      frag.appendChild(span);
    });
    $('score-out').replaceChildren(frag);
    $('tok-detail').textContent = toks.length ? 'Hover a token, or focus the text and use the arrow keys, to see its log-probability.' : '';
    setValue('score-tokens', String(res.tokens), res.tokens);
    setValue('score-ppl', fmtNum(res.perplexity), res.perplexity);
    setValue('score-wppl', fmtNum(res.word_perplexity), res.word_perplexity);
    setValue('score-bpb', fmtNum(res.bits_per_byte), res.bits_per_byte);
    setValue('score-nll', fmtNum(res.nll), res.nll);
  }

  let scoring = false;
  async function score() {
    if (scoring) return;
    const text = $('score-text').value;
    if (!text) {
      setStatus($('score-status'), 'Enter or drop a text to score first.', true);
      return;
    }
    scoring = true;
    $('score-start').disabled = true;
    setStatus($('score-status'), 'Scoring\u2026', false);
    try {
      const res = await api('POST', '/score', { text, token_logprobs: true });
      if (!res.ok) throw new Error(await errorText(res));
      const j = await res.json();
      renderScore(text, j);
      setStatus($('score-status'), 'Scored ' + j.tokens + ' tokens, ' + j.words + ' words, ' + j.bytes + ' bytes.', false);
    } catch (err) {
      setStatus($('score-status'), 'Error: ' + err.message, true);
    } finally {
      scoring = false;
      $('score-start').disabled = false;
    }
  }

  $('score-form').addEventListener('submit', (e) => {
    e.preventDefault();
    score();
  });

  async function loadFile(file) {
    if (!file) return;
    try {
      $('score-text').value = await file.text();
      setStatus($('score-status'), 'Loaded ' + file.name + ' (' + fmtBytes(file.size) + ').', false);
      score();
    } catch (err) {
      setStatus($('score-status'), 'Cannot read ' + file.name + ': ' + err.message, true);
    }
  }

  $('score-file').addEventListener('change', (e) => {
    loadFile(e.target.files[0]);
    e.target.value = '';
  });

  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  const drop = $('score-text');
  ['dragenter', 'dragover'].forEach((type) => drop.addEventListener(type, (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    drop.classList.add('drop');
  }));
  drop.addEventListener('dragleave', () => drop.classList.remove('drop'));
  drop.addEventListener('drop', (e) => {
    drop.classList.remove('drop');
    if (!hasFiles(e)) return;
    e.preventDefault();
    loadFile(e.dataTransfer.files[0]);
  });
  // A file dropped elsewhere must not replace the page.
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener('drop', (e) => { if (hasFiles(e)) e.preventDefault(); });

  const box = $('score-out');
  box.addEventListener('mouseover', (e) => {
    const i = e.target.dataset && e.target.dataset.i;
    if (i !== undefined) setActive(Number(i), false);
  });
  box.addEventListener('click', (e) => {
    const i = e.target.dataset && e.target.dataset.i;
    if (i !== undefined) setActive(Number(i), false);
  });
  box.addEventListener('focus', () => {
    if (box.children.length && activeTok < 0) setActive(0, true);
  });
  box.addEventListener('keydown', (e) => {
    const n = box.children.length;
    if (!n) return;
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, PageDown: 20, PageUp: -20 }[e.key];
    if (step !== undefined) setActive(activeTok + step, true);
    else if (e.key === 'Home') setActive(0, true);
    else if (e.key === 'End') setActive(n - 1, true);
    else return;
    e.preventDefault();
  });

  // ---------------------------------------------------------------- model

  // t in [0, 1] -> white .. dark blue (the .legend .blues ramp).
  const BLUES = [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  function blue(v) {
    const t = Math.min(1, Math.max(0, v)) * (BLUES.length - 1);
    const i = Math.min(BLUES.length - 2, Math.floor(t));
    const f = t - i;
    return BLUES[i].map((c, k) => Math.round(c + (BLUES[i + 1][k] - c) * f));
  }

  let attn = null;

  // Colour of a weight: relative to its row's largest weight (where each
  // query looks, whatever the row length), or the square root of the
  // weight itself (small weights of long rows stay visible).
  function drawAttention(j) {
    const L = j.n_ctx;
    const byRow = $('attn-scale').value === 'row';
    $('attn-hi').textContent = byRow ? 'row maximum' : 'weight 1 (\u221a scale)';
    const cv = $('attn-canvas');
    cv.width = L;
    cv.height = L;
    const ctx = cv.getContext('2d');
    const img = ctx.createImageData(L, L);
    const d = img.data;
    for (let i = 0; i < L; i++) {
      const row = j.rows[i];
      const mx = byRow ? Math.max(...row) || 1 : 1;
      for (let k = 0; k < L; k++) {
        const o = (i * L + k) * 4;
        const c = k > i ? [236, 238, 242] // future positions: masked
          : blue(byRow ? row[k] / mx : Math.sqrt(row[k]));
        d[o] = c[0];
        d[o + 1] = c[1];
        d[o + 2] = c[2];
        d[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    cv.classList.remove('off');
    cv.setAttribute('aria-label', 'Attention of layer ' + j.layer + ', head ' + j.head + ': ' + L + ' by ' + L +
      ' causal matrix, query position down, key position across');
    attn = j;
  }

  async function showAttention() {
    const layer = $('attn-layer').value;
    const head = $('attn-head').value;
    setStatus($('model-status'), 'Loading attention of layer ' + layer + ', head ' + head + '\u2026', false);
    try {
      const q = new URLSearchParams({ layer, head });
      const res = await api('GET', '/v1/attention?' + q.toString());
      if (!res.ok) throw new Error(await errorText(res));
      const j = await res.json();
      drawAttention(j);
      const of = { random: 'the learned logits R', fixed_random: 'the fixed random logits R',
        factorized_random: 'the learned low-rank logits R1 R2\u1d40' }[j.variant] || 'the static logits';
      setStatus($('model-status'), 'Layer ' + j.layer + ', head ' + j.head + ': ' + j.n_ctx + ' \u00d7 ' + j.n_ctx +
        ' precomputed attention, the causal softmax of ' + of + '.', false);
    } catch (err) {
      setStatus($('model-status'), 'Error: ' + err.message, true);
    }
  }

  $('attn-form').addEventListener('submit', (e) => {
    e.preventDefault();
    showAttention();
  });
  $('attn-layer').addEventListener('change', showAttention);
  $('attn-head').addEventListener('change', showAttention);
  $('attn-scale').addEventListener('change', () => { if (attn) drawAttention(attn); });

  // One cell of the map: the weight in the caption, a marker over the cell.
  let cell = [0, 0];
  function showCell(i, k, mark) {
    const L = attn.n_ctx;
    i = Math.max(0, Math.min(L - 1, i));
    k = Math.max(0, Math.min(L - 1, k));
    cell = [i, k];
    $('attn-detail').textContent = k <= i
      ? 'query ' + i + ' \u2192 key ' + k + ': weight ' + attn.rows[i][k]
      : 'query ' + i + ' \u2192 key ' + k + ': masked (a future position)';
    const cur = $('attn-cursor');
    cur.hidden = !mark;
    if (mark) {
      const cv = $('attn-canvas');
      const w = cv.clientWidth / L;
      const h = cv.clientHeight / L;
      cur.style.left = (cv.offsetLeft + cv.clientLeft + k * w) + 'px';
      cur.style.top = (cv.offsetTop + cv.clientTop + i * h) + 'px';
      cur.style.width = w + 'px';
      cur.style.height = h + 'px';
    }
  }

  const cv = $('attn-canvas');
  cv.addEventListener('mousemove', (e) => {
    if (!attn) return;
    const r = cv.getBoundingClientRect();
    const L = attn.n_ctx;
    const i = Math.floor(((e.clientY - r.top) / r.height) * L);
    const k = Math.floor(((e.clientX - r.left) / r.width) * L);
    if (i >= 0 && k >= 0 && i < L && k < L) showCell(i, k, false);
  });
  cv.addEventListener('focus', () => { if (attn) showCell(cell[0], cell[1], true); });
  cv.addEventListener('blur', () => { $('attn-cursor').hidden = true; });
  // Arrows move one cell (with Shift: 10), Home/End go to the row's ends.
  cv.addEventListener('keydown', (e) => {
    if (!attn) return;
    const n = e.shiftKey ? 10 : 1;
    const [i, k] = cell;
    const to = { ArrowUp: [i - n, k], ArrowDown: [i + n, k], ArrowLeft: [i, k - n], ArrowRight: [i, k + n],
      Home: [i, 0], End: [i, i] }[e.key];
    if (!to) return;
    e.preventDefault();
    showCell(to[0], to[1], true);
  });

  function fillSelect(sel, n) {
    const keep = sel.value;
    sel.replaceChildren();
    for (let i = 0; i < n; i++) {
      const o = document.createElement('option');
      o.value = String(i);
      o.textContent = String(i);
      sel.appendChild(o);
    }
    if (keep !== '' && Number(keep) < n) sel.value = keep;
  }

  function addInfo(dl, name, value) {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = name;
    dd.textContent = value;
    div.append(dt, dd);
    dl.appendChild(div);
  }

  async function loadModel() {
    try {
      const res = await api('GET', '/v1/models');
      if (!res.ok) {
        const msg = await errorText(res);
        $('model-line').textContent = res.status === 401 ? 'API key required' : 'Model unavailable';
        setStatus($('model-status'), 'Error: ' + msg, true);
        if (res.status === 401) $('api-key').focus();
        return;
      }
      const m = (await res.json()).data[0];
      modelInfo = m;
      $('model-line').textContent = m.id + ' \u00b7 ' + m.variant + ' \u00b7 ' + fmtCount(m.n_params) +
        ' parameters \u00b7 context ' + m.context_length + ' \u00b7 ' + m.quantization;
      const dl = $('model-info');
      dl.replaceChildren();
      addInfo(dl, 'Name', m.id);
      addInfo(dl, 'Variant', m.variant);
      addInfo(dl, 'Parameters', fmtCount(m.n_params));
      addInfo(dl, 'File size', fmtBytes(m.file_size));
      addInfo(dl, 'Context', m.context_length + ' tokens');
      addInfo(dl, 'Quantization', m.quantization);
      addInfo(dl, 'Vocabulary', String(m.n_vocab));
      addInfo(dl, 'Layers', String(m.n_layer));
      addInfo(dl, 'Heads', String(m.n_head));
      addInfo(dl, 'Width', String(m.n_embd));
      $('max-tokens').max = String(m.context_length);
      setStatus($('model-status'), '', false);
      const isStatic = STATIC_VARIANTS.includes(m.variant);
      fillSelect($('attn-layer'), m.n_layer);
      fillSelect($('attn-head'), m.n_head);
      for (const id of ['attn-layer', 'attn-head', 'attn-scale', 'attn-show']) $(id).disabled = !isStatic;
      if (isStatic) {
        $('attn-note').textContent = 'A ' + m.variant + ' synthesizer attends with fixed weights: each head is one ' +
          m.context_length + ' \u00d7 ' + m.context_length + ' causal matrix, the same for every input.';
        showAttention();
      } else {
        $('attn-note').textContent = 'The ' + m.variant + ' variant computes its attention from the input, ' +
          'so there is no fixed map to show.';
        $('attn-canvas').classList.add('off');
      }
    } catch (err) {
      $('model-line').textContent = 'Server unreachable';
      setStatus($('model-status'), 'Error: ' + err.message, true);
    }
  }

  showKeyState();
  loadModel();
})();

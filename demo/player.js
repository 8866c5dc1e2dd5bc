// The step player: draws a sampled trace (sent once by the server as props.value) at any step, in the browser.
// Scrubbing, Play, the keyboard and the reshaping controls never send a request; a click on a bar asks the
// server for a what-if (trigger('select', {index: step, value: bin})). With "Where it looked" ticked, a paused
// player asks the server function where_it_looked for the step on screen, once it has stayed there LOOK_DELAY_MS,
// and keeps each answer per (panel, step); Play never asks.
// js_on_load runs once: every animation frame re-reads props.value and redraws only when something changed.
const LUTS = __LUTS__;  // {entropy: [[r,g,b] x256], surprise: [...], looked: [...]}: dark = unremarkable, bright = notable
const SIZE = 28, N = SIZE * SIZE, SURPRISE_MAX = __SURPRISE_MAX__, LOOK_DELAY_MS = 150;  // surprise: bits, as on the server
const C = __COLOURS__;  // pixelar.render.COLOURS as CSS colours: {bg: '#rrggbb', chosen: ..., window: ..., ...}
const SPEEDS = [
  {label: '4 pixels a second', perSecond: 4},
  {label: '1 row a second', perSecond: 28},
  {label: '1 pixel a frame', perFrame: 1},
  {label: 'whole image in 5 s', perSecond: N / 5},
];
const $ = (sel) => element.querySelector(sel);
const ui = {
  root: $('.px-player'), empty: $('.px-empty'), body: $('.px-body'), panels: $('.px-panels'),
  slider: $('.px-slider'), stepBox: $('.px-step'), play: $('.px-play'), speed: $('.px-speed'),
  temperature: $('.px-t'), tValue: $('.px-t-value'), topK: $('.px-k'), topP: $('.px-p'), pValue: $('.px-p-value'),
  reset: $('.px-reset'), present: $('.px-present'), caption: $('.px-caption'), status: $('.px-status'),
  back: $('.px-back'), look: $('.px-look'),
};
SPEEDS.forEach((s, i) => ui.speed.add(new Option(s.label, i)));
ui.speed.value = 2;

const st = {data: null, id: null, step: 0, playing: false, acc: 0, last: 0, dirty: true, drawn: 0, single: false,
            looked: new Map(), asking: new Set(), still: {step: -1, since: 0}};  // maps by `${panel}:${step}`
// the test hook: frames drawn, current step, playing
window.pixelarPlayers = window.pixelarPlayers || [];
const hook = {frames: 0, get step() { return st.step; }, get playing() { return st.playing; },
              get loaded() { return st.data ? st.data.id : null; }, reshape: (lp, t, k, p) => reshape(lp, t, k, p),
              lookRequests: 0,  // where_it_looked calls sent
              binLabels(panel = 0) { const p = st.data && st.data.panels[panel]; return p && p.bars ? p.bars.labels : null; },
              tokens(panel = 0) { return st.data ? Array.from(st.data.panels[panel].tokens) : null; },
              looked(panel = 0) {  // the map received for the current step: {values (784, ÷ largest), max, ms} or {error}
                const entry = st.looked.get(lookKey(panel, st.step));
                return entry && (entry.error ? {error: entry.error} : {values: Array.from(entry.values), max: entry.max, ms: entry.ms});
              },
              sampled() {  // the distribution the first image's current pixel was drawn from, and its token
                const d = st.data, K = d.k, p = d.panels[0], at = Math.min(st.step, N - 1);
                return {probs: Array.from(reshape(p.logp.subarray(at * K, at * K + K), d.temperature, d.top_k, d.top_p)),
                        token: p.tokens[at], top_k: d.top_k, top_p: d.top_p};
              }};
window.pixelarPlayers.push(hook);

// ---- decoding ----
function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function halfs(b64) {  // little-endian float16 -> Float32Array
  const b = bytes(b64), n = b.length / 2, out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = b[2 * i] | (b[2 * i + 1] << 8), s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, f = h & 1023;
    out[i] = e === 0 ? s * f * 5.960464477539063e-8 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
  }
  return out;
}
function load(v) {
  const panels = v.panels.map((p) => ({...p, tokens: bytes(p.tokens), logp: halfs(p.logp),
                                         entropy: halfs(p.entropy), chosen: halfs(p.chosen)}));
  st.data = {...v, panels};
  st.id = v.id;
  st.single = false;
  st.step = Math.max(0, Math.min(N, v.step || 0));
  st.playing = false;
  st.looked = new Map(); st.asking = new Set();
  ui.status.textContent = '';
  ui.slider.max = N;
  ui.temperature.value = v.temperature;
  ui.topK.value = v.top_k == null ? '' : v.top_k; ui.topK.max = v.k; st.topK = ui.topK.value;
  ui.topP.value = v.top_p == null ? 1 : v.top_p;
  ui.empty.style.display = 'none';
  ui.body.style.display = '';
  if (v.look && !ui.look.checked) { ui.look.checked = true; ui.root.classList.add('px-looking'); }
  buildPanels();
  if (window.innerWidth <= 720 && ui.root.getBoundingClientRect().top > window.innerHeight * 0.6) {
    ui.root.scrollIntoView({behavior: 'smooth', block: 'start'});  // a phone: the new trace is below its button
  }
  st.dirty = true;
}

// ---- the distribution at a temperature, top-k and top-p (the sampler's definition) ----
function reshape(logp, t, k, p) {
  const K = logp.length, probs = new Float64Array(K);
  let max = -Infinity;
  for (let i = 0; i < K; i++) max = Math.max(max, logp[i] / t);
  let sum = 0;
  for (let i = 0; i < K; i++) { probs[i] = Math.exp(logp[i] / t - max); sum += probs[i]; }
  for (let i = 0; i < K; i++) probs[i] /= sum;
  const order = [...Array(K).keys()].sort((a, b) => probs[b] - probs[a] || a - b);  // ties: lower bin first
  const keep = new Uint8Array(K);
  const kk = k == null || k === '' || !(k >= 1) ? K : Math.min(K, Math.floor(k));
  order.slice(0, kk).forEach((i) => { keep[i] = 1; });
  if (p != null && p <= 1) {  // the shortest run, most probable first, whose probability reaches p
    let before = 0, n = 0;
    for (const i of order) {
      if (!keep[i]) continue;
      if (n > 0 && before >= p) keep[i] = 0; else { n++; }
      before += probs[i];
    }
  }
  let total = 0;
  for (let i = 0; i < K; i++) if (!keep[i]) probs[i] = 0; else total += probs[i];
  for (let i = 0; i < K; i++) probs[i] /= total;
  return probs;
}
function entropyBits(probs) {
  let h = 0;
  for (const q of probs) if (q > 0) h -= q * Math.log2(q);
  return h;
}
function validTopK(text, K) {  // '' (off) or a whole number of bins from 1 to K; anything else is refused
  const k = Number(text);
  return text === '' || (Number.isInteger(k) && k >= 1 && k <= K);
}
function settings() {
  const t = Number(ui.temperature.value), text = ui.topK.value.trim(), K = st.data ? st.data.k : 16;
  const p = Number(ui.topP.value);
  return {t, k: text !== '' && validTopK(text, K) ? Number(text) : null, p: p >= 1 ? null : p};
}
function sameAsSampled() {
  const d = st.data, s = settings();
  return Math.abs(s.t - d.temperature) < 1e-9 && (s.k || null) === (d.top_k || null) && (s.p || null) === (d.top_p || null);
}

// ---- drawing ----
function fit(canvas) {  // backing store = CSS size x devicePixelRatio; returns a context in CSS pixels
  const r = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * r) || canvas.height !== Math.round(h * r)) {
    canvas.width = Math.round(w * r); canvas.height = Math.round(h * r);
  }
  const g = canvas.getContext('2d');
  g.setTransform(r, 0, 0, r, 0, 0);
  g.clearRect(0, 0, w, h);
  return {g, w, h};
}
function grey(token, K) { const v = Math.round((token + 0.5) / K * 255); return `rgb(${v},${v},${v})`; }
function padRows(context) { return context >= N ? 0 : Math.ceil(context / SIZE); }  // a whole-past model: no start tokens
function outline(g, cells, cell, x0, y0, colour, width) {  // boundary of a set of grid cells (Set of r*SIZE+c)
  g.strokeStyle = colour; g.lineWidth = width; g.beginPath();
  for (const id of cells) {
    const r = Math.floor(id / SIZE), c = id % SIZE, x = x0 + c * cell, y = y0 + r * cell;
    if (!cells.has(id - SIZE)) { g.moveTo(x, y); g.lineTo(x + cell, y); }
    if (!cells.has(id + SIZE)) { g.moveTo(x, y + cell); g.lineTo(x + cell, y + cell); }
    if (c === 0 || !cells.has(id - 1)) { g.moveTo(x, y); g.lineTo(x, y + cell); }
    if (c === SIZE - 1 || !cells.has(id + 1)) { g.moveTo(x + cell, y); g.lineTo(x + cell, y + cell); }
  }
  g.stroke();
}
function drawCanvas(canvas, panel, step, looked) {  // looked: this step's map (784, ÷ largest) to mark, or null
  const d = st.data, K = d.k, pad = padRows(d.context), rows = pad + SIZE;
  const {g, w, h} = fit(canvas);
  const cell = Math.floor(Math.min(w / SIZE, h / rows)), x0 = Math.floor((w - cell * SIZE) / 2), y0 = 0;
  const starts = Math.min(d.context, pad * SIZE);
  for (let i = 0; i < pad * SIZE; i++) {
    g.fillStyle = i >= pad * SIZE - starts ? C.start : C.gutter;
    g.fillRect(x0 + (i % SIZE) * cell, y0 + Math.floor(i / SIZE) * cell, cell, cell);
  }
  if (pad) {
    g.fillStyle = C.text; g.font = `${Math.max(12, Math.round(cell * 0.7))}px sans-serif`; g.textBaseline = 'middle';
    g.fillText('start tokens', x0 + 4, y0 + (pad - 0.5) * cell);
  }
  const top = y0 + pad * cell;
  for (let i = 0; i < N; i++) {
    const x = x0 + (i % SIZE) * cell, y = top + Math.floor(i / SIZE) * cell;
    if (i <= step && i < N) { g.fillStyle = grey(panel.tokens[i], K); g.fillRect(x, y, cell, cell); }
    else {  // not drawn yet: hatched, unlike black
      g.fillStyle = C.unseen; g.fillRect(x, y, cell, cell);
      g.fillStyle = C.gutter; g.fillRect(x + cell / 2 - 1, y + cell / 2 - 1, 2, 2);
    }
  }
  if (looked) {  // where it looked, on the big canvas: a dot in each earlier pixel, its area ∝ the influence
    g.fillStyle = C.looked; g.strokeStyle = C.bg; g.lineWidth = 1;
    for (let i = 0; i < step; i++) {
      const radius = Math.sqrt(looked[i]) * cell * 0.45;
      if (radius < 0.6) continue;
      g.beginPath(); g.arc(x0 + (i % SIZE + 0.5) * cell, top + (Math.floor(i / SIZE) + 0.5) * cell, radius, 0, 2 * Math.PI);
      g.fill(); g.stroke();
    }
  }
  if (step < N) {
    const cells = new Set(), first = Math.max(0, pad * SIZE + step - d.context);
    for (let i = first; i < pad * SIZE + step; i++) cells.add(i);
    outline(g, cells, cell, x0, y0, C.window, Math.max(2, cell / 5));
    outline(g, new Set([pad * SIZE + step]), cell, x0, y0, C.chosen, Math.max(3, cell / 4));
  }
  return {cell, x0, top};
}
function drawBars(canvas, panel, step) {
  const d = st.data, K = d.k, {g, w, h} = fit(canvas);
  const L = 40, R = 8, T = 30, B = 46, pw = w - L - R, ph = h - T - B, slot = pw / K;
  const fs = Math.max(14, Math.min(18, Math.round(h / 14)));
  g.font = `${fs}px sans-serif`; g.fillStyle = C.text; g.textBaseline = 'middle'; g.textAlign = 'right';
  const y = (q) => T + ph * (1 - q);
  for (const q of [0, 0.5, 1]) {
    g.strokeStyle = C.grid; g.lineWidth = 1; g.beginPath(); g.moveTo(L, y(q)); g.lineTo(w - R, y(q)); g.stroke();
    g.fillText(String(q), L - 6, y(q));
  }
  g.textAlign = 'left'; g.textBaseline = 'top';
  if (step >= N) { g.fillText('Done: all 784 pixels chosen.', L, 4); return; }
  const lp = panel.logp.subarray(step * K, step * K + K);
  const sampled = reshape(lp, d.temperature, d.top_k, d.top_p), token = panel.tokens[step];
  const s = settings(), other = sameAsSampled() ? null : reshape(lp, s.t, s.k, s.p);
  for (let b = 0; b < K; b++) {
    const x = L + b * slot + slot * 0.12, bw = slot * 0.76;
    g.fillStyle = b === token ? C.chosen : C.bar;
    if (sampled[b] > 0) g.fillRect(x, y(sampled[b]), bw, y(0) - y(sampled[b]));
    if (other) { g.strokeStyle = C.reshaped; g.lineWidth = 3; g.strokeRect(x, y(other[b]), bw, y(0) - y(other[b])); }
    g.fillStyle = grey(b, K); g.fillRect(x, h - B + 4, bw, 14);
  }
  const labels = binLabels(g, K, L, slot, fs);
  g.fillStyle = C.text; g.textAlign = 'center';
  for (const [b, left, right] of labels) g.fillText(String(b), (left + right) / 2, h - B + 21);
  g.textAlign = 'left';
  const legendText = `chosen  sampled (${describe(d.temperature, d.top_k, d.top_p)})` + (other ? `  ${describe(s.t, s.k, s.p)}` : '');
  g.font = `${fitFont(g, legendText, w - L - 90, fs)}px sans-serif`;
  let x = L;
  const legend = (colour, text, hollow) => {
    if (hollow) { g.strokeStyle = colour; g.lineWidth = 3; g.strokeRect(x, 6, 14, 14); }
    else { g.fillStyle = colour; g.fillRect(x, 6, 14, 14); }
    g.fillStyle = C.text; g.fillText(text, x + 19, 4); x += 30 + g.measureText(text).width;
  };
  legend(C.chosen, 'chosen');
  legend(C.bar, `sampled (${describe(d.temperature, d.top_k, d.top_p)})`);
  if (other) legend(C.reshaped, describe(s.t, s.k, s.p), true);
  return {sampled, other, token, L, slot, labels};
}
function binLabels(g, K, L, slot, fs) {
  // the bin numbers that fit under narrow bars: a smaller font (down to 13 px), then every 2nd, 4th, ... bin, so that
  // no two touch; sets g.font and returns [bin, left, right] (CSS pixels) for each
  const gap = 4;
  let size = fs;
  const widest = () => { g.font = `${size}px sans-serif`; return g.measureText(String(K - 1)).width + gap; };
  while (size > 13 && widest() > slot) size--;
  let every = 1;
  while (every < K && widest() > slot * every) every *= 2;  // a hidden canvas (no width) still ends
  const out = [];
  for (let b = 0; b < K; b += every) {
    const centre = L + (b + 0.5) * slot, half = g.measureText(String(b)).width / 2;
    out.push([b, centre - half, centre + half]);
  }
  return out;
}
function fitFont(g, text, width, size) {  // the largest font size up to ``size`` at which ``text`` fits
  for (; size > 10; size--) { g.font = `${size}px sans-serif`; if (g.measureText(text).width <= width) break; }
  return size;
}
function describe(t, k, p) {
  return [`T ${Number(t).toFixed(2).replace(/\.?0+$/, '')}`, k ? `top-k ${k}` : null, p != null && p < 1 ? `top-p ${p}` : null]
    .filter(Boolean).join(', ');
}
function drawMap(canvas, values, step, lut, vmax, label, extra = {}) {
  // values: pixel -> number (null: nothing to show); extra: context (outline the model's window), dim, top (the
  // scale's end), short (the title where the label does not fit; default its first word)
  const {g, w, h} = fit(canvas), titleH = 22, barH = 34;
  const cell = Math.max(1, Math.floor(Math.min(w / SIZE, (h - titleH - barH) / SIZE)));
  const x0 = Math.floor((w - cell * SIZE) / 2), y0 = titleH, bw = cell * SIZE;
  g.fillStyle = C.text; g.textBaseline = 'top'; g.textAlign = 'center';
  const size = fitFont(g, label, w - 4, 16), text = size > 11 ? label : extra.short || label.split(' ')[0];
  g.font = `${fitFont(g, text, w - 4, 16)}px sans-serif`;
  g.fillText(text, w / 2, 2);
  g.globalAlpha = extra.dim ? 0.35 : 1;
  for (let i = 0; i < N; i++) {
    const x = x0 + (i % SIZE) * cell, y = y0 + Math.floor(i / SIZE) * cell;
    if (values && i <= step && i < N) {
      const c = lut[Math.max(0, Math.min(255, Math.round(values(i) / vmax * 255)))];
      g.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
    } else g.fillStyle = C.unseen;
    g.fillRect(x, y, cell, cell);
  }
  g.globalAlpha = 1;
  if (step < N) {
    if (extra.context) {
      const cells = new Set();
      for (let i = Math.max(0, step - extra.context); i < step; i++) cells.add(i);
      outline(g, cells, cell, x0, y0, C.window, Math.max(1, cell / 8));
    }
    g.strokeStyle = C.chosen; g.lineWidth = Math.max(2, cell / 4);
    g.strokeRect(x0 + (step % SIZE) * cell, y0 + Math.floor(step / SIZE) * cell, cell, cell);
  }
  const by = y0 + SIZE * cell + 3;
  for (let i = 0; i < bw; i++) {
    const c = lut[Math.round(i / Math.max(1, bw - 1) * 255)];
    g.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`; g.fillRect(x0 + i, by, 1, 10);
  }
  const top = extra.top || String(vmax);
  g.fillStyle = C.text; g.font = '15px sans-serif';
  g.textAlign = 'left'; g.fillText('0', x0, by + 12);
  g.font = `${fitFont(g, top, bw - 16, 15)}px sans-serif`;
  g.textAlign = 'right'; g.fillText(top, x0 + bw, by + 12);
  g.textAlign = 'left';
}
function lookKey(panel, step) { return `${panel}:${step}`; }
function drawLooked(p, pi, step) {  // this step's map once it has come; while playing, the last one, dimmed
  const d = st.data, entry = step < N ? st.looked.get(lookKey(pi, step)) : null;
  let title = 'where it looked', short = title, shown = null;
  if (entry && !entry.error) { shown = {values: entry.values, step}; p.lastLooked = shown; title += ` (${Math.round(entry.ms)} ms)`; }
  else if (entry || (step < N && !d.looks)) { title = 'where it looked: not available'; short = 'not available'; }
  else if (st.playing) { title = 'pause to see where it looked'; short = 'pause to see'; shown = p.lastLooked || null; }
  else if (step < N) { title = 'where it looked: computing…'; short = 'computing…'; }
  const at = shown ? shown.step : step;
  drawMap(p.el.lookedMap, shown && ((i) => Math.sqrt(shown.values[i])), at, LUTS.looked, 1, title,
          {context: d.context, dim: shown && shown.step !== step, top: 'largest, √ scale', short});
}
function askWhereItLooked(now) {  // the maps of the step on screen, once it has stayed there LOOK_DELAY_MS, never while playing
  const d = st.data;
  if (!ui.look.checked || st.playing || !d.looks || st.step >= N) { st.still.step = -1; return; }
  if (st.still.step !== st.step) { st.still = {step: st.step, since: now}; return; }
  if (now - st.still.since < LOOK_DELAY_MS) return;
  shownPanels().forEach((p, panel) => {
    const key = lookKey(panel, st.step), id = st.id;
    if (st.looked.has(key) || st.asking.has(key)) return;
    st.asking.add(key);
    hook.lookRequests++;
    server.where_it_looked({id: d.looks, panel, step: st.step})
      .then((r) => (r && r.map ? {values: halfs(r.map), max: r.max, ms: r.ms}
                                : {error: (r && r.error) || 'The server sent no map.'}))
      .catch(() => ({error: 'Could not reach the server to ask where it looked.'}))
      .then((entry) => {
        if (st.id !== id) return;  // a new image came meanwhile
        st.asking.delete(key);
        st.looked.set(key, entry);
        if (entry.error) ui.status.textContent = entry.error;
        st.dirty = true;
      });
  });
}
function readout(panel, step, bars) {
  const d = st.data;
  if (step >= N) return `<b>Done</b>: all ${N} pixels chosen (seed ${d.seed}).`;
  const row = Math.floor(step / SIZE), col = step % SIZE, starts = d.context >= N ? 0 : Math.max(0, d.context - step);
  const previous = Math.min(d.context, step), seen = [];
  if (starts) seen.push(`${starts} start token${starts === 1 ? '' : 's'}`);
  if (previous) seen.push(d.context >= N ? `all ${previous} earlier pixels` : `the ${previous} previous pixel${previous === 1 ? '' : 's'}`);
  if (!seen.length) seen.push('nothing yet (the first pixel)');
  if (d.uses_position) seen.push('its row and column');
  if (d.class_name != null) seen.push(`the class “${esc(d.class_name)}”`);
  const how = step < (panel.prefix_length || 0) ? 'was given' : panel.forced_step === step ? 'was forced to' : 'chose';
  let text = `Row ${row}, column ${col}. The model sees ${seen.join(', ')}. It ${how} bin <b>${bars.token}</b> of ${d.k}.`;
  if (bars.other) {
    text += ` <span class="px-pink">At ${describe(ui.temperature.value, settings().k, settings().p)}: entropy ` +
      `${entropyBits(bars.other).toFixed(2)} bits, p(bin ${bars.token}) = ${bars.other[bars.token].toFixed(2)}.</span>`;
  }
  return text;
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c])); }

function buildPanels() {
  const d = st.data, two = d.panels.length > 1 && !st.single;
  ui.panels.innerHTML = '';
  ui.root.classList.toggle('px-two', two);
  ui.back.style.display = d.panels.length > 1 ? '' : 'none';
  ui.back.textContent = two ? 'Show the original only' : 'Show both futures';
  (two ? d.panels : d.panels.slice(0, 1)).forEach((p, i) => {
    const div = document.createElement('div');
    div.className = 'px-panel';
    div.innerHTML = `${two ? `<div class="px-panel-title">${esc(p.title)}</div>` : ''}
      <div class="px-main"><canvas class="px-canvas" aria-label="the image so far"></canvas>
      <div class="px-side"><canvas class="px-bars" title="Click a bar: what if this pixel were that bin?"></canvas>
      <div class="px-numbers"><span>entropy <b class="px-entropy">–</b> bits</span><span>p(chosen) <b class="px-chosen">–</b></span></div>
      <div class="px-maps"><canvas class="px-map px-entropy-map"></canvas><canvas class="px-map px-surprise-map"></canvas>
      <canvas class="px-map px-looked-map" title="Where it looked: how much each earlier pixel moves the log-probability of the chosen bin (|gradient| summed over the bins), divided by this step's largest, on a square-root colour scale. The blue outline is what the model sees."></canvas></div>
      </div></div><div class="px-readout"></div>`;
    ui.panels.appendChild(div);
    p.el = {canvas: div.querySelector('.px-canvas'), bars: div.querySelector('.px-bars'),
            entropyMap: div.querySelector('.px-entropy-map'), surpriseMap: div.querySelector('.px-surprise-map'),
            lookedMap: div.querySelector('.px-looked-map'),
            entropy: div.querySelector('.px-entropy'), chosen: div.querySelector('.px-chosen'),
            readout: div.querySelector('.px-readout')};
    if (i === 0) p.el.bars.addEventListener('click', (e) => clickBar(e, p));
  });
}
function clickBar(e, panel) {
  if (st.step >= N || !panel.bars) return;
  const x = e.offsetX, b = Math.floor((x - panel.bars.L) / panel.bars.slot);
  if (b < 0 || b >= st.data.k) return;
  st.playing = false;
  ui.status.textContent = `Asking the model: what if step ${st.step} were bin ${b}…`;
  trigger('select', {index: st.step, value: b});
}
function shownPanels() { const d = st.data; return d.panels.length > 1 && !st.single ? d.panels : d.panels.slice(0, 1); }
function draw() {
  const d = st.data, step = st.step;
  shownPanels().forEach((p, panel) => {
    if (!p.el) return;
    const entry = ui.look.checked && !st.playing ? st.looked.get(lookKey(panel, step)) : null;
    drawCanvas(p.el.canvas, p, step, entry && !entry.error ? entry.values : null);
    p.bars = drawBars(p.el.bars, p, step);
    drawMap(p.el.entropyMap, (i) => p.entropy[i], step, LUTS.entropy, Math.log2(d.k), 'entropy of each step, bits');
    drawMap(p.el.surpriseMap, (i) => -Math.log2(Math.max(p.chosen[i], 1e-9)), step, LUTS.surprise, SURPRISE_MAX,
            'surprise of each pick, bits');
    if (ui.look.checked) drawLooked(p, panel, step);
    p.el.entropy.textContent = step < N ? p.entropy[step].toFixed(2) : '–';
    p.el.chosen.textContent = step < N ? p.chosen[step].toFixed(2) : '–';
    p.el.readout.innerHTML = readout(p, step, p.bars);
  });
  ui.slider.value = step;
  if (document.activeElement !== ui.stepBox) ui.stepBox.value = step;
  ui.caption.textContent = d.caption;  // plain text: it carries model and class names
  ui.tValue.textContent = Number(ui.temperature.value).toFixed(2);
  ui.pValue.textContent = Number(ui.topP.value).toFixed(2);
  ui.play.textContent = st.playing ? 'Pause' : '▶ Play';
  ui.root.classList.toggle('px-playing', st.playing);
  hook.frames++;
}

// ---- control ----
function go(step) { st.step = Math.max(0, Math.min(N, Math.round(step))); st.dirty = true; }
function togglePlay() {
  if (!st.data) return;
  st.playing = !st.playing;
  if (st.playing && st.step >= N) st.step = 0;
  st.acc = 0; st.last = performance.now(); st.dirty = true;
  if (st.playing) ui.status.textContent = '';
}
ui.slider.addEventListener('input', () => { st.playing = false; go(Number(ui.slider.value)); });
ui.stepBox.addEventListener('change', () => {
  const v = Number(ui.stepBox.value);
  if (ui.stepBox.value.trim() === '' || !Number.isInteger(v) || v < 0 || v > N) {
    ui.status.textContent = `Step must be a whole number from 0 to ${N}.`;
    ui.stepBox.value = st.step;
  } else { ui.status.textContent = ''; st.playing = false; go(v); }
});
ui.stepBox.addEventListener('keydown', (e) => {  // Enter takes the step, then the keys go back to the player
  if (e.key === 'Enter') { e.preventDefault(); ui.stepBox.blur(); }
});
ui.play.addEventListener('click', togglePlay);
ui.speed.addEventListener('change', () => ui.speed.blur());  // the keys go back to the player
ui.look.addEventListener('change', () => {
  ui.look.blur();
  ui.root.classList.toggle('px-looking', ui.look.checked);
  for (const [key, entry] of st.looked) if (entry.error) st.looked.delete(key);  // ticking again retries
  st.dirty = true;
});
$('.px-home').addEventListener('click', () => { st.playing = false; go(0); });
$('.px-end').addEventListener('click', () => { st.playing = false; go(N); });
$('.px-prev').addEventListener('click', () => { st.playing = false; go(st.step - 1); });
$('.px-next').addEventListener('click', () => { st.playing = false; go(st.step + 1); });
for (const box of [ui.temperature, ui.topK, ui.topP]) box.addEventListener('input', () => { st.dirty = true; });
ui.topK.addEventListener('change', () => {  // a bad top-k is named and undone, never used as something else
  const text = ui.topK.value.trim(), K = st.data ? st.data.k : 16;
  if (validTopK(text, K)) { st.topK = text; if (ui.status.dataset.topk) { ui.status.textContent = ''; delete ui.status.dataset.topk; } return; }
  ui.status.textContent = `top-k must be a whole number of bins from 1 to ${K} (empty: off), not "${text.slice(0, 12) || 'that'}"`;
  ui.status.dataset.topk = '1';
  ui.topK.value = st.topK || ''; st.dirty = true;
});
ui.reset.addEventListener('click', () => {
  const d = st.data; if (!d) return;
  ui.temperature.value = d.temperature; ui.topK.value = d.top_k == null ? '' : d.top_k; ui.topP.value = d.top_p == null ? 1 : d.top_p;
  st.topK = ui.topK.value;
  st.dirty = true;
});
ui.back.addEventListener('click', () => { st.single = !st.single; buildPanels(); st.dirty = true; });
// Present shows the lesson's bar too, if the page has one: a copy, since only the player is on the screen then
function showLesson(on) {
  ui.root.querySelectorAll('.px-lesson').forEach((strip) => strip.remove());
  const bar = on && document.querySelector('#lesson .lesson-bar');
  if (!bar) return;
  const strip = bar.cloneNode(true);
  strip.classList.add('px-lesson');
  ui.root.prepend(strip);
}
function present(on) {  // Present on or off: the button, and the browser leaving full screen (Esc)
  ui.root.classList.toggle('px-presenting', on);
  showLesson(on);
  ui.present.textContent = on ? 'Leave full screen (Esc)' : 'Present (full screen)';
  if (on && ui.root.requestFullscreen) ui.root.requestFullscreen().catch(() => {});
  if (!on && document.fullscreenElement) document.exitFullscreen().catch(() => {});
  st.dirty = true;
}
ui.present.addEventListener('click', () => present(!ui.root.classList.contains('px-presenting')));
document.addEventListener('fullscreenchange', () => {
  if (!document.fullscreenElement && ui.root.classList.contains('px-presenting')) present(false);
});
document.addEventListener('keydown', (e) => {
  if (!st.data || ui.root.offsetParent === null && !ui.root.classList.contains('px-presenting')) return;
  // a box, a list or another widget keeps its own keys; only the player's own slider shares them
  const box = e.target && e.target.closest && e.target.closest('input, select, textarea, [contenteditable=""], [contenteditable=true]');
  if ((box && box !== ui.slider) || e.altKey || e.ctrlKey || e.metaKey) return;
  const row = e.shiftKey ? SIZE : 1;
  const keys = {ArrowRight: () => go(st.step + row), ArrowLeft: () => go(st.step - row), PageDown: () => go(st.step + 1),
                PageUp: () => go(st.step - 1), Home: () => go(0), End: () => go(N), ' ': togglePlay,
                Escape: () => { if (ui.root.classList.contains('px-presenting')) ui.present.click(); }};
  if (!(e.key in keys)) return;
  e.preventDefault(); e.stopPropagation();
  if (e.key !== ' ') st.playing = false;
  keys[e.key]();
}, true);
let lastSize = '';
function fitHeight() {  // the pictures take what the screen has left below the player's top (a projector: no scrolling)
  const main = ui.panels.querySelector('.px-main');
  if (!main || window.innerWidth <= 720) { ui.root.style.removeProperty('--px-main-h'); return; }
  const presenting = ui.root.classList.contains('px-presenting');
  const top = presenting ? 0 : ui.root.getBoundingClientRect().top + window.scrollY;
  // controls, caption, readout, reshaping row (presenting, the player is the screen's height: measure its content)
  const content = ui.body.lastElementChild.getBoundingClientRect().bottom - ui.root.getBoundingClientRect().top + 6;
  const rest = content - main.offsetHeight;
  // never shorter than the bars, numbers and maps beside the canvas at their least (or they run over the readout)
  const side = main.querySelector('.px-side'), shown = [...side.children].filter((c) => c.offsetParent !== null);
  const least = shown.reduce((sum, c) => sum + (parseFloat(getComputedStyle(c).minHeight) || c.offsetHeight),
                             (parseFloat(getComputedStyle(side).rowGap) || 0) * (shown.length - 1));
  const h = Math.round(Math.max(240, least, Math.min(660, window.innerHeight - top - rest - 14)));
  const now = parseFloat(ui.root.style.getPropertyValue('--px-main-h')) || 0;
  if (Math.abs(h - now) >= 2) ui.root.style.setProperty('--px-main-h', `${h}px`);  // settles (no half-pixel flicker)
}
// the moment on screen, for the page's link (demo/links.py): the step once it stays put, the what-if, where it looked
let shared = '', sharedAt = 0;
function share(now) {
  const d = st.data, link = window.pixelarLink;
  if (!link || st.playing || now - sharedAt < 300) return;
  const other = d.panels[1], whatIf = other ? `${other.forced_step}:${other.tokens[other.forced_step]}` : '';
  const state = [st.step, whatIf, ui.look.checked].join('|');
  if (state === shared) return;
  shared = state; sharedAt = now;
  link.set('step', 'step', st.step); link.set('step', 'whatif', whatIf); link.set('step', 'look', ui.look.checked);
}
function tick(now) {
  requestAnimationFrame(tick);
  const v = props.value;
  if (v && typeof v === 'object' && v.id && v.id !== st.id) load(v);
  if (!v && st.data) { st.data = null; st.id = null; ui.empty.style.display = ''; ui.body.style.display = 'none'; }
  if (!st.data) return;
  if (st.playing) {
    const s = SPEEDS[Number(ui.speed.value)], dt = Math.min(0.25, (now - st.last) / 1000);
    st.acc += s.perFrame ? s.perFrame : s.perSecond * dt;
    st.last = now;
    const whole = Math.floor(st.acc);
    if (whole > 0) { st.acc -= whole; st.step = Math.min(N, st.step + whole); }
    if (st.step >= N) st.playing = false;
    st.dirty = true;
  }
  if (st.dirty) { st.dirty = false; draw(); }
  // refit once the frame's text is in (a new readout may take another line), so a new image is never drawn too tall
  const size = [element.clientWidth, window.innerHeight, ui.root.getBoundingClientRect().top + window.scrollY,
                ui.root.offsetHeight, st.id, st.single, ui.root.className].join('x');  // settles after one refit
  if (size !== lastSize) { lastSize = size; fitHeight(); draw(); }
  askWhereItLooked(now);
  share(now);
}
requestAnimationFrame(tick);

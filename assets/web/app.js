// The search page: text queries go to GET /search, dropped images to POST /search; results are
// thumbnails from /images/<id> with their cosine similarity. The duplicates panel asks
// GET /duplicates?threshold=T and shows each group of exact copies and of near duplicates. A server started with an API key
// answers 401: the page then asks for the key once (kept for this tab) and sends it as a Bearer
// token, fetching thumbnails itself since an <img> cannot send it.
'use strict';

const $ = (id) => document.getElementById(id);
const kKeyName = 'clip-serve-api-key';
const apiKey = () => sessionStorage.getItem(kKeyName) || '';

async function api(url, options = {}) {
  const key = apiKey();
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const res = await fetch(url, { ...options, headers });
  if (res.status === 401) {
    const entered = window.prompt('This server needs an API key:');
    if (entered) {
      sessionStorage.setItem(kKeyName, entered.trim());
      return fetch(url, { ...options, headers: { Authorization: `Bearer ${entered.trim()}` } });
    }
  }
  return res;
}

async function showThumbnail(img, url) {
  if (!apiKey()) {
    img.src = url;
    return;
  }
  const res = await api(url);
  if (res.ok) img.src = URL.createObjectURL(await res.blob());
}

function setMessage(text, isError) {
  $('message').textContent = text;
  $('message').className = isError ? 'message error' : 'message';
}

async function checkHealth() {
  try {
    const res = await fetch('/healthz');
    const body = await res.json();
    const status = $('status');
    if (body.status === 'ready') {
      status.textContent = body.index ? `ready: ${body.index.images} images indexed` : 'ready (no index loaded)';
      status.className = 'status ready';
      return;
    }
    status.textContent = body.status === 'loading' ? 'loading the model…' : `error: ${body.error}`;
    status.className = body.status === 'loading' ? 'status' : 'status error';
    if (body.status === 'loading') setTimeout(checkHealth, 500);
  } catch (e) {
    $('status').textContent = 'server unreachable';
    $('status').className = 'status error';
    setTimeout(checkHealth, 2000);
  }
}

// A thumbnail with its name and, when given, a score.
function figureOf(item, score) {
  const figure = document.createElement('figure');
  const img = document.createElement('img');
  showThumbnail(img, item.url);
  img.alt = item.name;
  img.title = item.path;
  img.loading = 'lazy';
  const caption = document.createElement('figcaption');
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = item.name;
  caption.append(name);
  if (score !== undefined) {
    const s = document.createElement('span');
    s.className = 'score';
    s.textContent = score.toFixed(3);
    caption.append(s);
  }
  figure.append(img, caption);
  return figure;
}

function showResults(body, what) {
  const results = $('results');
  results.replaceChildren();
  for (const hit of body.results) results.append(figureOf(hit, hit.score));
  setMessage(body.results.length ? `${body.results.length} results for ${what}` : `no results for ${what}`, false);
}

async function handleReply(res, what) {
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) {
    setMessage(body.error || `HTTP ${res.status}`, true);
    return;
  }
  showResults(body, what);
}

async function searchText(event) {
  event.preventDefault();
  const q = $('query').value.trim();
  if (!q) return;
  setMessage('searching…', false);
  const params = new URLSearchParams({ q, k: $('k').value });
  try {
    await handleReply(await api(`/search?${params}`), `“${q}”`);
  } catch (e) {
    setMessage(`request failed: ${e}`, true);
  }
}

async function searchImage(file) {
  if (!file) return;
  setMessage(`searching by example: ${file.name}…`, false);
  const form = new FormData();
  form.append('image', file, file.name);
  form.append('k', $('k').value);
  try {
    await handleReply(await api('/search', { method: 'POST', body: form }), `the image ${file.name}`);
  } catch (e) {
    setMessage(`request failed: ${e}`, true);
  }
}

function showDuplicates(body) {
  const out = $('duplicates');
  out.replaceChildren();
  const sections = [['exact', 'same content (sha256)'], ['near', `cosine ≥ ${body.threshold.toFixed(2)}`]];
  for (const [kind, label] of sections) {
    body[kind].forEach((group, i) => {
      const div = document.createElement('div');
      div.className = `group ${kind}`;
      const title = document.createElement('h3');
      title.textContent = `${kind === 'exact' ? 'Copies' : 'Near duplicates'} ${i + 1}: ${group.members.length} images, ${label}`;
      const members = document.createElement('div');
      members.className = 'members';
      for (const m of group.members) members.append(figureOf(m, kind === 'near' ? m.best_score : undefined));
      div.append(title, members);
      out.append(div);
    });
  }
  const groups = (n) => `${n} group${n === 1 ? '' : 's'}`;
  $('duplicates-message').textContent = `${groups(body.exact.length)} of copies, ${groups(body.near.length)} of near ` +
    `duplicates among ${body.images} images`;
  $('duplicates-message').className = 'message';
}

async function findDuplicates(event) {
  event.preventDefault();
  $('duplicates-message').textContent = 'comparing every image with every other…';
  $('duplicates-message').className = 'message';
  try {
    const res = await api(`/duplicates?${new URLSearchParams({ threshold: $('threshold').value })}`);
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) {
      $('duplicates-message').textContent = body.error || `HTTP ${res.status}`;
      $('duplicates-message').className = 'message error';
      return;
    }
    showDuplicates(body);
  } catch (e) {
    $('duplicates-message').textContent = `request failed: ${e}`;
    $('duplicates-message').className = 'message error';
  }
}

$('search-form').addEventListener('submit', searchText);
$('duplicates-form').addEventListener('submit', findDuplicates);
$('file').addEventListener('change', (e) => searchImage(e.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  searchImage(e.dataTransfer.files[0]);
});
checkHealth();

// The search page: text queries go to GET /search, dropped images to POST /search; results are
// thumbnails from /images/<id> with their cosine similarity. A server started with an API key
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

function showResults(body, what) {
  const results = $('results');
  results.replaceChildren();
  for (const hit of body.results) {
    const figure = document.createElement('figure');
    const img = document.createElement('img');
    showThumbnail(img, hit.url);
    img.alt = hit.name;
    img.title = hit.path;
    img.loading = 'lazy';
    const caption = document.createElement('figcaption');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = hit.name;
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = hit.score.toFixed(3);
    caption.append(name, score);
    figure.append(img, caption);
    results.append(figure);
  }
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

$('search-form').addEventListener('submit', searchText);
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

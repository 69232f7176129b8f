// `clip serve` against the clients applications use: the official OpenAI Node client on
// /v1/embeddings (strings, a batch, base64, an image data URI, bad requests, API key), and an
// immich-shaped /predict request built exactly as immich's server builds it (Node's FormData
// with `entries` JSON and the image as a Blob, or a `text` field), its reply read as immich reads
// it. Every embedding must equal `clip embed --normalize` of the same input to 1e-5.
//
// Usage: node api_clients_test.js [path/to/clip] [scratch folder]
'use strict';

const { OpenAI } = require('openai');
const { spawn, execFileSync } = require('child_process');
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '../..');
const clipExe = path.resolve(process.argv[2] || path.join(root, 'build/clip'));
const scratch = fs.mkdtempSync(path.join(process.argv[3] || os.tmpdir(), 'clip-api-clients-'));
const model = path.join(root, 'tests/data/fixtures/models/tiny-vit-f16.safetensors');
const image = path.join(root, 'tests/data/images/files/chelsea.png');
const texts = ['a dog', 'a photo of a rocket', 'an orange cat on a sofa'];
const servers = [];

function startServer(args) {
  const child = spawn(clipExe, ['serve', '--port', '0', '--threads', '2', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  servers.push(child);
  let log = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`clip serve exited early (${code}):\n${log}`)));
  });
}

async function waitReady(url) {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(url + 'healthz')).status === 200) return;
    } catch (e) { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server did not become ready within 60 s');
}

// The reference: `clip embed --normalize`, one row per input (images first, then texts).
function clipEmbed() {
  const out = path.join(scratch, 'reference.jsonl');
  const args = ['embed', '--model', model, '--normalize', '--image', image, '--out', out];
  for (const t of texts) args.push('--text', t);
  execFileSync(clipExe, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const rows = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l).embedding);
  return { image: rows[0], texts: rows.slice(1) };
}

function assertClose(got, want, what) {
  assert.strictEqual(got.length, want.length, `${what}: length ${got.length}, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= 1e-5)) throw new Error(`${what}[${i}] = ${got[i]}, expected ${want[i]} (1e-5)`);
  }
}

async function expectApiError(promise, status, param, what) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `${what}: not an APIError: ${e}`);
    assert.strictEqual(e.status, status, `${what}: status ${e.status}: ${e.message}`);
    if (param !== undefined) assert.strictEqual(e.param, param, `${what}: param ${e.param}`);
    assert.ok(e.error && typeof e.error.message === 'string' && e.error.message.length > 0, `${what}: no message`);
    return e;
  }
  throw new Error(`${what}: expected an error ${status}`);
}

async function openaiChecks(url, ref) {
  const client = new OpenAI({ apiKey: 'unused', baseURL: url + 'v1', maxRetries: 0 });
  const name = 'ViT-B-32__openai';

  const list = await client.models.list();
  assert.deepStrictEqual(list.data.map((m) => m.id), [name]);

  // One string; the client asks for base64 by default and decodes the float32 itself.
  let r = await client.embeddings.create({ model: name, input: texts[0] });
  assert.strictEqual(r.object, 'list');
  assert.strictEqual(r.model, name);
  assertClose(r.data[0].embedding, ref.texts[0], 'string (client default: base64)');
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens);

  // A batch, as floats.
  r = await client.embeddings.create({ model: name, input: texts, encoding_format: 'float' });
  assert.strictEqual(r.data.length, texts.length);
  r.data.forEach((d, i) => {
    assert.strictEqual(d.index, i);
    assertClose(d.embedding, ref.texts[i], `batch[${i}]`);
  });

  // base64 asked for explicitly: the raw string, little-endian float32.
  r = await client.embeddings.create({ model: name, input: texts[1], encoding_format: 'base64' });
  const bytes = Buffer.from(r.data[0].embedding, 'base64');
  const floats = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
  assertClose(floats, ref.texts[1], 'base64');

  // An image as a data URI.
  const uri = 'data:image/png;base64,' + fs.readFileSync(image).toString('base64');
  r = await client.embeddings.create({ model: name, input: [uri, texts[2]], encoding_format: 'float' });
  assertClose(r.data[0].embedding, ref.image, 'image data URI');
  assertClose(r.data[1].embedding, ref.texts[2], 'text after the image');

  // Bad requests, as the client reports them.
  const e = await expectApiError(client.embeddings.create({ model: name, input: 'a', dimensions: 16 }), 400, 'dimensions',
    'dimensions smaller than the model\'s');
  assert.ok(e instanceof OpenAI.BadRequestError);
  await expectApiError(client.embeddings.create({ model: 'text-embedding-3-small', input: 'a' }), 404, 'model', 'unknown model');
  await expectApiError(client.embeddings.create({ model: name, input: [] }), 400, 'input', 'empty input');
}

async function immichChecks(url, ref) {
  // As immich's server/src/repositories/machine-learning.repository.ts does it.
  async function predict(payload, config) {
    const formData = new FormData();
    formData.append('entries', JSON.stringify(config));
    if ('imagePath' in payload) {
      const fileBuffer = fs.readFileSync(payload.imagePath);
      formData.append('image', new Blob([new Uint8Array(fileBuffer)]));
    } else {
      formData.append('text', payload.text);
    }
    const response = await fetch(new URL('/predict', url), { method: 'POST', body: formData });
    const body = await response.text();  // read once: the failure message needs it too
    assert.ok(response.ok, `/predict failed with status ${response.status}: ${body}`);
    return JSON.parse(body);
  }
  const visual = await predict({ imagePath: image }, { clip: { visual: { modelName: 'ViT-B-32__openai' } } });
  assert.strictEqual(typeof visual.clip, 'string');
  assertClose(JSON.parse(visual.clip), ref.image, 'immich visual');
  assert.strictEqual(visual.imageWidth, 451);
  assert.strictEqual(visual.imageHeight, 300);
  const textual = await predict({ text: texts[0] },
    { clip: { textual: { modelName: 'ViT-B-32__openai', options: { language: 'en-US' } } } });
  assertClose(JSON.parse(textual.clip), ref.texts[0], 'immich textual');

  const ping = await fetch(new URL('/ping', url));
  assert.ok(ping.ok);
  assert.strictEqual(await ping.text(), 'pong');
}

async function authChecks(url) {
  const name = 'ViT-B-32__openai';
  for (const apiKey of ['wrong', undefined]) {
    const client = new OpenAI({ apiKey: apiKey || 'x', baseURL: url + 'v1', maxRetries: 0,
      defaultHeaders: apiKey ? {} : { Authorization: null } });
    const e = await expectApiError(client.embeddings.create({ model: name, input: 'a' }), 401, undefined,
      `key ${apiKey || 'missing'}`);
    assert.ok(e instanceof OpenAI.AuthenticationError);
    assert.strictEqual(e.code, 'invalid_api_key');
  }
  const ok = new OpenAI({ apiKey: 's3cret', baseURL: url + 'v1', maxRetries: 0 });
  assert.strictEqual((await ok.embeddings.create({ model: name, input: 'a' })).data.length, 1);
  assert.strictEqual((await fetch(url + 'ping')).status, 200);
  assert.strictEqual((await fetch(url + 'healthz')).status, 200);
}

async function main() {
  const ref = clipEmbed();
  const url = await startServer(['--model', `ViT-B-32__openai=${model}`]);
  const keyFile = path.join(scratch, 'key');
  fs.writeFileSync(keyFile, 's3cret\n');
  const keyed = await startServer(['--model', `ViT-B-32__openai=${model}`, '--api-key-file', keyFile]);
  await waitReady(url);
  await waitReady(keyed);
  await openaiChecks(url, ref);
  await immichChecks(url, ref);
  await authChecks(keyed);
  console.log('api clients test: OpenAI client and immich request OK');
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const s of servers) s.kill('SIGTERM');
    fs.rmSync(scratch, { recursive: true, force: true });
  });

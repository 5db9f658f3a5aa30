// test_openai_js.mjs - the official OpenAI JS client (npm `openai`, pinned in
// package.json, installed here by scripts/setup.sh), unchanged, against a running
// `gemma serve`: chat, streaming, an image, completions, models, errors, usage.
// serve_tests.py starts the server and runs this with GEMMA_BASE_URL and GEMMA_PNG.
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.GEMMA_BASE_URL, apiKey: 'unused', maxRetries: 0 });
let passed = 0, failed = 0;
function check(name, cond, detail = '') {
  if (cond) { passed++; console.log(`ok   js: ${name}`); } else { failed++; console.log(`FAIL js: ${name} ${detail}`); }
}
const hi = [{ role: 'user', content: 'Hello there' }];

const r = await client.chat.completions.create({ model: 'any', messages: hi, max_tokens: 12, temperature: 0 });
check('chat: reply, finish_reason, usage', typeof r.choices[0].message.content === 'string' &&
  r.choices[0].finish_reason === 'length' && r.usage.completion_tokens === 12 &&
  r.usage.total_tokens === r.usage.prompt_tokens + 12, JSON.stringify(r));

let text = '', finish = null, usage = null, role = null;
const stream = await client.chat.completions.create({ model: 'any', messages: hi, max_tokens: 12, temperature: 0,
  stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    role = role ?? c.delta.role;
    text += c.delta.content ?? '';
    finish = c.finish_reason ?? finish;
  }
}
check('stream: same text as non-streamed', text === r.choices[0].message.content, JSON.stringify([text, r.choices[0].message.content]));
check('stream: role, finish_reason, usage', role === 'assistant' && finish === 'length' && usage?.completion_tokens === 12);

const png = 'data:image/png;base64,' + fs.readFileSync(process.env.GEMMA_PNG).toString('base64');
const img = await client.chat.completions.create({ model: 'any', max_tokens: 4, temperature: 0, messages: [
  { role: 'user', content: [{ type: 'image_url', image_url: { url: png } }, { type: 'text', text: 'What is this?' }] }] });
const plain = await client.chat.completions.create({ model: 'any', max_tokens: 4, temperature: 0,
  messages: [{ role: 'user', content: 'What is this?' }] });
check('image: accepted, 4 more prompt tokens', img.usage.prompt_tokens === plain.usage.prompt_tokens + 4,
  JSON.stringify([img.usage, plain.usage]));

const comp = await client.completions.create({ model: 'any', prompt: 'Once upon a time', max_tokens: 5, temperature: 0 });
check('completions', comp.object === 'text_completion' && comp.usage.completion_tokens === 5);

const models = await client.models.list();
check('models', models.data.length === 1 && models.data[0].object === 'model');

try {
  await client.chat.completions.create({ model: 'any', messages: [], max_tokens: 2 });
  check('error: empty messages -> 400', false, 'no error');
} catch (e) {
  check('error: empty messages -> 400', e instanceof OpenAI.BadRequestError && e.status === 400 &&
    typeof e.error?.message === 'string', String(e));
}
try {
  await client.chat.completions.create({ model: 'any', messages: hi, temperature: 9 });
  check('error: temperature 9 -> 400 naming the param', false, 'no error');
} catch (e) {
  check('error: temperature 9 -> 400 naming the param', e.status === 400 && e.param === 'temperature', String(e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

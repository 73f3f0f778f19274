'use strict';
// Calls a Node.js Azure Functions Event Hub function (cardinality "many", dataType "string")
// with batches of event bodies, the way the Functions host's Node worker hands them over, so
// that the benchmark tool can measure the function's own CPU per event. It calls the module in
// process: the host's gRPC hop is left out, which flatters the function, never the other way.
//
//   node peerdriver.js <app dir> <function> <bodies file, one per line> <batch> <warm-up batches>
//
// Protocol on stdin/stdout, one line each: it prints "ready" after loading the module and
// playing the warm-up batches; on "go" it plays batch after batch until "stop", then prints
// "done <events> <failed>" (failed: events the function reported through context.log.error,
// which is how the function says it could not deliver one) and waits for stdin to close.

const fs = require('fs');
const path = require('path');
const readline = require('readline');

const [dir, fn, bodiesFile, batchArg, warmArg] = process.argv.slice(2);
const batch = Number(batchArg);
const warm = Number(warmArg);
const bodies = fs.readFileSync(bodiesFile, 'utf8').split('\n').filter((s) => s.length > 0);
if (!(batch > 0) || bodies.length === 0 || bodies.length % batch !== 0) {
  process.stdout.write(`error ${bodies.length} bodies do not make batches of ${batchArg}\n`);
  process.exit(2);
}
const batches = [];
for (let i = 0; i < bodies.length; i += batch) batches.push(bodies.slice(i, i + batch));
const fun = require(path.resolve(dir, fn, 'index.js'));

let failed = 0;
let firstError = '';
function context() {
  const log = () => {};
  log.error = (msg) => {
    failed++;
    if (!firstError) firstError = String(msg).slice(0, 300);
  };
  log.warn = log.info = log.verbose = () => {};
  return { log, bindings: {}, done() {} };
}

let started;
let stopping = false;
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line === 'go' && started) started();
  if (line === 'stop') stopping = true;
});
rl.on('close', () => process.exit(0));

(async () => {
  for (let i = 0; i < warm; i++) await fun(context(), batches[i % batches.length]);
  if (failed > 0) throw new Error(`warm-up: ${failed} events failed, the first: ${firstError}`);
  const go = new Promise((resolve) => { started = resolve; });
  process.stdout.write('ready\n');
  await go;
  let events = 0;
  for (let i = 0; !stopping; i++) {
    const b = batches[i % batches.length];
    await fun(context(), b);
    events += b.length;
  }
  process.stdout.write(`done ${events} ${failed}\n`);
  if (failed > 0) process.stderr.write(`first failure: ${firstError}\n`);
})().catch((err) => {
  process.stdout.write(`error ${String((err && err.stack) || err).replace(/\n/g, ' | ')}\n`);
  process.exit(1);
});

// SPDX-License-Identifier: Apache-2.0
// The Node.js peer of ortserve's benchmarks: a KServe v2 JSON inference server
// for one ONNX model around onnxruntime-node (the same ONNX Runtime release that
// ortserve embeds), written the way a JavaScript team would write it: Node's
// http module, JSON bodies, one InferenceSession, session.run per request.
//
//   node server.js --model path/model.onnx --name bert_mini [--port 8010]
//                  [--intra-op-threads 1]
//
// Endpoints: GET /v2/health/live, GET /v2/health/ready, GET /v2/models/{name}
// (metadata, leading batch dimension -1), POST /v2/models/{name}/infer (JSON
// tensors, flat or nested `data`; answers JSON). Errors: {"error": "..."} with
// 400 (bad request, naming the tensor), 404 (unknown model/endpoint), 500 (ORT).
'use strict';

const http = require('http');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const args = { port: 8010, intraOpThreads: 1, name: '', model: '' };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${key}`);
    if (key === '--model') args.model = value;
    else if (key === '--name') args.name = value;
    else if (key === '--port') args.port = Number(value);
    else if (key === '--intra-op-threads') args.intraOpThreads = Number(value);
    else throw new Error(`unknown flag ${key}`);
  }
  if (!args.model || !args.name) throw new Error('--model and --name are required');
  return args;
}

// ONNX element type (as onnxruntime-node names it) <-> KServe datatype.
const TO_KSERVE = {
  float32: 'FP32', float64: 'FP64', float16: 'FP16', int8: 'INT8', int16: 'INT16', int32: 'INT32',
  int64: 'INT64', uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64', bool: 'BOOL',
  string: 'BYTES',
};
const FROM_KSERVE = Object.fromEntries(Object.entries(TO_KSERVE).map(([k, v]) => [v, k]));
const ARRAY_OF = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  bool: Uint8Array,
};

function tensorFromJson(input) {
  const name = input.name;
  if (typeof name !== 'string') throw new RangeError('an input has no name');
  const type = FROM_KSERVE[input.datatype];
  if (!type || !ARRAY_OF[type]) throw new RangeError(`input '${name}': unsupported datatype '${input.datatype}'`);
  if (!Array.isArray(input.shape)) throw new RangeError(`input '${name}': missing shape`);
  const flat = Array.isArray(input.data) ? input.data.flat(Infinity) : null;
  if (!flat) throw new RangeError(`input '${name}': missing data`);
  const count = input.shape.reduce((a, b) => a * b, 1);
  if (flat.length !== count) {
    throw new RangeError(`input '${name}': ${flat.length} data elements but shape needs ${count}`);
  }
  const Array_ = ARRAY_OF[type];
  let data;
  if (type === 'int64' || type === 'uint64') data = Array_.from(flat, (v) => BigInt(v));
  else if (type === 'bool') data = Array_.from(flat, (v) => (v ? 1 : 0));
  else data = Array_.from(flat);
  return new ort.Tensor(type, data, input.shape);
}

function tensorToJson(name, tensor) {
  let data;
  if (tensor.type === 'int64' || tensor.type === 'uint64') data = Array.from(tensor.data, (v) => Number(v));
  else if (tensor.type === 'bool') data = Array.from(tensor.data, (v) => v !== 0);
  else data = Array.from(tensor.data);
  return { name, datatype: TO_KSERVE[tensor.type] || tensor.type, shape: tensor.dims, data };
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function metadataOf(session, name) {
  const describe = (list, names) => names.map((n, i) => {
    const m = list ? list[i] : undefined;
    const shape = m && m.shape ? m.shape.map((d) => (typeof d === 'number' ? d : -1)) : [-1];
    return { name: n, datatype: m && m.type ? TO_KSERVE[m.type] || m.type : 'FP32', shape };
  });
  return {
    name,
    versions: ['1'],
    platform: 'onnxruntime_onnx',
    inputs: describe(session.inputMetadata, session.inputNames),
    outputs: describe(session.outputMetadata, session.outputNames),
  };
}

async function main() {
  const args = parseArgs(process.argv);
  const session = await ort.InferenceSession.create(args.model, {
    intraOpNumThreads: args.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const metadata = metadataOf(session, args.name);
  const modelPath = `/v2/models/${args.name}`;

  const server = http.createServer((req, res) => {
    const url = req.url.split('?')[0];
    if (req.method === 'GET') {
      if (url === '/v2/health/live' || url === '/v2/health/ready') return send(res, 200, {});
      if (url === modelPath || url === `${modelPath}/versions/1`) return send(res, 200, metadata);
      return send(res, 404, { error: `unknown endpoint ${url}` });
    }
    if (req.method !== 'POST' || (url !== `${modelPath}/infer` && url !== `${modelPath}/versions/1/infer`)) {
      return send(res, 404, { error: `unknown endpoint ${req.method} ${url}` });
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      let feeds;
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (!Array.isArray(body.inputs)) throw new RangeError("missing the 'inputs' array");
        feeds = {};
        for (const input of body.inputs) feeds[input.name] = tensorFromJson(input);
      } catch (e) {
        return send(res, 400, { error: e.message });
      }
      try {
        const results = await session.run(feeds);
        const wanted = Array.isArray(body.outputs) && body.outputs.length > 0
          ? body.outputs.map((o) => o.name) : Object.keys(results);
        const outputs = [];
        for (const name of wanted) {
          if (!results[name]) return send(res, 400, { error: `unknown output '${name}'` });
          outputs.push(tensorToJson(name, results[name]));
        }
        return send(res, 200, { model_name: args.name, model_version: '1', id: body.id, outputs });
      } catch (e) {
        return send(res, 500, { error: e.message });
      }
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(args.port, '127.0.0.1', () => {
    console.log(`node peer: model ${args.name} on http://127.0.0.1:${server.address().port}`);
  });
}

main().catch((e) => {
  console.error(`node peer: ${e.message}`);
  process.exit(1);
});

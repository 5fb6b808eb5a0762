// SPDX-License-Identifier: Apache-2.0
// The Go peer of ortserve's benchmarks: the service architecture the first
// user's team runs today, written by this project the way a Go team writes
// it. net/http, encoding/json, one ONNX Runtime session through
// onnxruntime_go, a batching goroutine that runs up to --max-batch requests
// together or whatever arrived within --batch-delay of the first, and
// sync.Pool buffers for the batch tensors.
//
//	go_peer --model path/model.onnx --name weight --ort-lib libonnxruntime.so
//	        [--port 8020] [--intra-op-threads 1] [--max-batch 32] [--batch-delay 5ms]
//
// Endpoints: GET /v2/health/live, /v2/health/ready, /v2/models/{name}
// (metadata: leading batch dimension -1), POST /v2/models/{name}/infer
// (KServe v2 JSON, flat `data`, FP32 and INT64 inputs; JSON answers).
// Requests are batched along the first dimension with others of the same
// trailing shape. Errors: {"error": "..."} with 400, 404 or 500.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"fmt"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

type tensorJSON struct {
	Name     string          `json:"name"`
	Shape    []int64         `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data,omitempty"`
}

type requestJSON struct {
	ID      string `json:"id,omitempty"`
	Inputs  []tensorJSON
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

type outputJSON struct {
	Name     string      `json:"name"`
	Datatype string      `json:"datatype"`
	Shape    []int64     `json:"shape"`
	Data     interface{} `json:"data"`
}

type responseJSON struct {
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version"`
	ID           string       `json:"id,omitempty"`
	Outputs      []outputJSON `json:"outputs"`
}

// One decoded input: FP32 or INT64 values and the shape the client sent.
type input struct {
	shape []int64
	f32   []float32
	i64   []int64
}

// A request waiting for the batcher; the answer comes back on done.
type job struct {
	inputs []input // In the model's input order.
	rows   int64
	key    string // Trailing shapes: only jobs with the same key share a run.
	done   chan result
}

type result struct {
	outputs []outputJSON
	err     error
}

type model struct {
	name       string
	session    *ort.DynamicAdvancedSession
	inputs     []ort.InputOutputInfo
	outputs    []ort.InputOutputInfo
	maxBatch   int
	delay      time.Duration
	queue      chan *job
	f32Buffers sync.Pool
	i64Buffers sync.Pool
}

func kserveType(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "FP32"
	case ort.TensorElementDataTypeInt64:
		return "INT64"
	case ort.TensorElementDataTypeInt32:
		return "INT32"
	}
	return "UNSUPPORTED"
}

func (m *model) metadata() map[string]interface{} {
	describe := func(list []ort.InputOutputInfo) []map[string]interface{} {
		out := []map[string]interface{}{}
		for _, info := range list {
			shape := make([]int64, len(info.Dimensions))
			copy(shape, info.Dimensions)
			for i := range shape {
				if shape[i] <= 0 || i == 0 {
					shape[i] = -1
				}
			}
			out = append(out, map[string]interface{}{"name": info.Name, "datatype": kserveType(info.DataType), "shape": shape})
		}
		return out
	}
	return map[string]interface{}{"name": m.name, "versions": []string{"1"}, "platform": "onnxruntime_onnx",
		"inputs": describe(m.inputs), "outputs": describe(m.outputs)}
}

// decode checks a request against the model and turns it into a job.
func (m *model) decode(body []byte) (*job, *requestJSON, error) {
	var request requestJSON
	if err := json.Unmarshal(body, &request); err != nil {
		return nil, nil, fmt.Errorf("body is not a KServe v2 JSON request: %v", err)
	}
	if len(request.Inputs) != len(m.inputs) {
		return nil, nil, fmt.Errorf("model '%s' takes %d inputs, the request has %d", m.name, len(m.inputs), len(request.Inputs))
	}
	j := &job{inputs: make([]input, len(m.inputs)), rows: -1}
	var key strings.Builder
	for i, info := range m.inputs {
		var t *tensorJSON
		for k := range request.Inputs {
			if request.Inputs[k].Name == info.Name {
				t = &request.Inputs[k]
			}
		}
		if t == nil {
			return nil, nil, fmt.Errorf("input '%s' is missing", info.Name)
		}
		if len(t.Shape) != len(info.Dimensions) || len(t.Shape) == 0 {
			return nil, nil, fmt.Errorf("input '%s': shape %v has the wrong rank", t.Name, t.Shape)
		}
		count := int64(1)
		for d, size := range t.Shape {
			if size < 0 || size > 1<<24 || (d > 0 && info.Dimensions[d] > 0 && info.Dimensions[d] != size) {
				return nil, nil, fmt.Errorf("input '%s': shape %v does not fit the model's %v", t.Name, t.Shape, info.Dimensions)
			}
			count *= size
			if count > 1<<26 {
				return nil, nil, fmt.Errorf("input '%s': shape %v is too large", t.Name, t.Shape)
			}
		}
		if j.rows >= 0 && t.Shape[0] != j.rows {
			return nil, nil, fmt.Errorf("input '%s': %d rows, other inputs have %d", t.Name, t.Shape[0], j.rows)
		}
		j.rows = t.Shape[0]
		fmt.Fprint(&key, t.Shape[1:], ";")
		in := input{shape: t.Shape}
		var err error
		switch {
		case info.DataType == ort.TensorElementDataTypeFloat && t.Datatype == "FP32":
			err = json.Unmarshal(t.Data, &in.f32)
			if err == nil && int64(len(in.f32)) != count {
				err = fmt.Errorf("%d values, shape needs %d", len(in.f32), count)
			}
		case info.DataType == ort.TensorElementDataTypeInt64 && t.Datatype == "INT64":
			err = json.Unmarshal(t.Data, &in.i64)
			if err == nil && int64(len(in.i64)) != count {
				err = fmt.Errorf("%d values, shape needs %d", len(in.i64), count)
			}
		default:
			err = fmt.Errorf("datatype %s, the model takes %s", t.Datatype, kserveType(info.DataType))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("input '%s': %v", t.Name, err)
		}
		j.inputs[i] = in
	}
	j.key = key.String()
	j.done = make(chan result, 1)
	return j, &request, nil
}

// batcher runs forever: it takes the first waiting job, gathers up to
// maxBatch jobs or what came within delay, and runs them in groups of the
// same trailing shape.
func (m *model) batcher() {
	for {
		first := <-m.queue
		jobs := []*job{first}
		timer := time.NewTimer(m.delay)
	gather:
		for len(jobs) < m.maxBatch {
			select {
			case j := <-m.queue:
				jobs = append(jobs, j)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		groups := map[string][]*job{}
		var order []string
		for _, j := range jobs {
			if _, seen := groups[j.key]; !seen {
				order = append(order, j.key)
			}
			groups[j.key] = append(groups[j.key], j)
		}
		for _, key := range order {
			m.run(groups[key])
		}
	}
}

func (m *model) run(jobs []*job) {
	fail := func(err error) {
		for _, j := range jobs {
			j.done <- result{err: err}
		}
	}
	rows := int64(0)
	for _, j := range jobs {
		rows += j.rows
	}
	values := make([]ort.Value, len(m.inputs))
	var f32s []*[]float32
	var i64s []*[]int64
	defer func() {
		for _, v := range values {
			if v != nil {
				v.Destroy()
			}
		}
		for _, b := range f32s {
			m.f32Buffers.Put(b)
		}
		for _, b := range i64s {
			m.i64Buffers.Put(b)
		}
	}()
	for i := range m.inputs {
		shape := append([]int64{rows}, jobs[0].inputs[i].shape[1:]...)
		var err error
		if m.inputs[i].DataType == ort.TensorElementDataTypeFloat {
			buffer := m.f32Buffers.Get().(*[]float32)
			*buffer = (*buffer)[:0]
			for _, j := range jobs {
				*buffer = append(*buffer, j.inputs[i].f32...)
			}
			f32s = append(f32s, buffer)
			values[i], err = ort.NewTensor(ort.NewShape(shape...), *buffer)
		} else {
			buffer := m.i64Buffers.Get().(*[]int64)
			*buffer = (*buffer)[:0]
			for _, j := range jobs {
				*buffer = append(*buffer, j.inputs[i].i64...)
			}
			i64s = append(i64s, buffer)
			values[i], err = ort.NewTensor(ort.NewShape(shape...), *buffer)
		}
		if err != nil {
			fail(err)
			return
		}
	}
	outputs := make([]ort.Value, len(m.outputs))
	if err := m.session.Run(values, outputs); err != nil {
		fail(err)
		return
	}
	defer func() {
		for _, v := range outputs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	// Split each output along its first dimension, one slice per job (copied:
	// the tensors are destroyed when this run ends).
	answers := make([][]outputJSON, len(jobs))
	for o, value := range outputs {
		shape := value.GetShape()
		perRow := int64(1)
		for _, d := range shape[1:] {
			perRow *= d
		}
		offset := int64(0)
		for k, j := range jobs {
			out := outputJSON{Name: m.outputs[o].Name, Shape: append([]int64{j.rows}, shape[1:]...)}
			n := j.rows * perRow
			switch t := value.(type) {
			case *ort.Tensor[float32]:
				out.Datatype = "FP32"
				out.Data = append([]float32(nil), t.GetData()[offset:offset+n]...)
			case *ort.Tensor[int64]:
				out.Datatype = "INT64"
				out.Data = append([]int64(nil), t.GetData()[offset:offset+n]...)
			default:
				fail(errors.New("the model has an output type this peer does not serve"))
				return
			}
			offset += n
			answers[k] = append(answers[k], out)
		}
	}
	for k, j := range jobs {
		j.done <- result{outputs: answers[k]}
	}
}

func send(w http.ResponseWriter, status int, body interface{}) {
	text, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(text)
}

func main() {
	modelPath := flag.String("model", "", "path of the ONNX model")
	name := flag.String("name", "", "the model's name in URLs")
	lib := flag.String("ort-lib", "libonnxruntime.so", "ONNX Runtime's shared library")
	port := flag.Int("port", 8020, "HTTP port (127.0.0.1)")
	threads := flag.Int("intra-op-threads", 1, "ONNX Runtime intra-op threads")
	maxBatch := flag.Int("max-batch", 32, "requests run together at most")
	delay := flag.Duration("batch-delay", 5*time.Millisecond, "how long the first request waits for company")
	flag.Parse()
	if *modelPath == "" || *name == "" {
		log.Fatal("--model and --name are required")
	}
	ort.SetSharedLibraryPath(*lib)
	if err := ort.InitializeEnvironment(); err != nil {
		log.Fatalf("ONNX Runtime: %v", err)
	}
	inputs, outputs, err := ort.GetInputOutputInfo(*modelPath)
	if err != nil {
		log.Fatalf("model: %v", err)
	}
	options, err := ort.NewSessionOptions()
	if err != nil {
		log.Fatal(err)
	}
	options.SetIntraOpNumThreads(*threads)
	options.SetInterOpNumThreads(1)
	var inputNames, outputNames []string
	for _, i := range inputs {
		inputNames = append(inputNames, i.Name)
	}
	for _, o := range outputs {
		outputNames = append(outputNames, o.Name)
	}
	session, err := ort.NewDynamicAdvancedSession(*modelPath, inputNames, outputNames, options)
	if err != nil {
		log.Fatalf("session: %v", err)
	}
	m := &model{name: *name, session: session, inputs: inputs, outputs: outputs, maxBatch: *maxBatch, delay: *delay,
		queue: make(chan *job, 4096)}
	m.f32Buffers.New = func() interface{} { b := make([]float32, 0, 1<<16); return &b }
	m.i64Buffers.New = func() interface{} { b := make([]int64, 0, 1<<12); return &b }
	go m.batcher()

	prefix := "/v2/models/" + *name
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case r.Method == http.MethodGet && (path == "/v2/health/live" || path == "/v2/health/ready"):
			send(w, 200, map[string]interface{}{})
		case r.Method == http.MethodGet && (path == prefix || path == prefix+"/versions/1"):
			send(w, 200, m.metadata())
		case r.Method == http.MethodPost && (path == prefix+"/infer" || path == prefix+"/versions/1/infer"):
			data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
			if err != nil {
				send(w, 400, map[string]string{"error": "cannot read the body: " + err.Error()})
				return
			}
			j, request, err := m.decode(data)
			if err != nil {
				send(w, 400, map[string]string{"error": err.Error()})
				return
			}
			m.queue <- j
			answer := <-j.done
			if answer.err != nil {
				send(w, 500, map[string]string{"error": answer.err.Error()})
				return
			}
			send(w, 200, responseJSON{ModelName: *name, ModelVersion: "1", ID: request.ID, Outputs: answer.outputs})
		default:
			send(w, 404, map[string]string{"error": "unknown endpoint " + r.Method + " " + path})
		}
	})
	log.Printf("go peer: model %s on http://127.0.0.1:%d (batches of up to %d, %v)", *name, *port, *maxBatch, *delay)
	log.Fatal(http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *port), nil))
}

module ortserve.dev/bench/go_peer

go 1.19

require github.com/yalue/onnxruntime_go v0.0.0

// Built offline: build.sh copies the module's source here (git-ignored).
replace github.com/yalue/onnxruntime_go => ./third_party/onnxruntime_go

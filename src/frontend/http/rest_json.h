// SPDX-License-Identifier: Apache-2.0
// JSON bodies of the REST endpoints other than infer: server and model
// metadata, repository index, statistics. Pure functions: safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "frontend/inference_service.h"

namespace ortserve::frontend {

// GET /v2: {"name","version","extensions":[...]}.
std::string ServerMetadataJson(const std::vector<std::string>& extensions);

// GET /v2/models/{m}[/versions/{v}].
std::string ModelMetadataJson(const ModelMetadata& metadata);

// POST /v2/repository/index: [{"name","version","state","reason"}].
// `ready_only`: only READY entries (the request body's {"ready": true}).
std::string RepositoryIndexJson(const std::vector<repository::ModelIndexEntry>& index, bool ready_only = false);

// GET /v2/models[/{m}[/versions/{v}]]/stats, in Triton's shape.
std::string ModelStatsJson(const std::vector<ModelHandle>& models);

}  // namespace ortserve::frontend

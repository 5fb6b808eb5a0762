// SPDX-License-Identifier: Apache-2.0
// /v1/collections: vector collections over the server's own embeddings
// (docs/retrieval.md). Text is embedded by the collection's model through
// the same path as POST /embed (router, scheduler, dynamic batching); the
// vectors are kept and searched by retrieval::CollectionStore, whose worker
// threads run every store operation (scans and fdatasync stay off the
// event loops). Collections belong to the credential's tenant.
//
// Document text is never logged or kept: only its embedding is stored.
#include <memory>
#include <string>
#include <vector>

#include "core/strings.h"
#include "frontend/http/collection_routes.h"
#include "frontend/http/connection.h"
#include "frontend/http/pipeline_routes_internal.h"
#include "pipeline/text_inference.h"
#include "retrieval/collection_store.h"

namespace ortserve::frontend {
namespace {

using pipeline_internal::PlainError;
using pipeline_internal::Writer;
using retrieval::Change;
using retrieval::CollectionStore;

// The most documents one request may upsert.
constexpr size_t kMaxDocumentsPerRequest = 256;
// The longest text of one document or query, in bytes (the model's
// tokenizer truncates to its max_length anyway).
constexpr size_t kMaxTextBytes = 100 << 10;
// The tenant of requests while authentication is off.
constexpr std::string_view kDefaultTenant = "default";

// A store refusal's HTTP status: a full collection is 507 (Insufficient
// Storage: retrying will not help), the rest as everywhere.
unsigned StoreStatus(absl::StatusCode code) {
  return code == absl::StatusCode::kResourceExhausted ? 507 : HttpStatusFor(code);
}

PipelineAnswer StoreError(const absl::Status& status) {
  return {StoreStatus(status.code()), PlainError(ToStd(status.message())), {}};
}

PipelineAnswer Refuse(const absl::Status& status) {
  return {HttpStatusFor(status.code()), PlainError(ToStd(status.message())), {}};
}

absl::StatusOr<std::vector<float>> ParseVector(simdjson::dom::element value, std::string_view what) {
  simdjson::dom::array array;
  if (value.get(array) != simdjson::SUCCESS) return absl::InvalidArgumentError(StrCat(what, " must be an array of numbers"));
  const size_t n = array.size();
  if (n == 0 || n > retrieval::kMaxDimension) {
    return absl::InvalidArgumentError(StrCat(what, " must hold 1 to ", retrieval::kMaxDimension, " numbers"));
  }
  std::vector<float> out;
  out.reserve(n);
  for (simdjson::dom::element item : array) {
    double x = 0;
    if (!item.is_number() || item.get_double().get(x) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(StrCat(what, " must hold numbers only"));
    }
    out.push_back(static_cast<float>(x));  // Out of float's range: infinite, refused by the collection.
  }
  return out;
}

absl::StatusOr<uint64_t> OptionalUint(simdjson::dom::object& object, std::string_view field, uint64_t fallback) {
  simdjson::dom::element value;
  if (object[field].get(value) != simdjson::SUCCESS || value.is_null()) return fallback;
  uint64_t out = 0;
  if (value.get(out) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat("field '", field, "' must be a non-negative integer"));
  }
  return out;
}

void CollectionJson(Writer& w, std::string_view name, const retrieval::CollectionInfo& info) {
  w.Key("name");
  pipeline_internal::String(w, name);
  w.Key("model");
  pipeline_internal::String(w, info.model);
  w.Key("dimension");
  w.Uint(info.params.dimension);
  w.Key("metric");
  pipeline_internal::String(w, retrieval::MetricName(info.params.metric));
  w.Key("m");
  w.Uint(info.params.m);
  w.Key("ef_construction");
  w.Uint(info.params.ef_construction);
  w.Key("ef_search");
  w.Uint(info.params.ef_search);
  w.Key("exact_threshold");
  w.Uint(info.params.exact_threshold);
  w.Key("max_bytes");
  w.Uint64(info.params.max_bytes);
}

// What one call needs once its body is parsed; shared by the steps that
// run on other threads (the model's runner, the store's workers).
struct Call {
  InferenceService* service = nullptr;
  CollectionStore* store = nullptr;
  std::string tenant, collection;
  PipelineReply reply;
};
using CallPtr = std::shared_ptr<Call>;

// Runs `work` (which answers through call->reply) on the store's workers.
void OnStore(const CallPtr& call, absl::AnyInvocable<void(Call&) &&> work) {
  auto status = call->store->Submit([call, work = std::move(work)]() mutable { std::move(work)(*call); });
  if (!status.ok()) std::move(call->reply)(Refuse(status));
}

// Embeds `texts` with the collection's model, then calls `then` with one
// vector per text (on the runner's thread); a failure answers the call.
void Embed(const CallPtr& call, const std::string& model_name, const admission::Identity* identity,
           const std::vector<std::string>& texts, const PipelineContext& context,
           std::shared_ptr<CancellationFlag> cancellation,
           absl::AnyInvocable<void(std::vector<std::vector<float>>) &&> then) {
  EmbedForCollection(*call->service, model_name, identity, texts, context, std::move(cancellation),
                     [call, then = std::move(then)](absl::StatusOr<std::vector<std::vector<float>>> vectors) mutable {
                       if (!vectors.ok()) return std::move(call->reply)(Refuse(vectors.status()));
                       std::move(then)(*std::move(vectors));
                     });
}

void PutCollection(const CallPtr& call, std::string_view body, const admission::Identity* identity) {
  simdjson::dom::parser parser;
  auto object = pipeline_internal::ParseObject(parser, body.empty() ? std::string_view("{}") : body,
                                               "PUT /v1/collections/{c}");
  if (!object.ok()) return std::move(call->reply)(Refuse(object.status()));
  retrieval::CollectionInfo info;
  std::string_view text;
  simdjson::dom::element value;
  if ((*object)["model"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    if (value.get(text) != simdjson::SUCCESS) {
      return std::move(call->reply)(Refuse(absl::InvalidArgumentError("field 'model' must be a string")));
    }
    info.model.assign(text);
  }
  if (!info.model.empty() && identity != nullptr && !identity->models.Allows(info.model)) {
    return std::move(call->reply)(Refuse(absl::PermissionDeniedError(
        StrCat("the credential may not use model '", info.model, "'"))));
  }
  if ((*object)["metric"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    auto metric = value.get(text) == simdjson::SUCCESS ? retrieval::ParseMetric(text)
                                                      : absl::InvalidArgumentError("field 'metric' must be a string");
    if (!metric.ok()) return std::move(call->reply)(Refuse(metric.status()));
    info.params.metric = *metric;
  }
  auto field = [&](std::string_view name, uint64_t fallback, uint64_t limit) -> absl::StatusOr<uint64_t> {
    auto v = OptionalUint(*object, name, fallback);
    if (v.ok() && *v > limit) return absl::InvalidArgumentError(StrCat("field '", name, "' is out of range"));
    return v;
  };
  auto dimension = field("dimension", 0, retrieval::kMaxDimension);
  auto m = field("m", info.params.m, 1 << 16);
  auto efc = field("ef_construction", info.params.ef_construction, 1 << 16);
  auto efs = field("ef_search", info.params.ef_search, 1 << 16);
  auto exact = field("exact_threshold", info.params.exact_threshold, 100'000'000);
  auto max_bytes = field("max_bytes", std::min<uint64_t>(info.params.max_bytes, call->store->options().max_collection_bytes),
                         uint64_t{1} << 50);
  for (const auto* v : {&dimension, &m, &efc, &efs, &exact, &max_bytes}) {
    if (!v->ok()) return std::move(call->reply)(Refuse(v->status()));
  }
  if (*dimension == 0) {
    return std::move(call->reply)(Refuse(absl::InvalidArgumentError(
        "field 'dimension' is required (the model's embedding size; 64 for the bundled text_embedding)")));
  }
  info.params.dimension = static_cast<uint32_t>(*dimension);
  info.params.m = static_cast<uint32_t>(*m);
  info.params.ef_construction = static_cast<uint32_t>(*efc);
  info.params.ef_search = static_cast<uint32_t>(*efs);
  info.params.exact_threshold = static_cast<uint32_t>(*exact);
  info.params.max_bytes = *max_bytes;
  OnStore(call, [info](Call& c) mutable {
    auto created = c.store->Create(c.tenant, c.collection, info);
    if (!created.ok()) return std::move(c.reply)(StoreError(created.status()));
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    CollectionJson(w, c.collection, info);
    w.Key("created");
    w.Bool(*created);
    w.EndObject();
    std::move(c.reply)({*created ? 201u : 200u, buffer.GetString(), {}});
  });
}

void Upsert(const CallPtr& call, std::string_view body, const admission::Identity* identity,
            const PipelineContext& context, std::shared_ptr<CancellationFlag> cancellation) {
  auto info = call->store->Info(call->tenant, call->collection);
  if (!info.ok()) return std::move(call->reply)(Refuse(info.status()));
  simdjson::dom::parser parser;
  auto object = pipeline_internal::ParseObject(parser, body, "POST /v1/collections/{c}/documents");
  if (!object.ok()) return std::move(call->reply)(Refuse(object.status()));
  simdjson::dom::array documents;
  if ((*object)["documents"].get(documents) != simdjson::SUCCESS || documents.size() == 0 ||
      documents.size() > kMaxDocumentsPerRequest) {
    return std::move(call->reply)(Refuse(absl::InvalidArgumentError(
        StrCat("field 'documents' must be an array of 1 to ", kMaxDocumentsPerRequest, " documents"))));
  }
  auto changes = std::make_shared<std::vector<Change>>();
  changes->reserve(documents.size());
  std::vector<std::string> texts;
  std::vector<size_t> text_rows;  // Which change each text's vector goes to.
  for (simdjson::dom::element item : documents) {
    simdjson::dom::object doc;
    const size_t index = changes->size();
    auto bad = [&](std::string_view what) {
      std::move(call->reply)(Refuse(absl::InvalidArgumentError(StrCat("documents[", index, "]: ", what))));
    };
    if (item.get(doc) != simdjson::SUCCESS) return bad("must be an object");
    Change change;
    std::string_view id;
    if (doc["id"].get(id) != simdjson::SUCCESS) return bad("field 'id' must be a string");
    change.document.id.assign(id);
    simdjson::dom::element text, vector, metadata;
    const bool has_text = doc["text"].get(text) == simdjson::SUCCESS;
    const bool has_vector = doc["vector"].get(vector) == simdjson::SUCCESS;
    if (has_text == has_vector) return bad("give exactly one of 'text' and 'vector'");
    if (has_text) {
      std::string_view t;
      if (text.get(t) != simdjson::SUCCESS || t.empty() || t.size() > kMaxTextBytes) {
        return bad(StrCat("field 'text' must be a string of 1 to ", kMaxTextBytes, " bytes"));
      }
      texts.emplace_back(t);
      text_rows.push_back(index);
    } else {
      auto v = ParseVector(vector, "field 'vector'");
      if (!v.ok()) return bad(ToStd(v.status().message()));
      change.document.vector = *std::move(v);
    }
    if (doc["metadata"].get(metadata) == simdjson::SUCCESS && !metadata.is_null()) {
      if (!metadata.is_object()) return bad("field 'metadata' must be an object");
      change.document.metadata = simdjson::minify(metadata);
    }
    changes->push_back(std::move(change));
  }
  auto write = [changes](Call& c) {
    const size_t n = changes->size();
    if (auto s = c.store->Write(c.tenant, c.collection, std::move(*changes)); !s.ok()) {
      return std::move(c.reply)(StoreError(s));
    }
    std::move(c.reply)({200, StrCat("{\"upserted\":", n, "}"), {}});
  };
  if (texts.empty()) return OnStore(call, std::move(write));
  Embed(call, info->model, identity, texts, context, std::move(cancellation),
        [call, changes, text_rows = std::move(text_rows), write = std::move(write)](
            std::vector<std::vector<float>> vectors) mutable {
          for (size_t i = 0; i < vectors.size(); ++i) (*changes)[text_rows[i]].document.vector = std::move(vectors[i]);
          OnStore(call, std::move(write));
        });
}

void Query(const CallPtr& call, std::string_view body, const admission::Identity* identity,
           const PipelineContext& context, std::shared_ptr<CancellationFlag> cancellation) {
  auto info = call->store->Info(call->tenant, call->collection);
  if (!info.ok()) return std::move(call->reply)(Refuse(info.status()));
  simdjson::dom::parser parser;
  auto object = pipeline_internal::ParseObject(parser, body, "POST /v1/collections/{c}/query");
  if (!object.ok()) return std::move(call->reply)(Refuse(object.status()));
  auto top_k = OptionalUint(*object, "top_k", 10);
  if (!top_k.ok()) return std::move(call->reply)(Refuse(top_k.status()));
  if (*top_k < 1 || *top_k > retrieval::kMaxTopK) {
    return std::move(call->reply)(
        Refuse(absl::InvalidArgumentError(StrCat("field 'top_k' must be from 1 to ", retrieval::kMaxTopK))));
  }
  auto filter = std::make_shared<retrieval::Filter>();
  simdjson::dom::element value;
  if ((*object)["filter"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    if (!value.is_object()) {
      return std::move(call->reply)(Refuse(absl::InvalidArgumentError("field 'filter' must be an object")));
    }
    auto parsed = retrieval::Filter::Parse(simdjson::minify(value));
    if (!parsed.ok()) return std::move(call->reply)(Refuse(parsed.status()));
    *filter = *std::move(parsed);
  }
  bool exact = false;
  if ((*object)["exact"].get(value) == simdjson::SUCCESS && !value.is_null() && value.get(exact) != simdjson::SUCCESS) {
    return std::move(call->reply)(Refuse(absl::InvalidArgumentError("field 'exact' must be a boolean")));
  }
  simdjson::dom::element text, vector;
  const bool has_text = (*object)["text"].get(text) == simdjson::SUCCESS;
  const bool has_vector = (*object)["vector"].get(vector) == simdjson::SUCCESS;
  if (has_text == has_vector) {
    return std::move(call->reply)(Refuse(absl::InvalidArgumentError("give exactly one of 'text' and 'vector'")));
  }
  auto search = [k = static_cast<size_t>(*top_k), filter, exact](Call& c, std::vector<float> query) {
    auto hits = c.store->Query(c.tenant, c.collection, std::move(query), k, *filter, exact);
    if (!hits.ok()) return std::move(c.reply)(StoreError(hits.status()));
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    w.Key("results");
    w.StartArray();
    for (const retrieval::Hit& hit : *hits) {
      w.StartObject();
      w.Key("id");
      pipeline_internal::String(w, hit.id);
      w.Key("score");
      w.Double(hit.score);
      w.Key("metadata");
      w.RawValue(hit.metadata.data(), hit.metadata.size(), rapidjson::kObjectType);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::move(c.reply)({200, buffer.GetString(), {}});
  };
  if (has_vector) {
    auto v = ParseVector(vector, "field 'vector'");
    if (!v.ok()) return std::move(call->reply)(Refuse(v.status()));
    return OnStore(call, [search, v = *std::move(v)](Call& c) mutable { search(c, std::move(v)); });
  }
  std::string_view t;
  if (text.get(t) != simdjson::SUCCESS || t.empty() || t.size() > kMaxTextBytes) {
    return std::move(call->reply)(Refuse(
        absl::InvalidArgumentError(StrCat("field 'text' must be a string of 1 to ", kMaxTextBytes, " bytes"))));
  }
  Embed(call, info->model, identity, {std::string(t)}, context, std::move(cancellation),
        [call, search](std::vector<std::vector<float>> vectors) mutable {
          OnStore(call, [search, v = std::move(vectors[0])](Call& c) mutable { search(c, std::move(v)); });
        });
}

void CollectionStats(const CallPtr& call) {
  OnStore(call, [](Call& c) {
    auto info = c.store->Info(c.tenant, c.collection);
    auto stats = c.store->Stats(c.tenant, c.collection);
    if (!info.ok() || !stats.ok()) return std::move(c.reply)(StoreError(info.ok() ? stats.status() : info.status()));
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    CollectionJson(w, c.collection, *info);
    w.Key("documents");
    w.Uint64(stats->documents);
    w.Key("bytes");
    w.Uint64(stats->bytes);
    w.Key("indexed");
    w.Bool(stats->indexed);
    w.EndObject();
    std::move(c.reply)({200, buffer.GetString(), {}});
  });
}

}  // namespace

absl::StatusOr<std::string> CollectionTenant(const admission::Identity* identity) {
  if (identity == nullptr || identity->kind == admission::Identity::Kind::kAnonymous) {
    return std::string(kDefaultTenant);
  }
  std::string tenant = identity->tenant.empty() ? StrCat("id.", identity->id) : identity->tenant;
  if (auto s = retrieval::ValidateTenantName(tenant); !s.ok()) return s;
  return tenant;
}

void EmbedForCollection(InferenceService& service, const std::string& model_name, const admission::Identity* identity,
                        const std::vector<std::string>& texts, const PipelineContext& context,
                        std::shared_ptr<CancellationFlag> cancellation, EmbedDone done) {
  if (model_name.empty()) {
    return std::move(done)(
        absl::InvalidArgumentError("the collection has no embedding model: send 'vector' instead of 'text'"));
  }
  if (identity != nullptr && !identity->models.Allows(model_name)) {
    return std::move(done)(absl::PermissionDeniedError(
        StrCat("the credential may not use the collection's model '", model_name, "'")));
  }
  auto model = pipeline_internal::PipelineModel(service, model_name, pipeline::TextPipeline::Task::kEmbedding,
                                                "the collection's 'model'");
  if (!model.ok()) return std::move(done)(model.status());
  auto request = pipeline_internal::TextRequest(*model, texts, {pipeline::kEmbeddingOutput}, context,
                                                pipeline_internal::RequestIdOf(context), std::move(cancellation));
  request->parameters.Set(std::string(pipeline::kNormalizeParameter), true);
  request->parameters.Set(std::string(pipeline::kTruncateParameter), true);
  const size_t rows = texts.size();
  service.Infer(
      std::move(request),
      [rows, done = std::move(done)](absl::StatusOr<InferResponse> result) mutable {
        if (!result.ok()) return std::move(done)(result.status());
        const Tensor* embedding = pipeline_internal::FindOutput(*result, pipeline::kEmbeddingOutput);
        if (embedding == nullptr || embedding->shape.size() != 2 || embedding->shape[0] != static_cast<int64_t>(rows)) {
          return std::move(done)(absl::InternalError("the model's response lacks 'embedding'"));
        }
        const auto values = embedding->values<float>();
        const auto dim = static_cast<size_t>(embedding->shape[1]);
        std::vector<std::vector<float>> vectors(rows);
        for (size_t r = 0; r < rows; ++r) vectors[r].assign(values.begin() + r * dim, values.begin() + (r + 1) * dim);
        std::move(done)(std::move(vectors));
      },
      context.record);
}

void Connection::CollectionRoute(const RouteMatch& route) {
  retrieval::CollectionStore* store = options_.collections;
  if (store == nullptr) {
    return Send(Error(404, "collections are off: start the server with --collections-dir"));
  }
  auto tenant = CollectionTenant(identity_.get());
  if (!tenant.ok()) return Send(Error(tenant.status()));
  cancellation_ = FreshCancellation();
  headers_.request = &parser_->get();
  auto call = std::make_shared<Call>();
  call->service = options_.service;
  call->store = store;
  call->tenant = *std::move(tenant);
  call->collection = route.model;
  call->reply = [self = shared_from_this()](PipelineAnswer answer) mutable {
    self->Post([self, answer = std::move(answer)]() mutable {
      self->cancellation_.reset();
      self->Send(Reply{answer.status, kJson, std::move(answer.body)});
    });
  };
  const PipelineContext context{&headers_, &*record_,
                                identity_ ? std::string_view(identity_->id) : std::string_view(),
                                identity_ ? admission::KindName(identity_->kind) : std::string_view()};
  const admission::Identity* identity = identity_.get();
  const std::string& body = parser_->get().body();
  const auto verb = parser_->get().method();
  namespace http = boost::beast::http;
  switch (route.id) {
    case RouteId::kCollections:
      OnStore(call, [](Call& c) {
        rapidjson::StringBuffer buffer;
        Writer w(buffer);
        w.StartObject();
        w.Key("collections");
        w.StartArray();
        for (const std::string& name : c.store->List(c.tenant)) pipeline_internal::String(w, name);
        w.EndArray();
        w.EndObject();
        std::move(c.reply)({200, buffer.GetString(), {}});
      });
      break;
    case RouteId::kCollection:
      if (verb == http::verb::put) {
        PutCollection(call, body, identity);
      } else if (verb == http::verb::delete_) {
        OnStore(call, [](Call& c) {
          auto s = c.store->Drop(c.tenant, c.collection);
          std::move(c.reply)(s.ok() ? PipelineAnswer{200, "{\"deleted\":true}", {}} : StoreError(s));
        });
      } else {
        CollectionStats(call);
      }
      break;
    case RouteId::kCollectionDocuments: Upsert(call, body, identity, context, cancellation_); break;
    case RouteId::kCollectionDocument:
      OnStore(call, [id = route.version, del = verb == http::verb::delete_](Call& c) {
        auto doc = c.store->Get(c.tenant, c.collection, id);
        if (!doc.ok()) return std::move(c.reply)(StoreError(doc.status()));
        if (del) {
          auto s = c.store->Write(c.tenant, c.collection, {Change{Change::Kind::kDelete, {id, {}, {}}}});
          return std::move(c.reply)(s.ok() ? PipelineAnswer{200, "{\"deleted\":true}", {}} : StoreError(s));
        }
        rapidjson::StringBuffer buffer;
        Writer w(buffer);
        w.StartObject();
        w.Key("id");
        pipeline_internal::String(w, doc->id);
        w.Key("vector");
        w.StartArray();
        for (float x : doc->vector) w.Double(x);
        w.EndArray();
        w.Key("metadata");
        w.RawValue(doc->metadata.data(), doc->metadata.size(), rapidjson::kObjectType);
        w.EndObject();
        std::move(c.reply)({200, buffer.GetString(), {}});
      });
      break;
    case RouteId::kCollectionQuery: Query(call, body, identity, context, cancellation_); break;
    default: return Send(Error(404, "no such collection endpoint"));
  }
  WatchForClose();
}

}  // namespace ortserve::frontend

// SPDX-License-Identifier: Apache-2.0
#include "frontend/grpc/collection_calls.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/http/collection_routes.h"
#include "retrieval/collection_store.h"

namespace ortserve::frontend {
namespace {

namespace v1 = ::ortserve::retrieval::v1;
using retrieval::Change;

// The most documents one call may upsert (as over REST).
constexpr int kMaxDocumentsPerCall = 256;

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void ToSpec(const retrieval::CollectionInfo& info, v1::CollectionSpec* spec) {
  spec->set_model(info.model);
  spec->set_dimension(info.params.dimension);
  spec->set_metric(std::string(retrieval::MetricName(info.params.metric)));
  spec->set_m(info.params.m);
  spec->set_ef_construction(info.params.ef_construction);
  spec->set_ef_search(info.params.ef_search);
  spec->set_exact_threshold(info.params.exact_threshold);
  spec->set_max_bytes(info.params.max_bytes);
}

absl::StatusOr<retrieval::CollectionInfo> FromSpec(const v1::CollectionSpec& spec, uint64_t max_collection_bytes) {
  retrieval::CollectionInfo info;
  info.model = spec.model();
  if (spec.dimension() == 0) return absl::InvalidArgumentError("'dimension' is required");
  info.params.dimension = spec.dimension();
  if (!spec.metric().empty()) {
    auto metric = retrieval::ParseMetric(spec.metric());
    if (!metric.ok()) return metric.status();
    info.params.metric = *metric;
  }
  if (spec.m() != 0) info.params.m = spec.m();
  if (spec.ef_construction() != 0) info.params.ef_construction = spec.ef_construction();
  if (spec.ef_search() != 0) info.params.ef_search = spec.ef_search();
  if (spec.has_exact_threshold()) info.params.exact_threshold = spec.exact_threshold();
  info.params.max_bytes = spec.max_bytes() != 0 ? spec.max_bytes()
                                                : std::min<uint64_t>(info.params.max_bytes, max_collection_bytes);
  return info;
}

}  // namespace

absl::StatusOr<std::string> CollectionsService::Tenant(grpc::CallbackServerContext* context, std::string_view method,
                                                       admission::IdentityPtr* identity) const {
  if (auto refused = admit_(context, method, identity); !refused.ok()) return refused;
  return CollectionTenant(identity->get());
}

grpc::ServerUnaryReactor* CollectionsService::OnStore(grpc::CallbackServerContext* context,
                                                      std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto submitted = store_->Submit([reactor, work = std::move(work)] { reactor->Finish(ToGrpcStatus(work())); });
  if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
  return reactor;
}

grpc::ServerUnaryReactor* CollectionsService::CreateCollection(grpc::CallbackServerContext* context,
                                                               const v1::CreateCollectionRequest* request,
                                                               v1::CollectionInfo* response) {
  admission::IdentityPtr identity;
  auto tenant = Tenant(context, "CreateCollection", &identity);
  if (!tenant.ok()) return Finish(context, tenant.status());
  auto info = FromSpec(request->spec(), store_->options().max_collection_bytes);
  if (!info.ok()) return Finish(context, info.status());
  if (!info->model.empty() && identity && !identity->models.Allows(info->model)) {
    return Finish(context, absl::PermissionDeniedError(StrCat("the credential may not use model '", info->model, "'")));
  }
  return OnStore(context, [this, tenant = *tenant, name = request->name(), info = *info, response]() -> absl::Status {
    auto created = store_->Create(tenant, name, info);
    if (!created.ok()) return created.status();
    response->set_name(name);
    ToSpec(info, response->mutable_spec());
    response->set_created(*created);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectionsService::GetCollection(grpc::CallbackServerContext* context,
                                                            const v1::CollectionRequest* request,
                                                            v1::CollectionInfo* response) {
  admission::IdentityPtr identity;
  auto tenant = Tenant(context, "GetCollection", &identity);
  if (!tenant.ok()) return Finish(context, tenant.status());
  return OnStore(context, [this, tenant = *tenant, name = request->name(), response]() -> absl::Status {
    auto info = store_->Info(tenant, name);
    if (!info.ok()) return info.status();
    auto stats = store_->Stats(tenant, name);
    if (!stats.ok()) return stats.status();
    response->set_name(name);
    ToSpec(*info, response->mutable_spec());
    response->set_documents(stats->documents);
    response->set_bytes(stats->bytes);
    response->set_indexed(stats->indexed);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectionsService::DeleteCollection(grpc::CallbackServerContext* context,
                                                               const v1::CollectionRequest* request,
                                                               v1::DeleteResponse* response) {
  admission::IdentityPtr identity;
  auto tenant = Tenant(context, "DeleteCollection", &identity);
  if (!tenant.ok()) return Finish(context, tenant.status());
  return OnStore(context, [this, tenant = *tenant, name = request->name(), response]() -> absl::Status {
    if (auto s = store_->Drop(tenant, name); !s.ok()) return s;
    response->set_deleted(true);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectionsService::ListCollections(grpc::CallbackServerContext* context,
                                                              const v1::ListCollectionsRequest*,
                                                              v1::ListCollectionsResponse* response) {
  admission::IdentityPtr identity;
  auto tenant = Tenant(context, "ListCollections", &identity);
  if (!tenant.ok()) return Finish(context, tenant.status());
  for (const std::string& name : store_->List(*tenant)) response->add_names(name);
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* CollectionsService::Upsert(grpc::CallbackServerContext* context,
                                                     const v1::UpsertRequest* request, v1::UpsertResponse* response) {
  admission::IdentityPtr identity;
  auto tenant = Tenant(context, "Upsert", &identity);
  if (!tenant.ok()) return Finish(context, tenant.status());
  auto info = store_->Info(*tenant, request->collection());
  if (!info.ok()) return Finish(context, info.status());
  if (request->documents_size() == 0 || request->documents_size() > kMaxDocumentsPerCall) {
    return Finish(context, absl::InvalidArgumentError(
                               StrCat("'documents' must hold 1 to ", kMaxDocumentsPerCall, " documents")));
  }
  auto changes = std::make_shared<std::vector<Change>>();
  std::vector<std::string> texts;
  std::vector<size_t> text_rows;
  for (const v1::Document& doc : request->documents()) {
    Change change;
    change.document.id = doc.id();
    change.document.metadata = doc.metadata_json();
    if (doc.has_vector()) {
      if (doc.vector().values_size() > static_cast<int>(retrieval::kMaxDimension)) {
        return Finish(context, absl::InvalidArgumentError(StrCat("document '", doc.id(), "': the vector is too long")));
      }
      change.document.vector.assign(doc.vector().values().begin(), doc.vector().values().end());
    } else if (doc.has_text()) {
      if (doc.text().empty() || doc.text().size() > (100 << 10)) {
        return Finish(context, absl::InvalidArgumentError(StrCat("document '", doc.id(), "': text must be 1 to 102400 bytes")));
      }
      texts.push_back(doc.text());
      text_rows.push_back(changes->size());
    } else {
      return Finish(context, absl::InvalidArgumentError(StrCat("document '", doc.id(), "' has neither text nor vector")));
    }
    changes->push_back(std::move(change));
  }
  auto write = [this, tenant = *tenant, name = request->collection(), changes, response]() -> absl::Status {
    const auto n = static_cast<uint32_t>(changes->size());
    if (auto s = store_->Write(tenant, name, std::move(*changes)); !s.ok()) return s;
    response->set_upserted(n);
    return absl::OkStatus();
  };
  if (texts.empty()) return OnStore(context, std::move(write));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  EmbedForCollection(*service_, info->model, identity.get(), texts, PipelineContext{}, nullptr,
                     [this, reactor, changes, text_rows = std::move(text_rows), write = std::move(write)](
                         absl::StatusOr<std::vector<std::vector<float>>> vectors) mutable {
                       if (!vectors.ok()) return reactor->Finish(ToGrpcStatus(vectors.status()));
                       for (size_t i = 0; i < vectors->size(); ++i) {
                         (*changes)[text_rows[i]].document.vector = std::move((*vectors)[i]);
                       }
                       auto submitted = store_->Submit([reactor, write = std::move(write)]() mutable {
                         reactor->Finish(ToGrpcStatus(write()));
                       });
                       if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
                     });
  return reactor;
}

grpc::ServerUnaryReactor* CollectionsService::GetDocument(grpc::CallbackServerContext* context,
                                                          const v1::DocumentRequest* request, v1::Document* response) {
  admission::IdentityPtr identity;
  auto tenant = Tenant(context, "GetDocument", &identity);
  if (!tenant.ok()) return Finish(context, tenant.status());
  return OnStore(context, [this, tenant = *tenant, name = request->collection(), id = request->id(),
                           response]() -> absl::Status {
    auto doc = store_->Get(tenant, name, id);
    if (!doc.ok()) return doc.status();
    response->set_id(doc->id);
    response->mutable_vector()->mutable_values()->Add(doc->vector.begin(), doc->vector.end());
    response->set_metadata_json(doc->metadata);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectionsService::DeleteDocument(grpc::CallbackServerContext* context,
                                                             const v1::DocumentRequest* request,
                                                             v1::DeleteResponse* response) {
  admission::IdentityPtr identity;
  auto tenant = Tenant(context, "DeleteDocument", &identity);
  if (!tenant.ok()) return Finish(context, tenant.status());
  return OnStore(context, [this, tenant = *tenant, name = request->collection(), id = request->id(),
                           response]() -> absl::Status {
    if (auto doc = store_->Get(tenant, name, id); !doc.ok()) return doc.status();
    if (auto s = store_->Write(tenant, name, {Change{Change::Kind::kDelete, {id, {}, {}}}}); !s.ok()) return s;
    response->set_deleted(true);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectionsService::Query(grpc::CallbackServerContext* context,
                                                    const v1::QueryRequest* request, v1::QueryResponse* response) {
  admission::IdentityPtr identity;
  auto tenant = Tenant(context, "Query", &identity);
  if (!tenant.ok()) return Finish(context, tenant.status());
  auto info = store_->Info(*tenant, request->collection());
  if (!info.ok()) return Finish(context, info.status());
  const size_t top_k = request->top_k() == 0 ? 10 : request->top_k();
  auto filter = std::make_shared<retrieval::Filter>();
  if (!request->filter_json().empty()) {
    auto parsed = retrieval::Filter::Parse(request->filter_json());
    if (!parsed.ok()) return Finish(context, parsed.status());
    *filter = *std::move(parsed);
  }
  auto search = [this, tenant = *tenant, name = request->collection(), top_k, filter, exact = request->exact(),
                 response](std::vector<float> query) -> absl::Status {
    auto hits = store_->Query(tenant, name, std::move(query), top_k, *filter, exact);
    if (!hits.ok()) return hits.status();
    for (const retrieval::Hit& hit : *hits) {
      v1::Hit* out = response->add_results();
      out->set_id(hit.id);
      out->set_score(hit.score);
      out->set_metadata_json(hit.metadata);
    }
    return absl::OkStatus();
  };
  if (request->has_vector()) {
    if (request->vector().values_size() > static_cast<int>(retrieval::kMaxDimension)) {
      return Finish(context, absl::InvalidArgumentError("the query vector is too long"));
    }
    std::vector<float> query(request->vector().values().begin(), request->vector().values().end());
    return OnStore(context, [search, query = std::move(query)]() mutable { return search(std::move(query)); });
  }
  if (!request->has_text() || request->text().empty() || request->text().size() > (100 << 10)) {
    return Finish(context, absl::InvalidArgumentError("give 'text' (1 to 102400 bytes) or 'vector'"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  EmbedForCollection(*service_, info->model, identity.get(), {request->text()}, PipelineContext{}, nullptr,
                     [this, reactor, search](absl::StatusOr<std::vector<std::vector<float>>> vectors) mutable {
                       if (!vectors.ok()) return reactor->Finish(ToGrpcStatus(vectors.status()));
                       auto submitted = store_->Submit([reactor, search, v = std::move((*vectors)[0])]() mutable {
                         reactor->Finish(ToGrpcStatus(search(std::move(v))));
                       });
                       if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
                     });
  return reactor;
}

}  // namespace ortserve::frontend

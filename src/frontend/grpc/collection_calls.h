// SPDX-License-Identifier: Apache-2.0
// ortserve.retrieval.v1.Collections (proto/collections.proto): vector
// collections over gRPC, with the operations, bounds, tenants and errors of
// /v1/collections (docs/retrieval.md). Store work runs on the store's
// workers and text is embedded through the normal inference path, so no
// call blocks a gRPC thread on a scan, an fdatasync or a model run.
//
// Thread-safe (gRPC calls its methods from many threads).
#pragma once

#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "admission/identity.h"
#include "frontend/inference_service.h"
#include "proto/collections.grpc.pb.h"

namespace ortserve::retrieval {
class CollectionStore;
}  // namespace ortserve::retrieval

namespace ortserve::frontend {

class CollectionsService final : public ortserve::retrieval::v1::Collections::CallbackService {
 public:
  // Authenticates and authorizes a call for the infer route class (the
  // server's Admit: credentials from the call's metadata, the audit log);
  // sets the identity or returns the refusal.
  using AdmitFn = std::function<absl::Status(grpc::CallbackServerContext*, std::string_view method,
                                             admission::IdentityPtr*)>;
  // Neither pointer is owned; both outlive the service.
  CollectionsService(InferenceService* service, retrieval::CollectionStore* store, AdmitFn admit)
      : service_(service), store_(store), admit_(std::move(admit)) {}

  grpc::ServerUnaryReactor* CreateCollection(grpc::CallbackServerContext* context,
                                             const retrieval::v1::CreateCollectionRequest* request,
                                             retrieval::v1::CollectionInfo* response) override;
  grpc::ServerUnaryReactor* GetCollection(grpc::CallbackServerContext* context,
                                          const retrieval::v1::CollectionRequest* request,
                                          retrieval::v1::CollectionInfo* response) override;
  grpc::ServerUnaryReactor* DeleteCollection(grpc::CallbackServerContext* context,
                                             const retrieval::v1::CollectionRequest* request,
                                             retrieval::v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* ListCollections(grpc::CallbackServerContext* context,
                                            const retrieval::v1::ListCollectionsRequest* request,
                                            retrieval::v1::ListCollectionsResponse* response) override;
  grpc::ServerUnaryReactor* Upsert(grpc::CallbackServerContext* context, const retrieval::v1::UpsertRequest* request,
                                   retrieval::v1::UpsertResponse* response) override;
  grpc::ServerUnaryReactor* GetDocument(grpc::CallbackServerContext* context,
                                        const retrieval::v1::DocumentRequest* request,
                                        retrieval::v1::Document* response) override;
  grpc::ServerUnaryReactor* DeleteDocument(grpc::CallbackServerContext* context,
                                           const retrieval::v1::DocumentRequest* request,
                                           retrieval::v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* context, const retrieval::v1::QueryRequest* request,
                                  retrieval::v1::QueryResponse* response) override;

 private:
  // The caller's tenant, or the refusal (authentication, scope, tenant name).
  absl::StatusOr<std::string> Tenant(grpc::CallbackServerContext* context, std::string_view method,
                                     admission::IdentityPtr* identity) const;
  // Runs `work` on the store's workers and finishes the call with its status.
  grpc::ServerUnaryReactor* OnStore(grpc::CallbackServerContext* context, std::function<absl::Status()> work);

  InferenceService* const service_;
  retrieval::CollectionStore* const store_;
  const AdmitFn admit_;
};

}  // namespace ortserve::frontend

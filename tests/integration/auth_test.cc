// SPDX-License-Identifier: Apache-2.0
// Authentication, authorization, TLS and the audit log, end to end: the real
// `ortserve` binary with an API key file and a JWT key set, asked over every
// REST route and every gRPC RPC with no credential, a wrong one, an expired
// JWT, one key per scope and a key limited to one model (a table of expected
// answers); HTTPS and mTLS checked with the curl binary and the gRPC client;
// certificates rotated under load; the audit log read back.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "admission/api_keys.h"
#include "admission/crypto.h"
#include "client/client.h"
#include "integration/grpc_test_util.h"
#include "integration/server_harness.h"
#include "proto/grpc_service.grpc.pb.h"
#include "unit/admission/test_support.h"

namespace ortserve::testing {
namespace {

using admission::testing::KeyAndCert;
using admission::testing::ReplaceFile;
using admission::testing::SignHs256;
using admission::testing::TestCa;

// Runs a shell command; its exit status and standard output.
struct CommandResult {
  int status = -1;
  std::string out;
};
CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// What a credential may do, as the table expects it.
enum class Cred { kNone, kWrongKey, kExpiredJwt, kInfer, kModelControl, kAdmin, kMetrics, kAlphaOnly, kJwtInfer };
constexpr Cred kAllCreds[] = {Cred::kNone,  Cred::kWrongKey, Cred::kExpiredJwt, Cred::kInfer,   Cred::kModelControl,
                              Cred::kAdmin, Cred::kMetrics,  Cred::kAlphaOnly,  Cred::kJwtInfer};
const char* CredName(Cred c) {
  switch (c) {
    case Cred::kNone: return "none";
    case Cred::kWrongKey: return "wrong_key";
    case Cred::kExpiredJwt: return "expired_jwt";
    case Cred::kInfer: return "infer";
    case Cred::kModelControl: return "model_control";
    case Cred::kAdmin: return "admin";
    case Cred::kMetrics: return "metrics";
    case Cred::kAlphaOnly: return "alpha_only";
    case Cred::kJwtInfer: return "jwt_infer";
  }
  return "?";
}

enum class Class { kHealth, kMetadata, kInfer, kModelControl, kAdmin };

// The status the table expects: 200 (the route's own answer), 401 or 403.
int Expected(Cred cred, Class route_class, const std::string& model) {
  if (route_class == Class::kHealth) return 200;
  if (cred == Cred::kNone || cred == Cred::kWrongKey || cred == Cred::kExpiredJwt) return 401;
  bool infer = false, control = false, admin = false, any_model = true;
  switch (cred) {
    case Cred::kInfer:
    case Cred::kJwtInfer: infer = true; break;
    case Cred::kModelControl: control = true; break;
    case Cred::kAdmin: admin = true; break;
    case Cred::kMetrics: break;
    case Cred::kAlphaOnly: infer = control = true; any_model = false; break;
    default: break;
  }
  bool allowed = false;
  switch (route_class) {
    case Class::kMetadata: allowed = infer || control; break;
    case Class::kInfer: allowed = infer; break;
    case Class::kModelControl: allowed = control; break;
    case Class::kAdmin: allowed = admin; break;
    case Class::kHealth: allowed = true; break;
  }
  if (!allowed) return 403;
  if (!any_model && !model.empty() && model != "alpha") return 403;
  return 200;
}

// Outside the matrix: a key limited to beta, the configured text model.
constexpr Cred kBetaOnly = static_cast<Cred>(15);

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-hs256-test-secret";

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string repo = dir_->path() + "/models";
    ASSERT_TRUE(WriteAddModels({{repo + "/alpha/1/model.onnx", 1.0f},
                                {repo + "/beta/1/model.onnx", 2.0f},
                                {repo + "/gamma/1/model.onnx", 3.0f}})
                    .ok());
    // One key per scope, one limited to model alpha, one that has expired.
    std::string key_file = "# test keys\n";
    auto add = [&](Cred cred, const std::string& id, std::vector<admission::Scope> scopes,
                   std::vector<std::string> models) {
      admission::ApiKeySpec spec;
      spec.id = id;
      for (auto s : scopes) spec.scopes.Add(s);
      if (!models.empty()) spec.models = *admission::ModelAllowList::Only(models);
      auto key = admission::GenerateApiKey(spec);
      ASSERT_TRUE(key.ok()) << key.status();
      key_file += key->line + "\n";
      keys_[static_cast<int>(cred)] = key->key;
    };
    add(Cred::kInfer, "inf", {admission::Scope::kInfer}, {});
    add(Cred::kModelControl, "ctl", {admission::Scope::kModelControl}, {});
    add(Cred::kAdmin, "adm", {admission::Scope::kAdmin}, {});
    add(Cred::kMetrics, "met", {admission::Scope::kMetrics}, {});
    add(Cred::kAlphaOnly, "alpha-only", {admission::Scope::kInfer, admission::Scope::kModelControl}, {"alpha"});
    add(kBetaOnly, "beta-only", {admission::Scope::kInfer}, {"beta"});
    // A key with the right id and a wrong secret.
    keys_[static_cast<int>(Cred::kWrongKey)] =
        keys_[static_cast<int>(Cred::kInfer)].substr(0, keys_[static_cast<int>(Cred::kInfer)].size() - 4) + "AAAA";
    WriteFile(dir_->path() + "/keys", key_file);
    const std::string jwk = admission::Base64UrlEncode(kSecret);
    WriteFile(dir_->path() + "/jwks.json",
              R"({"keys":[{"kty":"oct","kid":"hs","alg":"HS256","k":")" + jwk + R"("}]})");
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    const std::string header = R"({"alg":"HS256","typ":"JWT","kid":"hs"})";
    jwt_infer_ = SignHs256(header,
                           R"({"iss":"test-idp","aud":"ortserve","sub":"jwt-user","scope":"openid infer","exp":)" +
                               std::to_string(now + 3600) + "}",
                           kSecret);
    jwt_expired_ = SignHs256(header,
                             R"({"iss":"test-idp","aud":"ortserve","sub":"old","scope":"infer","exp":)" +
                                 std::to_string(now - 600) + "}",
                             kSecret);
    audit_path_ = dir_->path() + "/audit.log";
    auto server = ServerProcess::Start({"--model-repository", repo, "--model-control-mode", "explicit", "--load-model",
                                        "*", "--grpc-port", "0", "--metrics-port", "0", "--api-keys-file",
                                        dir_->path() + "/keys", "--jwt-jwks-file", dir_->path() + "/jwks.json",
                                        "--jwt-issuer", "test-idp", "--jwt-audience", "ortserve", "--audit-log",
                                        audit_path_, "--sae-model", "beta", "--embed-model", "beta",
                                        "--enable-profiling"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  // The headers that carry `cred` over HTTP.
  static std::map<std::string, std::string> Headers(Cred cred) {
    switch (cred) {
      case Cred::kNone: return {};
      case Cred::kExpiredJwt: return {{"Authorization", "Bearer " + jwt_expired_}};
      case Cred::kJwtInfer: return {{"Authorization", "Bearer " + jwt_infer_}};
      case Cred::kAlphaOnly:  // As a bearer token, as OpenAI SDKs send it.
        return {{"Authorization", "Bearer " + keys_[static_cast<int>(cred)]}};
      default: return {{"X-API-Key", keys_[static_cast<int>(cred)]}};
    }
  }
  static void AddMetadata(grpc::ClientContext* context, Cred cred) {
    for (const auto& [name, value] : Headers(cred)) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      context->AddMetadata(lower, value);
    }
  }

  static inline TempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  static inline std::string keys_[16];
  static inline std::string jwt_infer_;
  static inline std::string jwt_expired_;
  static inline std::string audit_path_;
};

struct RestRoute {
  const char* method;
  const char* target;
  const char* body;
  Class route_class;
  const char* model;
};

const std::string kInferBody =
    R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]})";

TEST_F(AuthTest, RestAuthorizationMatrix) {
  const RestRoute routes[] = {
      {"GET", "/v2/health/live", "", Class::kHealth, ""},
      {"GET", "/v2/health/ready", "", Class::kHealth, ""},
      {"GET", "/v2/models/alpha/ready", "", Class::kHealth, ""},
      {"GET", "/v2", "", Class::kMetadata, ""},
      {"GET", "/v2/models/alpha", "", Class::kMetadata, "alpha"},
      {"GET", "/v2/models/beta/versions/1", "", Class::kMetadata, "beta"},
      {"GET", "/v2/models/alpha/config", "", Class::kMetadata, "alpha"},
      {"GET", "/v2/models/alpha/stats", "", Class::kMetadata, "alpha"},
      {"GET", "/v2/models/beta/stats", "", Class::kMetadata, "beta"},
      {"GET", "/v2/models/stats", "", Class::kMetadata, ""},
      {"POST", "/v2/models/alpha/infer", kInferBody.c_str(), Class::kInfer, "alpha"},
      {"POST", "/v2/models/beta/infer", kInferBody.c_str(), Class::kInfer, "beta"},
      {"POST", "/v2/repository/index", "", Class::kModelControl, ""},
      {"POST", "/v2/repository/models/alpha/load", "", Class::kModelControl, "alpha"},
      {"POST", "/v2/repository/models/gamma/load", "", Class::kModelControl, "gamma"},
      {"GET", "/v2/logging", "", Class::kAdmin, ""},
      {"POST", "/v2/logging", "{}", Class::kAdmin, ""},
      {"GET", "/v2/admin/profile/heap", "", Class::kAdmin, ""},
      // The alert outbox (404 once allowed: alerts are off here).
      {"GET", "/v2/admin/alerts", "", Class::kAdmin, ""},
      {"POST", "/v2/admin/alerts/replay", "", Class::kAdmin, ""},
      // Text endpoints: their model is the configured one (beta).
      {"POST", "/api/v1/sae/analyze", R"({"patientId":"p","reportText":"t"})", Class::kInfer, "beta"},
      {"POST", "/embed", R"({"inputs":"t"})", Class::kInfer, "beta"},
      {"POST", "/v1/embeddings", R"({"input":"t"})", Class::kInfer, "beta"},
  };
  int checked = 0;
  for (const RestRoute& route : routes) {
    for (Cred cred : kAllCreds) {
      // A refused request closes its connection (its body is never read).
      HttpClient client(server_->http_port());
      const HttpResponse response = client.Request(route.method, route.target, route.body, Headers(cred));
      const int expected = Expected(cred, route.route_class, route.model);
      SCOPED_TRACE(std::string(route.method) + " " + route.target + " with " + CredName(cred) + ": " +
                   std::to_string(response.status) + " " + response.body);
      if (expected == 200) {
        // Allowed: the route's own answer. The text endpoints' model is not
        // a text pipeline here, and a heap profile needs tcmalloc: what
        // matters is that access was not refused.
        EXPECT_NE(response.status, 401u);
        EXPECT_NE(response.status, 403u);
        const std::string target = route.target;
        if (target.find("/v2/admin/alerts") == 0) {
          EXPECT_EQ(response.status, 404u);
        } else if (target.find("/v2") == 0 && target.find("profile") == std::string::npos) {
          EXPECT_EQ(response.status, 200u);
        }
      } else {
        EXPECT_EQ(response.status, static_cast<unsigned>(expected));
      }
      if (expected == 401) {
        EXPECT_NE(response.Header("www-authenticate").find("Bearer realm=\"ortserve\""), std::string::npos);
        EXPECT_EQ(response.body.find(keys_[static_cast<int>(Cred::kWrongKey)]), std::string::npos);
      }
      if (expected == 403) {
        // Names what is missing: the scope, or the model.
        EXPECT_TRUE(response.body.find("lacks the scope") != std::string::npos ||
                    response.body.find("may not use model") != std::string::npos);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(std::size(routes) * std::size(kAllCreds)));
  // An unknown endpoint needs a credential too; with one, it is a plain 404.
  EXPECT_EQ(HttpClient(server_->http_port()).Get("/v2/nothing").status, 401u);
  EXPECT_EQ(HttpClient(server_->http_port()).Request("GET", "/v2/nothing", "", Headers(Cred::kInfer)).status, 404u);
}

TEST_F(AuthTest, OpenAiBodyModelIsCheckedAgainstTheModelList) {
  // alpha-only may not use the configured embedding model (beta)...
  EXPECT_EQ(HttpClient(server_->http_port()).Post("/v1/embeddings", R"({"input":"t"})", Headers(Cred::kAlphaOnly)).status,
            403u);
  // A key limited to beta passes the header check (beta is the configured
  // model) but may not name another model in the body.
  const HttpResponse other = HttpClient(server_->http_port())
                                 .Post("/v1/embeddings", R"({"input":"t","model":"gamma"})", Headers(kBetaOnly));
  EXPECT_EQ(other.status, 403u) << other.body;
  EXPECT_NE(other.body.find("may not use model 'gamma'"), std::string::npos) << other.body;
  const HttpResponse same = HttpClient(server_->http_port())
                                .Post("/v1/embeddings", R"({"input":"t","model":"beta"})", Headers(kBetaOnly));
  EXPECT_NE(same.status, 401u);
  EXPECT_NE(same.status, 403u);
  // A key for every model is not stopped by the body.
  const HttpResponse any = HttpClient(server_->http_port())
                               .Post("/v1/embeddings", R"({"input":"t","model":"gamma"})", Headers(Cred::kInfer));
  EXPECT_NE(any.status, 401u);
  EXPECT_NE(any.status, 403u);
}

TEST_F(AuthTest, ListsShowOnlyTheModelsACredentialMayUse) {
  HttpClient client(server_->http_port());
  const HttpResponse all = client.Post("/v2/repository/index", "", Headers(Cred::kModelControl));
  ASSERT_EQ(all.status, 200u) << all.body;
  EXPECT_NE(all.body.find("\"beta\""), std::string::npos);
  const HttpResponse alpha = client.Post("/v2/repository/index", "", Headers(Cred::kAlphaOnly));
  ASSERT_EQ(alpha.status, 200u) << alpha.body;
  EXPECT_NE(alpha.body.find("\"alpha\""), std::string::npos);
  EXPECT_EQ(alpha.body.find("\"beta\""), std::string::npos);
  const HttpResponse stats = client.Request("GET", "/v2/models/stats", "", Headers(Cred::kAlphaOnly));
  ASSERT_EQ(stats.status, 200u) << stats.body;
  EXPECT_EQ(stats.body.find("\"beta\""), std::string::npos);
}

TEST_F(AuthTest, GrpcAuthorizationMatrix) {
  auto stub = inference::GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port()));
  using Call = std::function<grpc::Status(grpc::ClientContext*)>;
  struct Rpc {
    const char* name;
    Class route_class;
    const char* model;
    Call call;
  };
  auto infer_request = [](const std::string& model) {
    inference::ModelInferRequest request;
    request.set_model_name(model);
    AddRawInput<float>(&request, "x", "FP32", {1, 2}, {1.0f, 2.0f});
    return request;
  };
  const std::vector<Rpc> rpcs = {
      {"ServerLive", Class::kHealth, "", [&](grpc::ClientContext* c) {
         inference::ServerLiveResponse r;
         return stub->ServerLive(c, {}, &r);
       }},
      {"ServerReady", Class::kHealth, "", [&](grpc::ClientContext* c) {
         inference::ServerReadyResponse r;
         return stub->ServerReady(c, {}, &r);
       }},
      {"ModelReady", Class::kHealth, "", [&](grpc::ClientContext* c) {
         inference::ModelReadyRequest q;
         q.set_name("alpha");
         inference::ModelReadyResponse r;
         return stub->ModelReady(c, q, &r);
       }},
      {"ServerMetadata", Class::kMetadata, "", [&](grpc::ClientContext* c) {
         inference::ServerMetadataResponse r;
         return stub->ServerMetadata(c, {}, &r);
       }},
      {"ModelMetadata(beta)", Class::kMetadata, "beta", [&](grpc::ClientContext* c) {
         inference::ModelMetadataRequest q;
         q.set_name("beta");
         inference::ModelMetadataResponse r;
         return stub->ModelMetadata(c, q, &r);
       }},
      {"ModelConfig(alpha)", Class::kMetadata, "alpha", [&](grpc::ClientContext* c) {
         inference::ModelConfigRequest q;
         q.set_name("alpha");
         inference::ModelConfigResponse r;
         return stub->ModelConfig(c, q, &r);
       }},
      {"ModelStatistics(alpha)", Class::kMetadata, "alpha", [&](grpc::ClientContext* c) {
         inference::ModelStatisticsRequest q;
         q.set_name("alpha");
         inference::ModelStatisticsResponse r;
         return stub->ModelStatistics(c, q, &r);
       }},
      {"ModelInfer(alpha)", Class::kInfer, "alpha", [&](grpc::ClientContext* c) {
         inference::ModelInferResponse r;
         return stub->ModelInfer(c, infer_request("alpha"), &r);
       }},
      {"ModelInfer(beta)", Class::kInfer, "beta", [&](grpc::ClientContext* c) {
         inference::ModelInferResponse r;
         return stub->ModelInfer(c, infer_request("beta"), &r);
       }},
      {"ModelStreamInfer(beta)", Class::kInfer, "beta", [&](grpc::ClientContext* c) {
         auto stream = stub->ModelStreamInfer(c);
         stream->Write(infer_request("beta"));
         stream->WritesDone();
         inference::ModelStreamInferResponse r;
         grpc::Status in_stream = grpc::Status::OK;
         while (stream->Read(&r)) {
           // A message refused for its model: the stream goes on, the
           // message carries the error.
           if (!r.error_message().empty()) {
             in_stream = grpc::Status(r.error_message().find("may not use model") != std::string::npos
                                          ? grpc::StatusCode::PERMISSION_DENIED
                                          : grpc::StatusCode::UNKNOWN,
                                      r.error_message());
           }
         }
         grpc::Status status = stream->Finish();
         return status.ok() ? in_stream : status;
       }},
      {"RepositoryIndex", Class::kModelControl, "", [&](grpc::ClientContext* c) {
         inference::RepositoryIndexResponse r;
         return stub->RepositoryIndex(c, {}, &r);
       }},
      {"RepositoryModelLoad(alpha)", Class::kModelControl, "alpha", [&](grpc::ClientContext* c) {
         inference::RepositoryModelLoadRequest q;
         q.set_model_name("alpha");
         inference::RepositoryModelLoadResponse r;
         return stub->RepositoryModelLoad(c, q, &r);
       }},
      {"RepositoryModelUnload(gamma)", Class::kModelControl, "gamma", [&](grpc::ClientContext* c) {
         inference::RepositoryModelUnloadRequest q;
         q.set_model_name("gamma");
         inference::RepositoryModelUnloadResponse r;
         return stub->RepositoryModelUnload(c, q, &r);
       }},
  };
  for (const Rpc& rpc : rpcs) {
    for (Cred cred : kAllCreds) {
      auto context = Context();
      AddMetadata(context.get(), cred);
      const grpc::Status status = rpc.call(context.get());
      const int expected = Expected(cred, rpc.route_class, rpc.model);
      SCOPED_TRACE(std::string(rpc.name) + " with " + CredName(cred) + ": " + std::to_string(status.error_code()) +
                   " " + status.error_message());
      switch (expected) {
        case 200: EXPECT_TRUE(status.ok()); break;
        case 401: EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED); break;
        case 403: EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED); break;
      }
    }
  }
  // A credential sent twice is refused, not guessed at.
  auto context = Context();
  context->AddMetadata("x-api-key", keys_[static_cast<int>(Cred::kInfer)]);
  context->AddMetadata("x-api-key", keys_[static_cast<int>(Cred::kInfer)]);
  inference::ServerMetadataResponse r;
  EXPECT_EQ(stub->ServerMetadata(context.get(), {}, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthTest, MetricsNeedTheMetricsScope) {
  const std::string url = "http://127.0.0.1:" + std::to_string(server_->metrics_port()) + "/metrics";
  auto code = [&](const std::string& user_password) {
    return RunCommand("curl -s -o /dev/null -w '%{http_code}' " +
                      (user_password.empty() ? std::string() : "-u '" + user_password + "' ") + url)
        .out;
  };
  EXPECT_EQ(code(""), "401");
  EXPECT_EQ(code("prometheus:" + keys_[static_cast<int>(Cred::kInfer)]), "401");
  EXPECT_EQ(code("prometheus:" + keys_[static_cast<int>(Cred::kMetrics)]), "200");
}

TEST_F(AuthTest, AuditLogRecordsActionsAndRefusals) {
  HttpClient client(server_->http_port());
  ASSERT_EQ(client.Post("/v2/logging", R"({"log_info":true})", Headers(Cred::kAdmin)).status, 200u);
  ASSERT_EQ(HttpClient(server_->http_port())
                .Post("/v2/repository/models/alpha/load", "", Headers(Cred::kModelControl))
                .status,
            200u);
  ASSERT_EQ(HttpClient(server_->http_port()).Post("/v2/repository/models/beta/unload", "", Headers(Cred::kInfer)).status,
            403u);
  ASSERT_EQ(HttpClient(server_->http_port()).Post("/v2/logging", "{}", Headers(Cred::kWrongKey)).status, 401u);
  const std::string audit = ReadAll(audit_path_);
  std::vector<std::string> lines;
  std::stringstream in(audit);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_FALSE(lines.empty());
  auto has = [&](std::vector<std::string> parts) {
    for (const auto& line : lines) {
      bool all = true;
      for (const auto& part : parts) all = all && line.find(part) != std::string::npos;
      if (all) return true;
    }
    return false;
  };
  EXPECT_TRUE(has({R"("type":"admin")", R"("id":"adm")", R"("action":"logging.update")", R"("outcome":"success")",
                   R"("address":"127.0.0.1:)"}));
  EXPECT_TRUE(has({R"("type":"model_control")", R"("id":"ctl")", R"("action":"model.load")", R"("model":"alpha")",
                   R"("outcome":"success")"}));
  EXPECT_TRUE(has({R"("type":"access_denied")", R"("id":"inf")", R"("model":"beta")", R"("outcome":"refused")"}));
  EXPECT_TRUE(has({R"("type":"credential_refused")", R"("kind":"anonymous")", R"("outcome":"refused")"}));
  // gRPC model control is recorded too (the matrix loaded alpha over gRPC
  // when it ran first; do one here so the order does not matter).
  auto stub = inference::GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port()));
  auto context = Context();
  AddMetadata(context.get(), Cred::kModelControl);
  inference::RepositoryModelLoadRequest q;
  q.set_model_name("alpha");
  inference::RepositoryModelLoadResponse r;
  ASSERT_TRUE(stub->RepositoryModelLoad(context.get(), q, &r).ok());
  EXPECT_NE(ReadAll(audit_path_).find(R"("action":"model.load","model":"alpha","outcome":"success")"),
            std::string::npos);
  // Never a secret in the audit log.
  for (Cred cred : {Cred::kInfer, Cred::kModelControl, Cred::kAdmin, Cred::kWrongKey}) {
    EXPECT_EQ(ReadAll(audit_path_).find(keys_[static_cast<int>(cred)]), std::string::npos);
  }
  // Every line is JSON with a sequence number.
  for (const auto& line : lines) {
    auto doc = Json(line);
    ASSERT_TRUE(doc.IsObject()) << line;
    EXPECT_TRUE(doc.HasMember("seq")) << line;
  }
}

// The client library and ortserve-cli send the credential they are given.
TEST_F(AuthTest, ClientLibraryAndCliSendCredentials) {
  for (client::Protocol protocol : {client::Protocol::kHttp, client::Protocol::kGrpc}) {
    SCOPED_TRACE(std::string(client::ProtocolName(protocol)));
    client::ClientOptions options;
    options.protocol = protocol;
    options.port = protocol == client::Protocol::kHttp ? server_->http_port() : server_->grpc_port();
    auto anonymous = client::Client::Create(options);
    ASSERT_TRUE(anonymous.ok());
    EXPECT_EQ((*anonymous)->GetModelMetadata("alpha").status().code(), absl::StatusCode::kUnauthenticated);
    options.api_key = keys_[static_cast<int>(Cred::kInfer)];
    auto with_key = client::Client::Create(options);
    ASSERT_TRUE(with_key.ok());
    EXPECT_TRUE((*with_key)->GetModelMetadata("alpha").ok());
    EXPECT_EQ((*with_key)->RepositoryIndex().status().code(), absl::StatusCode::kPermissionDenied);
    options.api_key.clear();
    options.bearer_token = jwt_infer_;
    auto with_jwt = client::Client::Create(options);
    ASSERT_TRUE(with_jwt.ok());
    EXPECT_TRUE((*with_jwt)->GetModelMetadata("alpha").ok());
  }
  const std::string cli = BinaryDir() + "/tools/cli/ortserve-cli --url 127.0.0.1:" +
                          std::to_string(server_->http_port()) + " metadata alpha >/dev/null 2>&1";
  EXPECT_NE(RunCommand(cli).status, 0);
  EXPECT_EQ(RunCommand("ORTSERVE_API_KEY='" + keys_[static_cast<int>(Cred::kInfer)] + "' " + cli).status, 0);
  EXPECT_EQ(RunCommand(BinaryDir() + "/tools/cli/ortserve-cli --url 127.0.0.1:" +
                       std::to_string(server_->grpc_port()) + " --protocol grpc --bearer-token '" + jwt_infer_ +
                       "' metadata alpha >/dev/null 2>&1")
                .status,
            0);
}

// Authentication off (no credential source): every route as before, a
// bogus Authorization header ignored.
TEST(AuthOffTest, BehavesAsBefore) {
  TempDir dir;
  ASSERT_TRUE(WriteAddModels({{dir.path() + "/models/alpha/1/model.onnx", 1.0f}}).ok());
  // The harness binds HTTP and gRPC to 127.0.0.1; metrics bind 0.0.0.0,
  // which is said loudly.
  auto server = ServerProcess::Start(
      {"--model-repository", dir.path() + "/models", "--grpc-port", "0", "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_NE((*server)->Output().find("NO AUTHENTICATION"), std::string::npos);
  EXPECT_NE((*server)->Output().find("metrics on 0.0.0.0"), std::string::npos);
  EXPECT_EQ((*server)->Output().find("HTTP on"), std::string::npos);  // Loopback: nothing to say.
  HttpClient client((*server)->http_port());
  EXPECT_EQ(client.Get("/v2/models/alpha").status, 200u);
  EXPECT_EQ(client.Request("GET", "/v2/models/alpha", "", {{"Authorization", "Bearer nonsense"}}).status, 200u);
  EXPECT_EQ(client.Post("/v2/models/alpha/infer", kInferBody).status, 200u);
  EXPECT_EQ(client.Post("/v2/logging", "{}").status, 200u);
  auto stub = inference::GRPCInferenceService::NewStub(GrpcChannel((*server)->grpc_port()));
  auto context = Context();
  context->AddMetadata("authorization", "Bearer nonsense");
  inference::ServerMetadataResponse r;
  EXPECT_TRUE(stub->ServerMetadata(context.get(), {}, &r).ok());
}

// HTTPS and gRPC over TLS, with optional client certificates granted scopes
// (mTLS), checked with curl and the gRPC client; then the certificate is
// rotated while requests keep coming, and none fails.
TEST(TlsTest, HttpsAndGrpcTlsWithClientCertificatesAndReloadUnderLoad) {
  TempDir dir;
  ASSERT_TRUE(WriteAddModels({{dir.path() + "/models/alpha/1/model.onnx", 1.0f}}).ok());
  TestCa ca("ortserve test CA");
  const KeyAndCert server_cert = ca.Issue({.common_name = "localhost", .serial = 11, .server = true});
  const KeyAndCert client_cert = ca.Issue({.common_name = "ingest", .serial = 12, .server = false});
  const std::string ca_path = dir.path() + "/ca.pem", cert_path = dir.path() + "/cert.pem",
                    key_path = dir.path() + "/key.pem";
  WriteFile(ca_path, ca.cert_pem());
  WriteFile(cert_path, server_cert.cert_pem);
  WriteFile(key_path, server_cert.key_pem);
  WriteFile(dir.path() + "/client.pem", client_cert.cert_pem);
  WriteFile(dir.path() + "/client.key", client_cert.key_pem);
  auto server = ServerProcess::Start({"--model-repository", dir.path() + "/models", "--grpc-port", "0",
                                      "--tls-cert-file", cert_path, "--tls-key-file", key_path,
                                      "--tls-client-ca-file", ca_path, "--tls-client-cert", "optional",
                                      "--mtls-grant", "CN=ingest,O=ortserve-test|infer|alpha", "--tls-reload-seconds", "0.2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string base = "https://127.0.0.1:" + std::to_string((*server)->http_port());
  const std::string curl = "curl -s -o /dev/null -w '%{http_code}' --cacert " + ca_path + " ";
  const std::string mtls = "--cert " + dir.path() + "/client.pem --key " + dir.path() + "/client.key ";
  // Health is open; the model needs a credential: the client certificate.
  EXPECT_EQ(RunCommand(curl + base + "/v2/health/live").out, "200");
  EXPECT_EQ(RunCommand(curl + base + "/v2/models/alpha").out, "401");
  EXPECT_EQ(RunCommand(curl + mtls + base + "/v2/models/alpha").out, "200");
  EXPECT_EQ(RunCommand(curl + mtls + "-X POST -d '{}' " + base + "/v2/logging").out, "403");
  // Without the CA the server is not trusted; plain HTTP is not spoken.
  EXPECT_NE(RunCommand("curl -s -o /dev/null -w '%{http_code}' " + base + "/v2/health/live").out, "200");
  EXPECT_NE(RunCommand("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" +
                       std::to_string((*server)->http_port()) + "/v2/health/live")
                .out,
            "200");

  // gRPC over TLS: the server verified by the CA; the client certificate
  // grants infer on alpha.
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.cert_pem();
  auto anonymous = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("localhost:" + std::to_string((*server)->grpc_port()), grpc::SslCredentials(ssl)));
  ssl.pem_cert_chain = client_cert.cert_pem;
  ssl.pem_private_key = client_cert.key_pem;
  auto with_cert = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("localhost:" + std::to_string((*server)->grpc_port()), grpc::SslCredentials(ssl)));
  {
    auto context = Context();
    inference::ServerLiveResponse live;
    EXPECT_TRUE(anonymous->ServerLive(context.get(), {}, &live).ok());
    context = Context();
    inference::ModelMetadataRequest q;
    q.set_name("alpha");
    inference::ModelMetadataResponse r;
    EXPECT_EQ(anonymous->ModelMetadata(context.get(), q, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    context = Context();
    const grpc::Status ok = with_cert->ModelMetadata(context.get(), q, &r);
    EXPECT_TRUE(ok.ok()) << ok.error_message();
    context = Context();
    inference::RepositoryIndexResponse index;
    EXPECT_EQ(with_cert->RepositoryIndex(context.get(), {}, &index).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // The client library over TLS, both protocols, with the client certificate.
  for (client::Protocol protocol : {client::Protocol::kHttp, client::Protocol::kGrpc}) {
    SCOPED_TRACE(std::string(client::ProtocolName(protocol)));
    client::ClientOptions options;
    options.protocol = protocol;
    options.address = "localhost";
    options.port = protocol == client::Protocol::kHttp ? (*server)->http_port() : (*server)->grpc_port();
    options.tls_ca_file = ca_path;
    auto no_cert = client::Client::Create(options);
    ASSERT_TRUE(no_cert.ok()) << no_cert.status();
    EXPECT_TRUE((*no_cert)->ServerLive().ok());
    EXPECT_EQ((*no_cert)->GetModelMetadata("alpha").status().code(), absl::StatusCode::kUnauthenticated);
    options.tls_cert_file = dir.path() + "/client.pem";
    options.tls_key_file = dir.path() + "/client.key";
    auto mtls_client = client::Client::Create(options);
    ASSERT_TRUE(mtls_client.ok()) << mtls_client.status();
    auto metadata = (*mtls_client)->GetModelMetadata("alpha");
    EXPECT_TRUE(metadata.ok()) << metadata.status();
    // A CA that did not sign the server's certificate: no connection.
    TestCa other("another CA");
    WriteFile(dir.path() + "/other-ca.pem", other.cert_pem());
    options.tls_ca_file = dir.path() + "/other-ca.pem";
    auto untrusting = client::Client::Create(options);
    ASSERT_TRUE(untrusting.ok());
    EXPECT_FALSE((*untrusting)->ServerLive().ok());
  }
  EXPECT_EQ(RunCommand(BinaryDir() + "/tools/cli/ortserve-cli --url localhost:" +
                       std::to_string((*server)->http_port()) + " --tls-ca-file " + ca_path + " --tls-cert-file " +
                       dir.path() + "/client.pem --tls-key-file " + dir.path() +
                       "/client.key metadata alpha >/dev/null 2>&1")
                .status,
            0);

  // The insecure channel gets nowhere.
  {
    auto context = Context(std::chrono::seconds(3));
    inference::ServerLiveResponse live;
    EXPECT_FALSE(inference::GRPCInferenceService::NewStub(GrpcChannel((*server)->grpc_port()))
                     ->ServerLive(context.get(), {}, &live)
                     .ok());
  }

  // Rotation under load: requests keep coming over new connections while
  // the certificate and key are replaced (in two steps, key first: a moment
  // when they do not match); none may fail, and the new serial is served.
  auto serial = [&] {
    return RunCommand("openssl s_client -connect 127.0.0.1:" + std::to_string((*server)->http_port()) +
                      " -CAfile " + ca_path + " </dev/null 2>/dev/null | openssl x509 -noout -serial")
        .out;
  };
  EXPECT_NE(serial().find("serial=0B"), std::string::npos) << serial();
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 3; ++t) {
    load.emplace_back([&] {
      while (!stop.load()) {
        const std::string code = RunCommand(curl + base + "/v2/health/ready").out;
        ++sent;
        if (code != "200") ++failed;
      }
    });
  }
  const KeyAndCert renewed = ca.Issue({.common_name = "localhost", .serial = 13, .server = true});
  WaitUntil([&] { return sent.load() >= 10; }, 30);
  ReplaceFile(key_path, renewed.key_pem);
  WaitUntil([&] { return sent.load() >= 20; }, 30);
  ReplaceFile(cert_path, renewed.cert_pem);
  EXPECT_TRUE(WaitUntil([&] { return serial().find("serial=0D") != std::string::npos; }, 30)) << serial();
  const int before = sent.load();
  WaitUntil([&] { return sent.load() >= before + 10; }, 30);
  stop = true;
  for (auto& thread : load) thread.join();
  EXPECT_GE(sent.load(), 30);
  EXPECT_EQ(failed.load(), 0) << "of " << sent.load();
  // gRPC picks up the new certificate too (a new channel sees it).
  auto renewed_stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("localhost:" + std::to_string((*server)->grpc_port()), grpc::SslCredentials(ssl)));
  auto context = Context();
  inference::ServerLiveResponse live;
  EXPECT_TRUE(renewed_stub->ServerLive(context.get(), {}, &live).ok());
}

}  // namespace
}  // namespace ortserve::testing

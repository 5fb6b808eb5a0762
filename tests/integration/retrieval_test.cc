// SPDX-License-Identifier: Apache-2.0
// /v1/collections through the real server (docs/retrieval.md): text embedded
// by the bundled text_embedding model, filters, bounds, restarts, tenants
// under API keys, and kill -9 in the middle of acknowledged writes.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "admission/api_keys.h"
#include "integration/server_harness.h"
#include "proto/collections.grpc.pb.h"

namespace ortserve::testing {
namespace {

std::vector<std::string> Args(const std::string& dir, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--model-repository", SourceDir() + "/models", "--tokenizer-threads", "1",
                                   "--collections-dir", dir};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// The first `n` report texts of the SAE corpus.
std::vector<std::string> CorpusTexts(size_t n) {
  std::ifstream in(SourceDir() + "/data/sae/corpus.jsonl");
  std::vector<std::string> texts;
  std::string line;
  while (texts.size() < n && std::getline(in, line)) {
    rapidjson::Document doc = Json(line);
    if (doc.IsObject() && doc.HasMember("text") && doc["text"].IsString()) texts.emplace_back(doc["text"].GetString());
  }
  return texts;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A deterministic 8-value vector for document number i.
std::vector<float> VectorFor(int i) {
  std::vector<float> v(8);
  for (int d = 0; d < 8; ++d) v[d] = static_cast<float>(((i * 31 + d * 17) % 97) - 48) / 8.0f;
  return v;
}

std::string VectorJson(const std::vector<float>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out + "]";
}

TEST(RetrievalTest, FindsEarlierReportsLikeThisOneWithFilters) {
  TempDir dir;
  auto server = ServerProcess::Start(Args(dir.path() + "/collections"));
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  auto created = http.Request("PUT", "/v1/collections/reports",
                              R"({"model":"text_embedding","dimension":64,"metric":"cosine"})", {});
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(http.Request("PUT", "/v1/collections/reports", R"({"model":"text_embedding","dimension":64})", {}).status,
            200u);
  EXPECT_EQ(http.Request("PUT", "/v1/collections/reports", R"({"model":"text_embedding","dimension":32})", {}).status,
            409u);
  const auto texts = CorpusTexts(40);
  ASSERT_EQ(texts.size(), 40u);
  std::string body = R"({"documents":[)";
  for (size_t i = 0; i < texts.size(); ++i) {
    body += (i ? "," : "") + std::string(R"({"id":"r)") + std::to_string(i) + R"(","text":)" + JsonString(texts[i]) +
            R"(,"metadata":{"n":)" + std::to_string(i) + R"(,"half":")" + (i < 20 ? "first" : "second") + "\"}}";
  }
  body += "]}";
  auto upserted = http.Post("/v1/collections/reports/documents", body);
  ASSERT_EQ(upserted.status, 200u) << upserted.body;
  // A report's own text finds itself first (identical embedding).
  for (int i : {3, 27}) {
    auto found = http.Post("/v1/collections/reports/query",
                           R"({"text":)" + JsonString(texts[i]) + R"(,"top_k":3})");
    ASSERT_EQ(found.status, 200u) << found.body;
    auto json = Json(found.body);
    ASSERT_EQ(json["results"].Size(), 3u);
    EXPECT_EQ(std::string(json["results"][0]["id"].GetString()), "r" + std::to_string(i));
    EXPECT_NEAR(json["results"][0]["score"].GetDouble(), 1.0, 1e-4);
    EXPECT_EQ(json["results"][0]["metadata"]["n"].GetInt(), i);
  }
  // Filters: equality and a numeric range.
  auto filtered = http.Post("/v1/collections/reports/query",
                            R"({"text":)" + JsonString(texts[3]) +
                                R"(,"top_k":40,"filter":{"half":"second","n":{"$gte":25,"$lt":30}}})");
  ASSERT_EQ(filtered.status, 200u) << filtered.body;
  auto json = Json(filtered.body);
  ASSERT_EQ(json["results"].Size(), 5u);
  for (const auto& hit : json["results"].GetArray()) {
    EXPECT_GE(hit["metadata"]["n"].GetInt(), 25);
    EXPECT_LT(hit["metadata"]["n"].GetInt(), 30);
  }
  auto stats = Json(http.Get("/v1/collections/reports").body);
  EXPECT_EQ(stats["documents"].GetInt(), 40);
  EXPECT_EQ(std::string(stats["model"].GetString()), "text_embedding");
  // Delete by id; then the document is gone from queries.
  EXPECT_EQ(http.Request("DELETE", "/v1/collections/reports/documents/r3", "", {}).status, 200u);
  EXPECT_EQ(http.Request("DELETE", "/v1/collections/reports/documents/r3", "", {}).status, 404u);
  auto after = Json(http.Post("/v1/collections/reports/query", R"({"text":)" + JsonString(texts[3]) + "}").body);
  for (const auto& hit : after["results"].GetArray()) EXPECT_NE(std::string(hit["id"].GetString()), "r3");
  // The server logs no document text.
  EXPECT_EQ((*server)->Output().find(texts[27]), std::string::npos);
}

TEST(RetrievalTest, RefusesHostileInputWithClearErrors) {
  TempDir dir;
  auto server = ServerProcess::Start(Args(dir.path() + "/collections"));
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  ASSERT_EQ(http.Request("PUT", "/v1/collections/v", R"({"dimension":8,"metric":"l2","max_bytes":65536})", {}).status,
            201u);
  auto expect = [&](const std::string& method, const std::string& target, const std::string& body, unsigned status) {
    auto r = http.Request(method, target, body, {});
    EXPECT_EQ(r.status, status) << method << " " << target << " " << body.substr(0, 100) << " -> " << r.body;
    if (status >= 400) {
      EXPECT_NE(r.body.find("\"error\""), std::string::npos);
    }
  };
  expect("PUT", "/v1/collections/%2E%2E", R"({"dimension":8})", 400);
  expect("PUT", "/v1/collections/x", R"({"dimension":0})", 400);
  expect("PUT", "/v1/collections/x", R"({"dimension":100000})", 400);
  expect("PUT", "/v1/collections/x", R"({"dimension":8,"metric":"hamming"})", 400);
  expect("PUT", "/v1/collections/x", R"({"dimension":8,"max_bytes":1099511627776000})", 400);
  expect("PUT", "/v1/collections/x", "{not json", 400);
  expect("POST", "/v1/collections/none/documents", R"({"documents":[{"id":"a","vector":[1]}]})", 404);
  expect("POST", "/v1/collections/v/documents", R"({"documents":[]})", 400);
  expect("POST", "/v1/collections/v/documents", R"({"documents":[{"id":"a","vector":[1,2]}]})", 400);
  expect("POST", "/v1/collections/v/documents", R"({"documents":[{"id":"a","vector":[1,2,3,4,5,6,7,1e300]}]})", 400);
  expect("POST", "/v1/collections/v/documents", R"({"documents":[{"id":"a","vector":[1,2,3,4,5,6,7,"8"]}]})", 400);
  expect("POST", "/v1/collections/v/documents", R"({"documents":[{"id":"a","text":"no model here"}]})", 400);
  expect("POST", "/v1/collections/v/documents",
         R"({"documents":[{"id":"a","vector":[1,2,3,4,5,6,7,8],"metadata":[1]}]})", 400);
  std::string many = R"({"documents":[)";
  for (int i = 0; i < 257; ++i) many += (i ? "," : "") + std::string(R"({"id":"a","vector":[1,2,3,4,5,6,7,8]})");
  expect("POST", "/v1/collections/v/documents", many + "]}", 400);
  expect("POST", "/v1/collections/v/query", R"({"vector":[1,2,3,4,5,6,7,8],"top_k":0})", 400);
  expect("POST", "/v1/collections/v/query", R"({"vector":[1,2,3,4,5,6,7,8],"top_k":1001})", 400);
  expect("POST", "/v1/collections/v/query", R"({"vector":[1,2,3,4,5,6,7,8],"filter":{"n":{"$where":1}}})", 400);
  expect("POST", "/v1/collections/v/query", R"({"top_k":1})", 400);
  // Full: 507 with the bound named, and nothing of the refused batch kept.
  int written = 0;
  HttpResponse last;
  for (; written < 1000; ++written) {
    last = http.Post("/v1/collections/v/documents", R"({"documents":[{"id":"d)" + std::to_string(written) +
                                                        R"(","vector":)" + VectorJson(VectorFor(written)) + "}]}");
    if (last.status != 200) break;
  }
  EXPECT_EQ(last.status, 507u) << last.body;
  EXPECT_NE(last.body.find("max_bytes"), std::string::npos);
  EXPECT_EQ(Json(http.Get("/v1/collections/v").body)["documents"].GetInt(), written);
  expect("DELETE", "/v1/collections/v", "", 200);
  expect("GET", "/v1/collections/v", "", 404);
}

TEST(RetrievalTest, CollectionsAreOffWithoutTheFlag) {
  auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--tokenizer-threads", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  auto r = http.Request("PUT", "/v1/collections/x", R"({"dimension":8})", {});
  EXPECT_EQ(r.status, 404u);
  EXPECT_NE(r.body.find("--collections-dir"), std::string::npos);
}

TEST(RetrievalTest, KeysSeeOnlyTheirTenantsCollections) {
  TempDir dir;
  std::map<std::string, std::string> keys;
  std::string key_file;
  for (const auto& [id, tenant] : std::vector<std::pair<std::string, std::string>>{
           {"acme-1", "acme"}, {"acme-2", "acme"}, {"globex", "globex"}, {"loner", ""}}) {
    admission::ApiKeySpec spec;
    spec.id = id;
    spec.tenant = tenant;
    spec.scopes.Add(admission::Scope::kInfer);
    auto key = admission::GenerateApiKey(spec);
    ASSERT_TRUE(key.ok());
    key_file += key->line + "\n";
    keys[id] = key->key;
  }
  admission::ApiKeySpec limited;
  limited.id = "limited";
  limited.tenant = "acme";
  limited.scopes.Add(admission::Scope::kInfer);
  limited.models = *admission::ModelAllowList::Only({"sae_classifier"});
  auto limited_key = admission::GenerateApiKey(limited);
  key_file += limited_key->line + "\n";
  std::ofstream(dir.path() + "/keys") << key_file;
  auto server = ServerProcess::Start(Args(dir.path() + "/collections", {"--api-keys-file", dir.path() + "/keys"}));
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  auto as = [&](const std::string& key) { return std::map<std::string, std::string>{{"X-API-Key", key}}; };
  const std::string doc = R"({"documents":[{"id":"secret","vector":[1,2,3,4,5,6,7,8]}]})";
  EXPECT_EQ(http.Request("PUT", "/v1/collections/c", R"({"dimension":8})", {}).status, 401u);
  ASSERT_EQ(http.Request("PUT", "/v1/collections/c", R"({"dimension":8})", as(keys["acme-1"])).status, 201u);
  ASSERT_EQ(http.Request("POST", "/v1/collections/c/documents", doc, as(keys["acme-1"])).status, 200u);
  // The same tenant's other key sees it; another tenant's and a tenantless key do not.
  EXPECT_EQ(http.Request("GET", "/v1/collections/c/documents/secret", "", as(keys["acme-2"])).status, 200u);
  EXPECT_EQ(http.Request("GET", "/v1/collections/c/documents/secret", "", as(keys["globex"])).status, 404u);
  EXPECT_EQ(http.Request("GET", "/v1/collections/c", "", as(keys["loner"])).status, 404u);
  EXPECT_EQ(http.Request("POST", "/v1/collections/c/query", R"({"vector":[1,2,3,4,5,6,7,8]})", as(keys["globex"])).status,
            404u);
  EXPECT_EQ(http.Request("DELETE", "/v1/collections/c", "", as(keys["globex"])).status, 404u);
  EXPECT_EQ(Json(http.Request("GET", "/v1/collections", "", as(keys["globex"])).body)["collections"].Size(), 0u);
  // globex may have its own "c".
  ASSERT_EQ(http.Request("PUT", "/v1/collections/c", R"({"dimension":4})", as(keys["globex"])).status, 201u);
  EXPECT_EQ(Json(http.Request("GET", "/v1/collections/c", "", as(keys["acme-1"])).body)["dimension"].GetInt(), 8);
  // A key limited to other models may not create a collection over text_embedding.
  EXPECT_EQ(http.Request("PUT", "/v1/collections/t", R"({"model":"text_embedding","dimension":64})",
                         as(limited_key->key))
                .status,
            403u);
}

// Writers send upserts and record each acknowledged one; the server is
// SIGKILLed mid-stream (snapshots are frequent, so the kill may land in one),
// restarted on the same directory, and every acknowledged document must be
// there with its vector and metadata; nothing that was never sent may be.
TEST(RetrievalTest, KillNineKeepsEveryAcknowledgedWrite) {
  TempDir dir;
  const std::vector<std::string> args = Args(dir.path() + "/collections", {"--collections-snapshot-bytes", "65536"});
  auto server = ServerProcess::Start(args);
  ASSERT_TRUE(server.ok()) << server.status();
  {
    HttpClient http((*server)->http_port());
    ASSERT_EQ(http.Request("PUT", "/v1/collections/k", R"({"dimension":8,"metric":"l2","exact_threshold":200})", {})
                  .status,
              201u);
  }
  constexpr int kWriters = 3;
  std::mutex mu;
  std::set<int> acknowledged;
  std::atomic<int> acks{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient http((*server)->http_port());
      for (int i = w; !stop.load(); i += kWriters) {
        // Each request: two documents, one of them updated later by its successor.
        const std::string body = R"({"documents":[{"id":"d)" + std::to_string(i) + R"(","vector":)" +
                                 VectorJson(VectorFor(i)) + R"(,"metadata":{"i":)" + std::to_string(i) +
                                 R"(}},{"id":"e)" + std::to_string(i) + R"(","vector":)" + VectorJson(VectorFor(-i)) +
                                 "}]}";
        auto r = http.Post("/v1/collections/k/documents", body);
        if (r.status != 200) break;  // The server is gone.
        std::lock_guard lock(mu);
        acknowledged.insert(i);
        acks.fetch_add(1);
      }
    });
  }
  ASSERT_TRUE(WaitUntil([&] { return acks.load() >= 600; }, 60));
  EXPECT_EQ((*server)->Stop(SIGKILL), 128 + SIGKILL);
  stop = true;
  for (auto& t : writers) t.join();
  server->reset();

  auto restarted = ServerProcess::Start(args);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  HttpClient http((*restarted)->http_port());
  for (int i : acknowledged) {
    auto r = http.Get("/v1/collections/k/documents/d" + std::to_string(i));
    ASSERT_EQ(r.status, 200u) << "acknowledged d" << i << " lost: " << r.body;
    auto doc = Json(r.body);
    const auto want = VectorFor(i);
    ASSERT_EQ(doc["vector"].Size(), want.size());
    for (size_t d = 0; d < want.size(); ++d) EXPECT_NEAR(doc["vector"][d].GetDouble(), want[d], 1e-5);
    EXPECT_EQ(doc["metadata"]["i"].GetInt(), i);
    EXPECT_EQ(http.Get("/v1/collections/k/documents/e" + std::to_string(i)).status, 200u);
  }
  // No phantom writes: at most the acknowledged ones plus one request in flight per writer.
  const int documents = Json(http.Get("/v1/collections/k").body)["documents"].GetInt();
  EXPECT_GE(documents, static_cast<int>(2 * acknowledged.size()));
  EXPECT_LE(documents, static_cast<int>(2 * (acknowledged.size() + kWriters)));
  // It still takes writes, and queries find them.
  ASSERT_EQ(http.Post("/v1/collections/k/documents",
                      R"({"documents":[{"id":"after","vector":[9,9,9,9,9,9,9,9]}]})")
                .status,
            200u);
  auto found = Json(http.Post("/v1/collections/k/query", R"({"vector":[9,9,9,9,9,9,9,9],"top_k":1})").body);
  EXPECT_EQ(std::string(found["results"][0]["id"].GetString()), "after");
}

TEST(RetrievalTest, RestartKeepsCollectionsAndDropsStayDropped) {
  TempDir dir;
  const auto args = Args(dir.path() + "/collections");
  {
    auto server = ServerProcess::Start(args);
    ASSERT_TRUE(server.ok()) << server.status();
    HttpClient http((*server)->http_port());
    ASSERT_EQ(http.Request("PUT", "/v1/collections/keep", R"({"dimension":8})", {}).status, 201u);
    ASSERT_EQ(http.Request("PUT", "/v1/collections/drop", R"({"dimension":8})", {}).status, 201u);
    ASSERT_EQ(http.Post("/v1/collections/keep/documents", R"({"documents":[{"id":"a","vector":)" +
                                                               VectorJson(VectorFor(1)) + "}]}")
                  .status,
              200u);
    ASSERT_EQ(http.Request("DELETE", "/v1/collections/drop", "", {}).status, 200u);
  }
  auto server = ServerProcess::Start(args);
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  EXPECT_EQ(http.Get("/v1/collections/keep/documents/a").status, 200u);
  EXPECT_EQ(http.Get("/v1/collections/drop").status, 404u);
}

TEST(RetrievalTest, GrpcServesTheSameCollectionsAsRest) {
  TempDir dir;
  auto server = ServerProcess::Start(Args(dir.path() + "/collections", {"--grpc-port", "0"}));
  ASSERT_TRUE(server.ok()) << server.status();
  namespace v1 = ::ortserve::retrieval::v1;
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Collections::NewStub(channel);
  auto call = [](auto method) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return method(&context);
  };
  v1::CreateCollectionRequest create;
  create.set_name("g");
  create.mutable_spec()->set_model("text_embedding");
  create.mutable_spec()->set_dimension(64);
  v1::CollectionInfo info;
  grpc::Status status = call([&](grpc::ClientContext* c) { return stub->CreateCollection(c, create, &info); });
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(info.created());
  EXPECT_EQ(info.spec().metric(), "cosine");
  v1::UpsertRequest upsert;
  upsert.set_collection("g");
  const auto texts = CorpusTexts(20);
  for (size_t i = 0; i < texts.size(); ++i) {
    v1::Document* doc = upsert.add_documents();
    doc->set_id("g" + std::to_string(i));
    doc->set_text(texts[i]);
    doc->set_metadata_json(R"({"n":)" + std::to_string(i) + "}");
  }
  v1::UpsertResponse upserted;
  status = call([&](grpc::ClientContext* c) { return stub->Upsert(c, upsert, &upserted); });
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(upserted.upserted(), 20u);
  // The same query over gRPC and REST: the same answer.
  v1::QueryRequest query;
  query.set_collection("g");
  query.set_text(texts[5]);
  query.set_top_k(5);
  query.set_filter_json(R"({"n":{"$lt":15}})");
  v1::QueryResponse found;
  status = call([&](grpc::ClientContext* c) { return stub->Query(c, query, &found); });
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(found.results_size(), 5);
  EXPECT_EQ(found.results(0).id(), "g5");
  HttpClient http((*server)->http_port());
  auto rest = Json(http.Post("/v1/collections/g/query", R"({"text":)" + JsonString(texts[5]) +
                                                             R"(,"top_k":5,"filter":{"n":{"$lt":15}}})")
                       .body);
  ASSERT_EQ(rest["results"].Size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(found.results(i).id(), rest["results"][i]["id"].GetString());
  // Errors carry the status codes REST maps to 400 / 404.
  v1::CollectionRequest missing;
  missing.set_name("nope");
  status = call([&](grpc::ClientContext* c) { return stub->GetCollection(c, missing, &info); });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::QueryRequest bad = query;
  bad.mutable_vector()->add_values(1);
  status = call([&](grpc::ClientContext* c) { return stub->Query(c, bad, &found); });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::DocumentRequest get;
  get.set_collection("g");
  get.set_id("g3");
  v1::Document doc;
  status = call([&](grpc::ClientContext* c) { return stub->GetDocument(c, get, &doc); });
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(doc.vector().values_size(), 64);
  EXPECT_EQ(doc.metadata_json(), R"({"n":3})");
}

}  // namespace
}  // namespace ortserve::testing

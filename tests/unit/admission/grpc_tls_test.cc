// SPDX-License-Identifier: Apache-2.0
// A real gRPC server (KServe's ServerLive, implemented here) over TLS from
// GrpcTlsCredentials, called by gRPC clients with and without a client
// certificate.
#include "admission/grpc_tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "fakes/fake_clock.h"
#include "proto/grpc_service.grpc.pb.h"
#include "unit/admission/test_support.h"

namespace ortserve::admission {
namespace {

using ::ortserve::admission::testing::KeyAndCert;
using ::ortserve::admission::testing::ReplaceFile;
using ::ortserve::admission::testing::ScopedTempDir;
using ::ortserve::admission::testing::SerialOfPem;
using ::ortserve::admission::testing::TestCa;
using ::testing::HasSubstr;

// ServerLive answers live=true and remembers the caller's verified subject.
class LiveService final : public inference::GRPCInferenceService::Service {
 public:
  grpc::Status ServerLive(grpc::ServerContext* context, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* response) override {
    absl::MutexLock lock(&mu_);
    last_subject_ = GrpcVerifiedClientSubject(*context->auth_context());
    response->set_live(true);
    return grpc::Status::OK;
  }
  std::string last_subject() {
    absl::MutexLock lock(&mu_);
    return last_subject_;
  }

 private:
  absl::Mutex mu_;
  std::string last_subject_ ABSL_GUARDED_BY(mu_);
};

struct CallResult {
  grpc::Status status;
  bool live = false;
  std::string server_serial;  // From the certificate the client saw.
};

class GrpcTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_path_ = dir_.File("server.crt");
    key_path_ = dir_.File("server.key");
    ca_path_ = dir_.File("clients-ca.crt");
    Install(ca_.Issue({.common_name = "grpc-one", .serial = 0x101}));
    ReplaceFile(ca_path_, client_ca_.cert_pem());
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
    tls_.reset();  // After the server.
  }

  void Install(const KeyAndCert& kc) {
    // Key first, then certificate, each replaced atomically; gRPC's watcher
    // reads both at each refresh.
    ReplaceFile(key_path_, kc.key_pem);
    ReplaceFile(cert_path_, kc.cert_pem);
  }

  void Start(ClientCertMode mode) {
    TlsFiles files{.cert_chain_path = cert_path_, .private_key_path = key_path_, .client_cert = mode};
    if (mode != ClientCertMode::kNone) files.client_ca_path = ca_path_;
    auto tls = GrpcTlsCredentials::Create({.files = files,
                                           .grpc_refresh_seconds = 1,
                                           .poll_in_background = false,
                                           .clock = &clock_,
                                           .on_reload = [this](const absl::Status& s) { reloads_.push_back(s); }});
    ASSERT_TRUE(tls.ok()) << tls.status();
    tls_ = *std::move(tls);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", tls_->server_credentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  CallResult Call(const std::optional<KeyAndCert>& client_cert = std::nullopt) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_.cert_pem();
    if (client_cert) {
      ssl.pem_private_key = client_cert->key_pem;
      ssl.pem_cert_chain = client_cert->cert_pem;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    // A fresh connection (and handshake) for every call.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), grpc::SslCredentials(ssl), args);
    auto stub = inference::GRPCInferenceService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    inference::ServerLiveRequest request;
    inference::ServerLiveResponse response;
    CallResult result;
    result.status = stub->ServerLive(&context, request, &response);
    result.live = response.live();
    if (auto auth = context.auth_context()) {
      for (const auto& pem : auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
        result.server_serial = SerialOfPem(std::string_view(pem.data(), pem.size()));
      }
    }
    return result;
  }

  ScopedTempDir dir_;
  TestCa ca_{"ortserve test server CA"};
  TestCa client_ca_{"ortserve test client CA"};
  std::string cert_path_, key_path_, ca_path_;
  ortserve::testing::FakeClock clock_{absl::Now()};
  LiveService service_;
  std::vector<absl::Status> reloads_;
  std::unique_ptr<GrpcTlsCredentials> tls_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(GrpcTlsTest, ServesOverTlsAndTheClientSeesTheCertificate) {
  Start(ClientCertMode::kNone);
  const CallResult r = Call();
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_TRUE(r.live);
  EXPECT_EQ(r.server_serial, "0101");
  EXPECT_EQ(service_.last_subject(), "");
}

TEST_F(GrpcTlsTest, MutualTlsPassesTheVerifiedSubjectToTheService) {
  Start(ClientCertMode::kRequire);
  const CallResult r = Call(client_ca_.Issue({.common_name = "ingest", .serial = 5, .server = false}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(service_.last_subject(), "CN=ingest,O=ortserve-test");
}

TEST_F(GrpcTlsTest, MutualTlsRefusesAClientWithoutCertificateOrFromAnotherCa) {
  Start(ClientCertMode::kRequire);
  EXPECT_EQ(Call().status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Call(ca_.Issue({.common_name = "intruder", .serial = 6, .server = false})).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcTlsTest, OptionalClientCertificatesLetAClientWithoutOneIn) {
  Start(ClientCertMode::kOptional);
  ASSERT_TRUE(Call().status.ok());
  EXPECT_EQ(service_.last_subject(), "");
  ASSERT_TRUE(Call(client_ca_.Issue({.common_name = "ingest", .serial = 5, .server = false})).status.ok());
  EXPECT_EQ(service_.last_subject(), "CN=ingest,O=ortserve-test");
}

// Waits (real time: gRPC re-reads the published copy every second, with no
// hook to trigger it) until a new handshake presents `serial`; every call on
// the way must succeed.
std::string AwaitSerial(const std::function<CallResult()>& call, const std::string& serial) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string seen;
  while (std::chrono::steady_clock::now() < deadline) {
    const CallResult r = call();
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    if (!r.status.ok()) return "call failed";
    seen = r.server_serial;
    if (seen == serial) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return seen;
}

TEST_F(GrpcTlsTest, AReloadServesTheNewCertificateToNewConnections) {
  Start(ClientCertMode::kNone);
  ASSERT_EQ(Call().server_serial, "0101");
  Install(ca_.Issue({.common_name = "grpc-two", .serial = 0x202}));
  EXPECT_TRUE(tls_->CheckNow().ok());
  EXPECT_EQ(tls_->certificate().serial_hex, "0202");
  EXPECT_EQ(AwaitSerial([&] { return Call(); }, "0202"), "0202");
}

TEST_F(GrpcTlsTest, ACertificateWithoutItsKeyIsNotServedAndHandshakesGoOn) {
  Start(ClientCertMode::kNone);
  const KeyAndCert next = ca_.Issue({.common_name = "grpc-two", .serial = 0x202});
  ReplaceFile(cert_path_, next.cert_pem);  // The key is not there yet.
  EXPECT_THAT(tls_->CheckNow().message(), HasSubstr("does not match"));
  ASSERT_EQ(reloads_.size(), 1u);
  EXPECT_EQ(tls_->certificate().serial_hex, "0101");
  // Longer than gRPC's refresh: had the pair been published, handshakes
  // would fail now.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    const CallResult r = Call();
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_EQ(r.server_serial, "0101");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ReplaceFile(key_path_, next.key_pem);
  EXPECT_TRUE(tls_->CheckNow().ok());
  // From the half-done update to the new pair, no handshake failed.
  EXPECT_EQ(AwaitSerial([&] { return Call(); }, "0202"), "0202");
}

TEST_F(GrpcTlsTest, AReloadedClientCaDecidesWhichClientsGetIn) {
  Start(ClientCertMode::kRequire);
  const KeyAndCert from_new_ca = ca_.Issue({.common_name = "moved", .serial = 7, .server = false});
  EXPECT_FALSE(Call(from_new_ca).status.ok());
  ReplaceFile(ca_path_, ca_.cert_pem());  // Clients of the server CA from now on.
  EXPECT_TRUE(tls_->CheckNow().ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool in = false;
  while (!in && std::chrono::steady_clock::now() < deadline) {
    in = Call(from_new_ca).status.ok();
    if (!in) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(in);
  EXPECT_EQ(service_.last_subject(), "CN=moved,O=ortserve-test");
}

TEST_F(GrpcTlsTest, StartUpRefusesAKeyThatDoesNotMatchTheCertificate) {
  ReplaceFile(key_path_, ca_.Issue({.common_name = "other", .serial = 9}).key_pem);
  auto tls = GrpcTlsCredentials::Create(
      {.files = {.cert_chain_path = cert_path_, .private_key_path = key_path_}, .poll_in_background = false,
       .clock = &clock_});
  EXPECT_THAT(tls.status().message(), HasSubstr("does not match"));
  EXPECT_FALSE(GrpcTlsCredentials::Create({.files = {.cert_chain_path = cert_path_, .private_key_path = key_path_},
                                           .grpc_refresh_seconds = 0})
                   .ok());
}

}  // namespace
}  // namespace ortserve::admission

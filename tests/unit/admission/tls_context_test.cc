// SPDX-License-Identifier: Apache-2.0
// Real TLS handshakes over loopback between an Asio server using the
// provider's context and an Asio client, with certificates from a test CA.
#include "admission/tls_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <set>
#include <thread>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "absl/synchronization/mutex.h"
#include "fakes/fake_clock.h"
#include "unit/admission/test_support.h"

namespace ortserve::admission {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using ::ortserve::admission::testing::KeyAndCert;
using ::ortserve::admission::testing::ReplaceFile;
using ::ortserve::admission::testing::ScopedTempDir;
using ::ortserve::admission::testing::TestCa;
using ::testing::HasSubstr;

struct ClientOptions {
  std::string trusted_ca_pem{};
  std::optional<KeyAndCert> certificate{};
  // Limit the client to TLS 1.2 with these ciphers (empty: defaults, 1.3).
  std::string tls12_only_ciphers{};
  std::vector<std::string> alpn{};
};

struct HandshakeResult {
  boost::system::error_code server_error{};  // Of the server's handshake.
  boost::system::error_code client_error{};  // Of the client's handshake, or its read of the greeting.
  bool greeted = false;                    // The client read the server's "ok".
  std::string server_serial{};               // Seen by the client.
  std::string server_subject{};
  std::string client_subject{};              // Seen by the server (verified).
  std::string version{};                     // Negotiated protocol.
  std::string alpn{};
};

// One connection: the server side takes `server_context` (or the provider's
// Current() at accept, as the HTTP server will), handshakes, sends "ok".
HandshakeResult Handshake(const std::function<std::shared_ptr<ssl::context>()>& server_context,
                          const ClientOptions& options) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  HandshakeResult result;

  std::shared_ptr<ssl::context> context_for_connection;
  std::optional<ssl::stream<tcp::socket>> server;
  acceptor.async_accept([&](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      result.server_error = ec;
      return;
    }
    context_for_connection = server_context();
    server.emplace(std::move(socket), *context_for_connection);
    server->async_handshake(ssl::stream_base::server, [&](boost::system::error_code hs) {
      result.server_error = hs;
      if (hs) {
        server->next_layer().close();
        return;
      }
      result.client_subject = VerifiedClientSubject(server->native_handle());
      asio::async_write(*server, asio::buffer("ok", 2), [](boost::system::error_code, size_t) {});
    });
  });

  ssl::context client_context(ssl::context::tls_client);
  client_context.set_verify_mode(ssl::verify_peer);
  client_context.add_certificate_authority(asio::buffer(options.trusted_ca_pem));
  if (options.certificate) {
    client_context.use_certificate_chain(asio::buffer(options.certificate->cert_pem));
    client_context.use_private_key(asio::buffer(options.certificate->key_pem), ssl::context::pem);
  }
  if (!options.tls12_only_ciphers.empty()) {
    SSL_CTX_set_max_proto_version(client_context.native_handle(), TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(client_context.native_handle(), options.tls12_only_ciphers.c_str());
  }
  if (!options.alpn.empty()) {
    std::string wire;
    for (const auto& p : options.alpn) wire += static_cast<char>(p.size()) + p;
    SSL_CTX_set_alpn_protos(client_context.native_handle(), reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()));
  }
  ssl::stream<tcp::socket> client(io, client_context);
  SSL_set_tlsext_host_name(client.native_handle(), "localhost");
  SSL_set1_host(client.native_handle(), "localhost");
  char greeting[2];
  client.next_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (ec) {
      result.client_error = ec;
      return;
    }
    client.async_handshake(ssl::stream_base::client, [&](boost::system::error_code hs) {
      if (hs) {
        result.client_error = hs;
        return;
      }
      if (const X509* peer = SSL_get0_peer_certificate(client.native_handle())) {
        const CertificateInfo info = DescribeCertificate(peer);
        result.server_serial = info.serial_hex;
        result.server_subject = info.subject;
      }
      result.version = SSL_get_version(client.native_handle());
      const unsigned char* alpn = nullptr;
      unsigned int alpn_len = 0;
      SSL_get0_alpn_selected(client.native_handle(), &alpn, &alpn_len);
      result.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
      asio::async_read(client, asio::buffer(greeting), [&](boost::system::error_code read, size_t n) {
        if (read) {
          result.client_error = read;
          return;
        }
        result.greeted = n == 2 && std::string(greeting, 2) == "ok";
      });
    });
  });
  io.run_for(std::chrono::seconds(20));
  return result;
}

class TlsContextProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_path_ = dir_.File("server.crt");
    key_path_ = dir_.File("server.key");
    ca_path_ = dir_.File("clients-ca.crt");
    Install(ca_.Issue({.common_name = "server-one", .serial = 0x11}));
    ReplaceFile(ca_path_, client_ca_.cert_pem());
  }

  void Install(const KeyAndCert& kc) {
    ReplaceFile(cert_path_, kc.cert_pem);
    ReplaceFile(key_path_, kc.key_pem);
  }

  std::unique_ptr<TlsContextProvider> Make(ClientCertMode mode = ClientCertMode::kNone) {
    TlsFiles files{.cert_chain_path = cert_path_, .private_key_path = key_path_, .client_cert = mode};
    if (mode != ClientCertMode::kNone) files.client_ca_path = ca_path_;
    auto provider = TlsContextProvider::Create({.files = files,
                                                .check_interval = absl::Seconds(5),
                                                .clock = &clock_,
                                                .on_reload = [this](const absl::Status& s) { reloads_.push_back(s); }});
    EXPECT_TRUE(provider.ok()) << provider.status();
    return provider.ok() ? *std::move(provider) : nullptr;
  }

  static std::function<std::shared_ptr<ssl::context>()> From(TlsContextProvider* provider) {
    return [provider] { return provider->Current(); };
  }

  ScopedTempDir dir_;
  TestCa ca_{"ortserve test server CA"};
  TestCa client_ca_{"ortserve test client CA"};
  std::string cert_path_, key_path_, ca_path_;
  // Real time: certificate dates are checked against it (and by the client).
  ortserve::testing::FakeClock clock_{absl::Now()};
  std::vector<absl::Status> reloads_;
};

TEST_F(TlsContextProviderTest, ServesTheCertificateOverTls13) {
  auto provider = Make();
  const HandshakeResult r = Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()});
  ASSERT_FALSE(r.client_error) << r.client_error.message();
  ASSERT_FALSE(r.server_error) << r.server_error.message();
  EXPECT_TRUE(r.greeted);
  EXPECT_EQ(r.server_serial, "11");
  EXPECT_EQ(r.server_subject, "CN=server-one,O=ortserve-test");
  EXPECT_EQ(r.version, "TLSv1.3");
  EXPECT_EQ(provider->certificate().serial_hex, "11");
  EXPECT_TRUE(r.client_subject.empty());
}

TEST_F(TlsContextProviderTest, TakesTls12OnlyWithForwardSecrecyAndAead) {
  auto provider = Make();
  const HandshakeResult modern =
      Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem(), .tls12_only_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"});
  ASSERT_FALSE(modern.client_error) << modern.client_error.message();
  EXPECT_EQ(modern.version, "TLSv1.2");
  // Static key exchange (no forward secrecy), and CBC: both refused.
  for (const char* cipher : {"AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256"}) {
    const HandshakeResult old =
        Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem(), .tls12_only_ciphers = cipher});
    EXPECT_TRUE(old.client_error) << cipher;
    EXPECT_TRUE(old.server_error) << cipher;
    EXPECT_FALSE(old.greeted);
  }
}

TEST_F(TlsContextProviderTest, AnswersAlpnWithHttp11) {
  auto provider = Make();
  const HandshakeResult r =
      Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem(), .alpn = {"h2", "http/1.1"}});
  ASSERT_FALSE(r.client_error) << r.client_error.message();
  EXPECT_EQ(r.alpn, "http/1.1");
  const HandshakeResult h2_only = Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem(), .alpn = {"h2"}});
  ASSERT_FALSE(h2_only.client_error) << h2_only.client_error.message();
  EXPECT_EQ(h2_only.alpn, "");
}

TEST_F(TlsContextProviderTest, AReloadServesTheNewCertificateToNewConnectionsOnly) {
  auto provider = Make();
  const std::shared_ptr<ssl::context> before = provider->Current();  // An existing connection's context.
  Install(ca_.Issue({.common_name = "server-two", .serial = 0x22}));
  clock_.Advance(absl::Seconds(4));
  EXPECT_EQ(Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()}).server_serial, "11");
  clock_.Advance(absl::Seconds(1));
  const HandshakeResult after = Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()});
  EXPECT_EQ(after.server_serial, "22");
  EXPECT_EQ(after.server_subject, "CN=server-two,O=ortserve-test");
  ASSERT_EQ(reloads_.size(), 1u);
  EXPECT_TRUE(reloads_[0].ok());
  // The context taken before the reload still works and still says "11".
  const HandshakeResult kept = Handshake([&] { return before; }, {.trusted_ca_pem = ca_.cert_pem()});
  EXPECT_TRUE(kept.greeted);
  EXPECT_EQ(kept.server_serial, "11");
}

TEST_F(TlsContextProviderTest, ABadReloadKeepsTheLastGoodCertificate) {
  auto provider = Make();
  const KeyAndCert next = ca_.Issue({.common_name = "server-two", .serial = 0x22});
  // Only the certificate replaced so far: it does not match the old key.
  ReplaceFile(cert_path_, next.cert_pem);
  EXPECT_THAT(provider->CheckNow().message(), HasSubstr("does not match"));
  EXPECT_EQ(Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()}).server_serial, "11");
  // The key follows: the pair loads.
  ReplaceFile(key_path_, next.key_pem);
  EXPECT_TRUE(provider->CheckNow().ok());
  EXPECT_EQ(Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()}).server_serial, "22");
  // An expired certificate is refused.
  Install(ca_.Issue({.common_name = "old", .serial = 0x33, .not_before_offset = absl::Hours(-48)}));
  EXPECT_THAT(provider->CheckNow().message(), HasSubstr("expired at"));
  // Garbage is refused.
  ReplaceFile(cert_path_, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
  EXPECT_THAT(provider->CheckNow().message(), HasSubstr("does not load"));
  EXPECT_EQ(Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()}).server_serial, "22");
  EXPECT_EQ(provider->certificate().serial_hex, "22");
  EXPECT_EQ(reloads_.size(), 4u);  // Mismatch, success, expired, garbage.
}

// Connections keep coming while the certificate is rotated back and forth,
// each rotation in two steps (certificate, then key) with a check in
// between: no handshake fails, and both certificates are served.
TEST_F(TlsContextProviderTest, NoHandshakeFailsWhileCertificatesRotate) {
  const KeyAndCert a = ca_.Issue({.common_name = "rotating", .serial = 0xA1});
  const KeyAndCert b = ca_.Issue({.common_name = "rotating", .serial = 0xB2});
  Install(a);
  auto provider = Make();
  std::atomic<bool> stop{false};
  std::atomic<int> succeeded{0}, failed{0};
  absl::Mutex mu;
  std::set<std::string> serials;
  std::thread clients([&] {
    while (!stop.load()) {
      const HandshakeResult r = Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()});
      if (!r.greeted) {
        failed.fetch_add(1);
        continue;
      }
      absl::MutexLock lock(&mu);
      serials.insert(r.server_serial);
      succeeded.fetch_add(1);
    }
  });
  for (int i = 0; i < 12; ++i) {
    const KeyAndCert& next = i % 2 == 0 ? b : a;
    ReplaceFile(cert_path_, next.cert_pem);
    EXPECT_FALSE(provider->CheckNow().ok());  // Half done: the old pair stays.
    ReplaceFile(key_path_, next.key_pem);
    EXPECT_TRUE(provider->CheckNow().ok());
    // Let a few connections through on this certificate.
    const int target = succeeded.load() + 2;
    while (succeeded.load() < target && failed.load() == 0) std::this_thread::yield();
  }
  stop.store(true);
  clients.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(succeeded.load(), 24);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(serials, (std::set<std::string>{"A1", "B2"}));
}

TEST_F(TlsContextProviderTest, MutualTlsAcceptsAVerifiedClientAndNamesIt) {
  auto provider = Make(ClientCertMode::kRequire);
  const HandshakeResult r = Handshake(
      From(provider.get()),
      {.trusted_ca_pem = ca_.cert_pem(),
       .certificate = client_ca_.Issue({.common_name = "ingest", .serial = 7, .server = false})});
  ASSERT_FALSE(r.server_error) << r.server_error.message();
  ASSERT_FALSE(r.client_error) << r.client_error.message();
  EXPECT_TRUE(r.greeted);
  EXPECT_EQ(r.client_subject, "CN=ingest,O=ortserve-test");
}

TEST_F(TlsContextProviderTest, MutualTlsRefusesAClientWithoutCertificateOrFromAnotherCa) {
  auto provider = Make(ClientCertMode::kRequire);
  const HandshakeResult none = Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()});
  EXPECT_TRUE(none.server_error);
  EXPECT_TRUE(none.client_error);  // TLS 1.3: seen on the first read.
  EXPECT_FALSE(none.greeted);
  // A certificate from the server CA, not the client CA.
  const HandshakeResult foreign =
      Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem(),
                                       .certificate = ca_.Issue({.common_name = "intruder", .serial = 8, .server = false})});
  EXPECT_TRUE(foreign.server_error);
  EXPECT_FALSE(foreign.greeted);
}

TEST_F(TlsContextProviderTest, OptionalClientCertificatesLetAClientWithoutOneIn) {
  auto provider = Make(ClientCertMode::kOptional);
  const HandshakeResult none = Handshake(From(provider.get()), {.trusted_ca_pem = ca_.cert_pem()});
  EXPECT_TRUE(none.greeted);
  EXPECT_TRUE(none.client_subject.empty());
  const HandshakeResult with = Handshake(
      From(provider.get()), {.trusted_ca_pem = ca_.cert_pem(),
                             .certificate = client_ca_.Issue({.common_name = "ingest", .serial = 9, .server = false})});
  EXPECT_TRUE(with.greeted);
  EXPECT_EQ(with.client_subject, "CN=ingest,O=ortserve-test");
}

TEST_F(TlsContextProviderTest, CreateRefusesInconsistentOrBrokenFiles) {
  const auto create = [&](TlsFiles files) { return TlsContextProvider::Create({.files = files, .clock = &clock_}).status(); };
  EXPECT_THAT(create({.cert_chain_path = cert_path_}).message(), HasSubstr("private key"));
  EXPECT_THAT(create({.cert_chain_path = cert_path_, .private_key_path = key_path_, .client_ca_path = ca_path_})
                  .message(),
              HasSubstr("not requested"));
  EXPECT_THAT(create({.cert_chain_path = cert_path_, .private_key_path = key_path_,
                      .client_cert = ClientCertMode::kRequire})
                  .message(),
              HasSubstr("no client CA"));
  ReplaceFile(key_path_, ca_.Issue({.common_name = "x", .serial = 2}).key_pem);
  EXPECT_THAT(create({.cert_chain_path = cert_path_, .private_key_path = key_path_}).message(),
              HasSubstr("does not match"));
  Install(ca_.Issue({.common_name = "future", .serial = 3, .not_before_offset = absl::Hours(2)}));
  EXPECT_THAT(create({.cert_chain_path = cert_path_, .private_key_path = key_path_}).message(),
              HasSubstr("not valid before"));
}

}  // namespace
}  // namespace ortserve::admission

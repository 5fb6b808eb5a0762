// SPDX-License-Identifier: Apache-2.0
// TLS for the gRPC server, with the same reload rules as the HTTP server.
//
// gRPC 1.51 (Debian 12) re-reads certificate files with its
// FileWatcherCertificateProvider, but serves whatever it reads: a
// certificate replaced a moment before its key makes every handshake fail
// until the key arrives. So the operator's files are watched and checked here
// (BuildTlsServerContext: key matches certificate, validity, client CA
// parses), and only a good set is published to gRPC, as one in-memory file
// (memfd) holding key and chain together, which gRPC watches through
// /proc/self/fd. One file replaced with one dup3(2) can never be seen half
// updated, and the key never gets a second copy on disk.
//
// gRPC 1.51 fixes the protocol range at TLS 1.2 to 1.3 with ECDHE AEAD
// suites and offers no setter for either; these defaults are gRPC's.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "admission/file_reloader.h"
#include "admission/tls_context.h"
#include "core/clock.h"

namespace ortserve::admission {

// Server credentials that follow the certificate, key and client-CA files.
//
// Thread-safe. Owns one polling thread when poll_in_background is set.
// Destroy it after the gRPC server has shut down (gRPC reads the published
// files until then).
class GrpcTlsCredentials {
 public:
  struct Options {
    TlsFiles files{};
    // How often the operator's files are checked.
    absl::Duration check_interval = absl::Seconds(5);
    // How often gRPC re-reads the published copy (whole seconds, at least 1):
    // a good change is served within check_interval plus this.
    unsigned grpc_refresh_seconds = 1;
    // Check on a thread of this object every check_interval (real time).
    // Off: only CheckNow() checks (tests; a server that has its own timer).
    bool poll_in_background = true;
    // Certificate validity and file checks. Not owned; null: Clock::Real().
    const Clock* clock = nullptr;
    std::function<void(const absl::Status&)> on_reload{};
  };

  // Errors: those of ValidateTlsFiles and BuildTlsServerContext (a mistake
  // is reported at start-up, not as failing handshakes), Internal when the
  // in-memory files cannot be made.
  static absl::StatusOr<std::unique_ptr<GrpcTlsCredentials>> Create(Options options);
  ~GrpcTlsCredentials();

  // For grpc::ServerBuilder::AddListeningPort.
  std::shared_ptr<grpc::ServerCredentials> server_credentials() const { return credentials_; }

  // Checks the files now and publishes a good change (SIGHUP).
  absl::Status CheckNow() { return files_->CheckNow(); }
  // The certificate last published.
  CertificateInfo certificate() { return files_->Current()->certificate; }

 private:
  explicit GrpcTlsCredentials(Options options) : options_(std::move(options)) {}
  // Replaces the published identity (key + chain) and client CA.
  absl::Status Publish(std::string_view identity_pem, std::string_view client_ca_pem);

  const Options options_;
  int identity_fd_ = -1;  // Fixed numbers: gRPC reads /proc/self/fd/<n>.
  int client_ca_fd_ = -1;
  std::unique_ptr<ReloadingFiles<TlsServerContext>> files_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  absl::Notification stop_;
  std::thread poller_;
};

// The RFC 2253 subject of the call's client certificate (gRPC verified it
// against the client CA during the handshake); empty when the call came
// without one.
std::string GrpcVerifiedClientSubject(const grpc::AuthContext& context);

}  // namespace ortserve::admission

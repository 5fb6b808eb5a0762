// SPDX-License-Identifier: Apache-2.0
#include "admission/grpc_tls.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::admission {
namespace {

absl::Status ErrnoError(std::string_view what) {
  return absl::InternalError(StrCat("gRPC TLS: cannot ", what, ": ", std::strerror(errno)));
}

// A new in-memory file holding `content`.
absl::StatusOr<int> MemoryFile(std::string_view name, std::string_view content) {
  const int fd = ::memfd_create(std::string(name).c_str(), MFD_CLOEXEC);
  if (fd < 0) return ErrnoError("create an in-memory file");
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status status = ErrnoError("write an in-memory file");
      ::close(fd);
      return status;
    }
    done += static_cast<size_t>(n);
  }
  return fd;
}

// Publishes `content` at the fixed descriptor `*fd` (made on first use): the
// new file replaces the old one in a single dup3.
absl::Status Replace(int* fd, std::string_view name, std::string_view content) {
  ASSIGN_OR_RETURN(const int fresh, MemoryFile(name, content));
  if (*fd < 0) {
    *fd = fresh;
    return absl::OkStatus();
  }
  const int result = ::dup3(fresh, *fd, O_CLOEXEC);
  const int err = errno;
  ::close(fresh);
  if (result < 0) {
    errno = err;
    return ErrnoError("replace an in-memory file");
  }
  return absl::OkStatus();
}

std::string FdPath(int fd) { return StrCat("/proc/self/fd/", fd); }

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcTlsCredentials>> GrpcTlsCredentials::Create(Options options) {
  RETURN_IF_ERROR(ValidateTlsFiles(options.files));
  if (options.grpc_refresh_seconds == 0) {
    return absl::InvalidArgumentError("gRPC TLS: the refresh interval must be at least 1 second");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  std::unique_ptr<GrpcTlsCredentials> tls(new GrpcTlsCredentials(std::move(options)));
  GrpcTlsCredentials* self = tls.get();
  std::vector<std::string> paths = {self->options_.files.cert_chain_path, self->options_.files.private_key_path};
  if (!self->options_.files.client_ca_path.empty()) paths.push_back(self->options_.files.client_ca_path);
  ASSIGN_OR_RETURN(
      tls->files_,
      ReloadingFiles<TlsServerContext>::Create({
          .paths = std::move(paths),
          // Runs under the reloader's check lock, so publishes never overlap.
          .parse = [self](const std::vector<std::string>& contents)
              -> absl::StatusOr<std::shared_ptr<const TlsServerContext>> {
            const std::string_view client_ca = contents.size() > 2 ? std::string_view(contents[2]) : "";
            ASSIGN_OR_RETURN(TlsServerContext built,
                             BuildTlsServerContext(self->options_.files, contents[0], contents[1], client_ca,
                                                   self->options_.clock->Now()));
            // Key first, then the chain; PEM readers skip blocks of other types.
            RETURN_IF_ERROR(self->Publish(StrCat(contents[1], "\n", contents[0]), client_ca));
            return std::make_shared<const TlsServerContext>(std::move(built));
          },
          .check_interval = self->options_.check_interval,
          .clock = self->options_.clock,
          .on_reload = self->options_.on_reload,
      }));

  const std::string identity = FdPath(tls->identity_fd_);
  const std::string client_ca = tls->client_ca_fd_ >= 0 ? FdPath(tls->client_ca_fd_) : "";
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      identity, identity, client_ca, tls->options_.grpc_refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions credentials(provider);
  credentials.watch_identity_key_cert_pairs();
  switch (tls->options_.files.client_cert) {
    case ClientCertMode::kNone:
      credentials.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      break;
    case ClientCertMode::kOptional:
      credentials.watch_root_certs();
      credentials.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
      break;
    case ClientCertMode::kRequire:
      credentials.watch_root_certs();
      credentials.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      break;
  }
  tls->credentials_ = grpc::experimental::TlsServerCredentials(credentials);
  if (!tls->credentials_) return absl::InternalError("gRPC TLS: cannot create server credentials");
  if (tls->options_.poll_in_background) {
    tls->poller_ = std::thread([self] {
      while (!self->stop_.WaitForNotificationWithTimeout(self->options_.check_interval)) {
        self->files_->CheckNow().IgnoreError();  // Reported through on_reload.
      }
    });
  }
  return tls;
}

GrpcTlsCredentials::~GrpcTlsCredentials() {
  stop_.Notify();
  if (poller_.joinable()) poller_.join();
  if (identity_fd_ >= 0) ::close(identity_fd_);
  if (client_ca_fd_ >= 0) ::close(client_ca_fd_);
}

absl::Status GrpcTlsCredentials::Publish(std::string_view identity_pem, std::string_view client_ca_pem) {
  RETURN_IF_ERROR(Replace(&identity_fd_, "ortserve-grpc-identity", identity_pem));
  if (!client_ca_pem.empty()) RETURN_IF_ERROR(Replace(&client_ca_fd_, "ortserve-grpc-client-ca", client_ca_pem));
  return absl::OkStatus();
}

std::string GrpcVerifiedClientSubject(const grpc::AuthContext& context) {
  for (const grpc::string_ref& value : context.FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME)) {
    return std::string(value.data(), value.size());
  }
  return {};
}

}  // namespace ortserve::admission

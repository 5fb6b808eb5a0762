// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/http_server.h"

#include <sys/resource.h>

// The listener: event loops, accept, the idle sweep. Connections live in
// connection.cc and the per-area handler files.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "core/strings.h"
#include "frontend/http/connection.h"
#include "observability/profiler.h"

namespace ortserve::frontend {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

}  // namespace

// One event loop per I/O thread. A connection is bound to one loop when it is
// accepted (round robin), so its handlers never cross threads and the loops
// never wake each other: a shared loop run by several threads hands every
// event to an idle thread, a context switch per step on a busy core.
struct HttpServer::Impl {
  struct Loop {
    net::io_context ioc{1};  // One thread: Asio skips waking other threads.
    net::steady_timer sweep{ioc};  // Always armed: it also keeps the loop running until Stop.
    std::vector<std::weak_ptr<Connection>> connections;  // Only touched on this loop's thread.
    std::thread thread;
  };

  Options options;
  std::unique_ptr<observability::ProfileWorker> profiler;  // With --enable-profiling.
  std::atomic<int64_t> active{0};  // Requests read and not yet answered.
  std::atomic<int64_t> connections{0};  // Open connections.
  ConnectionContext context;       // Points at the three above.
  std::vector<std::unique_ptr<Loop>> loops;
  std::unique_ptr<tcp::acceptor> acceptor;  // On loops[0].
  size_t next_loop = 0;                     // Only touched on loops[0]'s thread.
  static constexpr std::chrono::milliseconds kAcceptRetry{50};
  std::optional<net::steady_timer> accept_retry;  // On loops[0].
  bool accept_paused = false;                     // Only touched on loops[0]'s thread.
  bool warned_at_cap = false;                     // Only touched on loops[0]'s thread.
  std::atomic<bool> stopped{false};

  explicit Impl(Options o) : options(std::move(o)) {
    if (options.enable_profiling) profiler = std::make_unique<observability::ProfileWorker>();
    context = ConnectionContext{&options, &active, profiler.get(), options.access, &connections};
    // Clients should retire an idle connection a little before the server
    // would close it (a reuse racing the close fails the request).
    const int64_t idle_s = absl::ToInt64Seconds(options.idle_timeout);
    if (idle_s >= 2) context.keep_alive_header = StrCat("Keep-Alive: timeout=", idle_s - 1);
    if (options.max_connections == 0) options.max_connections = DefaultMaxConnections();
    for (int i = 0; i < options.threads; ++i) loops.push_back(std::make_unique<Loop>());
    acceptor = std::make_unique<tcp::acceptor>(loops[0]->ioc);
    accept_retry.emplace(loops[0]->ioc);
  }

  void Accept() {
    Loop& loop = *loops[next_loop];
    next_loop = (next_loop + 1) % loops.size();
    acceptor->async_accept(loop.ioc, [this, &loop](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        if (OutOfResources(ec)) return PauseAccepting(ec);
      } else {
        accept_paused = false;
        // Past the cap, a connection serves probes only; past the reserve
        // too, it is answered 503 at once and closed (nothing is read), so
        // a flood of idle connections cannot starve health checks or the
        // descriptors the models and the other ports need.
        const auto open = static_cast<size_t>(connections.load(std::memory_order_relaxed));
        if (open >= options.max_connections + kProbeReserve) {
          RefuseAtOnce(socket);
          return Accept();
        }
        const bool probes_only = open >= options.max_connections;
        if (probes_only && !warned_at_cap) {
          spdlog::warn("HTTP: {} connections open, the limit (--http-max-connections); new ones serve health "
                       "probes only until some close",
                       open);
          warned_at_cap = true;
        } else if (!probes_only) {
          warned_at_cap = false;
        }
        socket.set_option(tcp::no_delay(true), ec);
        auto connection =
            options.tls == nullptr
                ? std::make_shared<Connection>(HttpStream(std::move(socket)), context, probes_only)
                : std::make_shared<Connection>(HttpStream(std::move(socket), options.tls->Current()), context,
                                               probes_only);
        net::post(loop.ioc, [&loop, connection] {
          loop.connections.push_back(connection);
          connection->Start();
        });
      }
      Accept();
    });
  }

  // Over every cap: a canned 503, best effort, without blocking; then close.
  static void RefuseAtOnce(tcp::socket& socket) {
    static constexpr std::string_view kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        "Connection: close\r\nContent-Length: 57\r\n\r\n{\"error\":\"too many connections (--http-max-connections)\"}";
    beast::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(net::buffer(kBusy.data(), kBusy.size()), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  // The default connection cap: what the open-files limit leaves after a
  // reserve for models, logs, the other ports and the probe reserve: three
  // quarters of the limit, at least 64.
  static size_t DefaultMaxConnections() {
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) return 65536;
    const size_t limit = static_cast<size_t>(files.rlim_cur);
    return std::max<size_t>(64, limit / 4 * 3 > kProbeReserve ? limit / 4 * 3 - kProbeReserve : 64);
  }

  // Out of descriptors (or kernel memory), accept fails at once for as long
  // as a connection waits in the backlog: retrying at once is a busy loop on
  // loops[0]. Wait a little instead; connections keep waiting in the backlog
  // (the kernel's, not ours) and are accepted once descriptors free up.
  static bool OutOfResources(const beast::error_code& ec) {
    return ec == net::error::no_descriptors || ec == net::error::no_buffer_space ||
           ec == net::error::no_memory || ec.value() == ENFILE;
  }
  void PauseAccepting(const beast::error_code& ec) {
    if (!accept_paused) {
      spdlog::warn("HTTP: cannot accept connections ({}); retrying every {} ms until resources free up",
                   ec.message(), kAcceptRetry.count());
      accept_paused = true;
    }
    accept_retry->expires_after(kAcceptRetry);
    accept_retry->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor->is_open()) Accept();
    });
  }

  // Closes connections whose read or write outlived the idle timeout, and
  // forgets closed ones. Runs every quarter timeout (at most every second).
  void Sweep(Loop& loop) {
    const auto period = std::clamp<std::chrono::nanoseconds>(
        std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options.idle_timeout / 4)), std::chrono::milliseconds(10),
        std::chrono::seconds(1));
    loop.sweep.expires_after(period);
    loop.sweep.async_wait([this, &loop](beast::error_code ec) {
      if (ec) return;
      const auto now = Connection::Clock::now();
      std::erase_if(loop.connections, [now](const std::weak_ptr<Connection>& weak) {
        auto connection = weak.lock();
        if (!connection) return true;
        connection->CloseIfExpired(now);
        return false;
      });
      Sweep(loop);
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Options options) {
  if (options.service == nullptr) return absl::InvalidArgumentError("HttpServer needs a service");
  if (options.threads < 1) options.threads = 1;
  auto impl = std::make_unique<Impl>(std::move(options));
  beast::error_code ec;
  auto address = net::ip::make_address(impl->options.address, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("bad HTTP address '", impl->options.address, "': ", ec.message()));
  tcp::endpoint endpoint(address, impl->options.port);
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(StrCat("cannot listen for HTTP on ", impl->options.address, ":",
                                         impl->options.port, ": ", ec.message()));
  }
  impl->Accept();
  for (auto& loop : impl->loops) {
    impl->Sweep(*loop);
    loop->thread = std::thread([ioc = &loop->ioc] { ioc->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  // A recording in progress ends (Cancelled) while the loops can still take
  // its answer.
  impl_->profiler.reset();
  net::post(impl_->loops[0]->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_retry->cancel();
  });
  for (auto& loop : impl_->loops) loop->ioc.stop();
  for (auto& loop : impl_->loops) {
    if (loop->thread.joinable()) loop->thread.join();
  }
}

void HttpServer::StopAccepting() {
  if (!impl_ || impl_->stopped.load()) return;
  std::promise<void> closed;
  net::post(impl_->loops[0]->ioc, [impl = impl_.get(), &closed] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_retry->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
}

size_t HttpServer::ActiveRequests() const {
  const int64_t n = impl_ ? impl_->active.load(std::memory_order_acquire) : 0;
  return n > 0 ? static_cast<size_t>(n) : 0;
}

size_t HttpServer::OpenConnections() const {
  const int64_t n = impl_ ? impl_->connections.load(std::memory_order_relaxed) : 0;
  return n > 0 ? static_cast<size_t>(n) : 0;
}

uint16_t HttpServer::port() const { return impl_->acceptor->local_endpoint().port(); }

unsigned HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

}  // namespace ortserve::frontend

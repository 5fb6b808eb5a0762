// SPDX-License-Identifier: Apache-2.0
// The process alerts_kill_test SIGKILLs: an AlertService built from the
// server's alert flags (alerts/alert_flags.h), as ortserve will run it.
//
//   alerts_outbox_helper <--alert-* flags> --enqueue N --patients P --prefix X [--drain]
//
// Enqueues N serious verdicts (EnqueueNow: durable on return), printing
// "ACK <request id>" after each, spread over P patients, each patient's ids
// increasing. Then, with --drain, waits until nothing is pending, prints
// "DRAINED" and exits 0 (exit 2 after 60 s); without it, prints "ENQUEUED"
// and waits to be killed while the dispatcher delivers.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "alerts/alert_flags.h"
#include "alerts/alert_service.h"

int main(int argc, char** argv) {
  using namespace ortserve::alerts;
  CLI::App app{"alerts_outbox_helper"};
  AlertFlags flags;
  AddAlertFlags(app, &flags);
  int enqueue = 0, patients = 1;
  std::string prefix = "x";
  bool drain = false;
  app.add_option("--enqueue", enqueue);
  app.add_option("--patients", patients);
  app.add_option("--prefix", prefix);
  app.add_flag("--drain", drain);
  CLI11_PARSE(app, argc, argv);
  auto options = BuildAlertServiceOptions(flags);
  if (!options.ok() || !options->has_value()) {
    std::fprintf(stderr, "bad flags: %s\n", options.ok() ? "no webhook" : options.status().ToString().c_str());
    return 1;
  }
  AlertServiceOptions o = **std::move(options);
  o.outbox.backoff = {.initial = absl::Milliseconds(100), .multiplier = 2, .max = absl::Seconds(1), .jitter = 0.5};
  o.dispatcher.request_timeout = absl::Seconds(2);
  auto service = AlertService::Create(std::move(o));
  if (!service.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", service.status().ToString().c_str());
    return 1;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  for (int i = 0; i < enqueue; ++i) {
    const int patient = i % patients;
    char id[128];
    std::snprintf(id, sizeof id, "req-%s-p%d-%06d", prefix.c_str(), patient, i);
    SeriousVerdict v{.request_id = id,
                     .patient_id = "MRN-" + std::to_string(patient),
                     .model = "sae",
                     .version = "1",
                     .probability = 0.95,
                     .threshold = 0.5,
                     .time = absl::Now()};
    absl::Status status = (*service)->EnqueueNow(v);
    if (!status.ok()) {
      std::fprintf(stderr, "enqueue %s: %s\n", id, status.ToString().c_str());
      return 1;
    }
    std::printf("ACK %s\n", id);
    std::fflush(stdout);
  }
  if (!drain) {
    std::printf("ENQUEUED\n");
    std::fflush(stdout);
    for (;;) pause();
  }
  const absl::Time end = absl::Now() + absl::Seconds(60);
  while (absl::Now() < end) {
    int64_t pending = 0;
    for (const std::string& r : (*service)->receivers()) pending += (*service)->outbox().PendingCount(r).value_or(1);
    if (pending == 0) {
      (*service)->Stop();
      std::printf("DRAINED\n");
      std::fflush(stdout);
      return 0;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return 2;
}

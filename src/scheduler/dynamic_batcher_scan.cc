// SPDX-License-Identifier: Apache-2.0
// DynamicBatcher: choosing the next batch from the queue (by rows and shape,
// or by token budget), and dropping what was cancelled or timed out.
#include <algorithm>

#include "scheduler/batch_builder.h"
#include "scheduler/dynamic_batcher.h"

namespace ortserve::scheduler {

DynamicBatcher::Scan DynamicBatcher::ScanByTokens(absl::Time now, std::vector<Rejected>& rejected) {
  Scan scan;
  picks_.clear();
  const Entry* seed = nullptr;
  int64_t rows = 0;
  int64_t longest = 0;
  int64_t max_rows = MaxRows();
  const int64_t budget = options_.max_batch_tokens;
  for (size_t l = 0; l < levels_.size(); ++l) {
    auto& level = levels_[l];
    for (size_t i = 0; i < level.size();) {
      if (DropIfDone(level, i, now, rejected)) continue;
      Entry& entry = level[i];
      if (seed == nullptr) {
        seed = &entry;  // The head: always in the batch, so nothing starves.
        max_rows = MaxRowsFor(entry, now);
        if (options_.pad_variable_dims) padded_.Start(*entry.request, options_.max_padded_batch_bytes);
      } else if (entry.bucket != seed->bucket ||
                 !CanBatch(*seed->request, *entry.request, options_.pad_variable_dims)) {
        ++i;  // Waits for a batch of its own length.
        continue;
      } else if (rows + entry.rows > max_rows ||
                 (rows + entry.rows) * std::max(longest, entry.length) > budget ||
                 (options_.pad_variable_dims &&
                  !padded_.TryJoin(*entry.request, options_.max_padded_batch_bytes))) {
        scan.cut_now = true;  // Full: the next one of this length does not fit.
        return scan;
      }
      rows += entry.rows;
      longest = std::max(longest, entry.length);
      picks_.emplace_back(l, i);
      ++scan.count;
      scan.oldest = std::min(scan.oldest, entry.enqueued);
      scan.run_at_once = scan.run_at_once || entry.run_at_once;
      // Full when no further row, even as long as the longest so far, fits.
      if (rows >= max_rows || (rows + 1) * std::max<int64_t>(longest, 1) > budget) {
        scan.cut_now = true;
        return scan;
      }
      for (int preferred : options_.preferred_batch_sizes) {
        if (preferred == rows) scan.preferred = scan.count;
      }
      ++i;
    }
  }
  return scan;
}

bool DynamicBatcher::DropIfDone(RingQueue<Entry>& level, size_t i, absl::Time now,
                                std::vector<Rejected>& rejected) {
  const Entry& entry = level[i];
  const bool cancelled = entry.request->cancelled();
  if (!cancelled && entry.deadline > now) return false;
  rejected.push_back(Rejected{level.erase_at(i), cancelled ? absl::StatusCode::kCancelled
                                                           : absl::StatusCode::kDeadlineExceeded});
  --queued_;
  return true;
}

DynamicBatcher::Scan DynamicBatcher::ScanQueue(absl::Time now, std::vector<Rejected>& rejected) {
  if (token_mode()) return ScanByTokens(now, rejected);
  Scan scan;
  picks_.clear();
  const InferRequest* seed = nullptr;
  int64_t rows = 0;
  const bool batching = options_.dynamic_batching && options_.max_batch_size > 0;
  int64_t max_rows = batching ? MaxRows() : 1;
  for (size_t l = 0; l < levels_.size(); ++l) {
    auto& level = levels_[l];
    for (size_t i = 0; i < level.size();) {
      if (DropIfDone(level, i, now, rejected)) continue;
      Entry& entry = level[i];
      if (seed == nullptr) {
        seed = entry.request.get();  // The head: always in the batch, so nothing starves.
        if (batching) max_rows = MaxRowsFor(entry, now);
        if (options_.pad_variable_dims) padded_.Start(*seed, options_.max_padded_batch_bytes);
      } else if (!batching) {
        scan.cut_now = true;
        return scan;
      } else if (!CanBatch(*seed, *entry.request, options_.pad_variable_dims)) {
        if (options_.pad_variable_dims) {  // Another rank: it cannot join any batch of this one.
          scan.cut_now = true;
          return scan;
        }
        ++i;  // Another shape: it waits for a batch of its own shape.
        continue;
      } else if (rows + entry.rows > max_rows) {
        scan.cut_now = true;  // Full: waiting cannot grow this batch.
        return scan;
      } else if (options_.pad_variable_dims &&
                 !padded_.TryJoin(*entry.request, options_.max_padded_batch_bytes)) {
        // Padded with it, the batch would grow past its byte bound: it runs
        // in a later batch, and waiting cannot make this one take it.
        scan.cut_now = true;
        return scan;
      }
      rows += entry.rows;
      picks_.emplace_back(l, i);
      ++scan.count;
      scan.oldest = std::min(scan.oldest, entry.enqueued);
      scan.run_at_once = scan.run_at_once || entry.run_at_once;
      if (!batching || rows == max_rows) {
        scan.cut_now = true;
        return scan;
      }
      for (int preferred : options_.preferred_batch_sizes) {
        if (preferred == rows) scan.preferred = scan.count;
      }
      ++i;
    }
  }
  return scan;
}

}  // namespace ortserve::scheduler

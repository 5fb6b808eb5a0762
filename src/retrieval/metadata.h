// SPDX-License-Identifier: Apache-2.0
// A document's metadata (a JSON object kept as compact text, with its
// top-level scalar fields indexed for filtering) and the filters a query
// applies to it: equality on a field, and numeric ranges.
//
// Thread-safe: values are immutable once built; Filter::Matches is const.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace ortserve::retrieval {

// The most bytes of a document's metadata JSON, and of a filter's.
inline constexpr size_t kMaxMetadataBytes = 16 << 10;
// The most top-level fields of a metadata object.
inline constexpr size_t kMaxMetadataFields = 64;
// The most conditions of a filter (all must hold).
inline constexpr size_t kMaxFilterConditions = 32;
// The most values of an "$in" list.
inline constexpr size_t kMaxInValues = 64;
// The deepest nesting of objects and arrays a metadata value may have.
inline constexpr size_t kMaxMetadataDepth = 8;

// A scalar JSON value: null, a boolean, a number (as a double) or a string.
using Scalar = std::variant<std::monostate, bool, double, std::string>;

// Parsed metadata. `json` is the object as compact JSON ("{}" when none);
// `fields` its top-level scalar fields, sorted by name (arrays and objects
// are kept in `json` but are not filterable).
struct Metadata {
  std::string json = "{}";
  std::vector<std::pair<std::string, Scalar>> fields;

  // The field `name`, or null.
  const Scalar* Find(std::string_view name) const;
};

// Parses a metadata object from JSON text. InvalidArgument, naming what was
// wrong, for text that is not one JSON object, longer than
// kMaxMetadataBytes, with more than kMaxMetadataFields fields, nested
// deeper than kMaxMetadataDepth, or holding a key twice.
absl::StatusOr<Metadata> ParseMetadata(std::string_view json);

// A conjunction of conditions on top-level metadata fields:
//   {"kind": "serious"}                  equality (string, number, bool, null)
//   {"year": {"$gte": 2020, "$lt": 2024}} numeric range ($gt $gte $lt $lte)
//   {"kind": {"$eq": "x"}} / {"kind": {"$in": ["a", "b"]}}
// A document without the field never matches a condition on it.
class Filter {
 public:
  // The empty filter: every document matches.
  Filter() = default;
  // Parses a filter object. InvalidArgument naming the field and operator
  // for anything else (unknown operator, a range bound that is not a finite
  // number, too many conditions or values, a key twice).
  static absl::StatusOr<Filter> Parse(std::string_view json);

  bool empty() const { return conditions_.empty(); }
  bool Matches(const Metadata& metadata) const;

 private:
  struct Condition {
    std::string field;
    std::vector<Scalar> any_of;  // Equality: the value equals one of these (none: no equality test).
    double lower = 0, upper = 0;
    bool has_lower = false, lower_inclusive = false;
    bool has_upper = false, upper_inclusive = false;
  };
  std::vector<Condition> conditions_;
};

}  // namespace ortserve::retrieval

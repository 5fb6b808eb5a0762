// SPDX-License-Identifier: Apache-2.0
#include "retrieval/metadata.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "core/strings.h"

namespace ortserve::retrieval {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Depth of `value` (a scalar is 0); stops counting past kMaxMetadataDepth.
size_t Depth(element value, size_t level) {
  if (level > kMaxMetadataDepth) return level;
  size_t deepest = level;
  if (value.type() == element_type::ARRAY) {
    const simdjson::dom::array items = value.get_array().value_unsafe();
    for (element item : items) deepest = std::max(deepest, Depth(item, level + 1));
  } else if (value.type() == element_type::OBJECT) {
    const simdjson::dom::object fields = value.get_object().value_unsafe();
    for (auto field : fields) deepest = std::max(deepest, Depth(field.value, level + 1));
  }
  return deepest;
}

// The scalar `value` holds, or false when it is an array or object.
bool ToScalar(element value, Scalar& out) {
  switch (value.type()) {
    case element_type::NULL_VALUE: out = std::monostate{}; return true;
    case element_type::BOOL: out = value.get_bool().value_unsafe(); return true;
    case element_type::INT64: out = static_cast<double>(value.get_int64().value_unsafe()); return true;
    case element_type::UINT64: out = static_cast<double>(value.get_uint64().value_unsafe()); return true;
    case element_type::DOUBLE: out = value.get_double().value_unsafe(); return true;
    case element_type::STRING: out = std::string(value.get_string().value_unsafe()); return true;
    default: return false;
  }
}

// Parses `json` as one JSON object (the parser keeps it alive).
absl::StatusOr<simdjson::dom::object> ParseObject(simdjson::dom::parser& parser, std::string_view json,
                                                  std::string_view what) {
  if (json.size() > kMaxMetadataBytes) {
    return absl::InvalidArgumentError(StrCat(what, " is longer than ", kMaxMetadataBytes, " bytes"));
  }
  element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat(what, " is not valid JSON"));
  }
  simdjson::dom::object object;
  if (doc.get(object) != simdjson::SUCCESS) return absl::InvalidArgumentError(StrCat(what, " must be a JSON object"));
  absl::flat_hash_set<std::string_view> keys;
  for (auto field : object) {
    if (!keys.insert(field.key).second) {
      return absl::InvalidArgumentError(StrCat(what, " holds the key '", field.key, "' twice"));
    }
  }
  return object;
}

}  // namespace

const Scalar* Metadata::Find(std::string_view name) const {
  auto it = std::lower_bound(fields.begin(), fields.end(), name,
                             [](const auto& field, std::string_view key) { return field.first < key; });
  if (it == fields.end() || it->first != name) return nullptr;
  return &it->second;
}

absl::StatusOr<Metadata> ParseMetadata(std::string_view json) {
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, json, "metadata");
  if (!object.ok()) return object.status();
  if (object->size() > kMaxMetadataFields) {
    return absl::InvalidArgumentError(StrCat("metadata has more than ", kMaxMetadataFields, " fields"));
  }
  Metadata metadata;
  for (auto field : *object) {
    if (Depth(field.value, 1) > kMaxMetadataDepth) {
      return absl::InvalidArgumentError(
          StrCat("metadata field '", field.key, "' is nested deeper than ", kMaxMetadataDepth, " levels"));
    }
    Scalar value;
    if (ToScalar(field.value, value)) metadata.fields.emplace_back(std::string(field.key), std::move(value));
  }
  std::sort(metadata.fields.begin(), metadata.fields.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  metadata.json = simdjson::minify(*object);
  return metadata;
}

absl::StatusOr<Filter> Filter::Parse(std::string_view json) {
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, json, "filter");
  if (!object.ok()) return object.status();
  if (object->size() > kMaxFilterConditions) {
    return absl::InvalidArgumentError(StrCat("filter has more than ", kMaxFilterConditions, " conditions"));
  }
  Filter filter;
  for (auto field : *object) {
    Condition condition;
    condition.field = std::string(field.key);
    Scalar scalar;
    if (ToScalar(field.value, scalar)) {
      condition.any_of.push_back(std::move(scalar));
      filter.conditions_.push_back(std::move(condition));
      continue;
    }
    simdjson::dom::object ops;
    if (field.value.get(ops) != simdjson::SUCCESS || ops.size() == 0) {
      return absl::InvalidArgumentError(StrCat("filter on '", field.key,
                                               "' must be a value or an object of operators ($eq $in $gt $gte $lt $lte)"));
    }
    absl::flat_hash_set<std::string_view> seen;
    for (auto op : ops) {
      if (!seen.insert(op.key).second) {
        return absl::InvalidArgumentError(StrCat("filter on '", field.key, "' holds '", op.key, "' twice"));
      }
      if (op.key == "$eq") {
        if (!ToScalar(op.value, scalar)) {
          return absl::InvalidArgumentError(StrCat("filter '", field.key, ".$eq' must be a scalar"));
        }
        condition.any_of.push_back(std::move(scalar));
        continue;
      }
      if (op.key == "$in") {
        simdjson::dom::array values;
        if (op.value.get(values) != simdjson::SUCCESS || values.size() == 0 || values.size() > kMaxInValues) {
          return absl::InvalidArgumentError(
              StrCat("filter '", field.key, ".$in' must be an array of 1 to ", kMaxInValues, " scalars"));
        }
        for (element item : values) {
          if (!ToScalar(item, scalar)) {
            return absl::InvalidArgumentError(StrCat("filter '", field.key, ".$in' must hold scalars only"));
          }
          condition.any_of.push_back(std::move(scalar));
        }
        continue;
      }
      const bool lower = op.key == "$gt" || op.key == "$gte";
      const bool upper = op.key == "$lt" || op.key == "$lte";
      if (!lower && !upper) {
        return absl::InvalidArgumentError(StrCat("filter on '", field.key, "': unknown operator '", op.key,
                                                 "' (use $eq $in $gt $gte $lt $lte)"));
      }
      double bound = 0;
      if (!op.value.is_number() || op.value.get_double().get(bound) != simdjson::SUCCESS || !std::isfinite(bound)) {
        return absl::InvalidArgumentError(StrCat("filter '", field.key, ".", op.key, "' must be a finite number"));
      }
      if (lower) {
        condition.has_lower = true;
        condition.lower = bound;
        condition.lower_inclusive = op.key == "$gte";
      } else {
        condition.has_upper = true;
        condition.upper = bound;
        condition.upper_inclusive = op.key == "$lte";
      }
    }
    filter.conditions_.push_back(std::move(condition));
  }
  return filter;
}

bool Filter::Matches(const Metadata& metadata) const {
  for (const Condition& condition : conditions_) {
    const Scalar* value = metadata.Find(condition.field);
    if (value == nullptr) return false;
    if (!condition.any_of.empty() &&
        std::find(condition.any_of.begin(), condition.any_of.end(), *value) == condition.any_of.end()) {
      return false;
    }
    if (condition.has_lower || condition.has_upper) {
      const double* number = std::get_if<double>(value);
      if (number == nullptr) return false;
      if (condition.has_lower &&
          (condition.lower_inclusive ? *number < condition.lower : *number <= condition.lower)) {
        return false;
      }
      if (condition.has_upper &&
          (condition.upper_inclusive ? *number > condition.upper : *number >= condition.upper)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace ortserve::retrieval

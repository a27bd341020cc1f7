// SPDX-License-Identifier: Apache-2.0
// Kubernetes resource quantities for byte counts: "8Gi", "512Mi", "2G", "1.5Gi", "1e9", "4096".
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace gpushare {

// Bytes, rounded up to a whole byte as Kubernetes does; nullopt for anything malformed,
// negative, or over 2^64-1. Binary suffixes Ki..Ei, decimal k, M, G, T, P, E.
std::optional<uint64_t> ParseQuantity(std::string_view text);

}  // namespace gpushare

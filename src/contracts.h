// SPDX-License-Identifier: Apache-2.0
// Scheduler contracts: the variables HAMi, aliyun gpushare and KAI-Scheduler inject into the
// containers they place (src/contracts.inc), read into gpushare's options. gpushare's own
// GPUSHARE_ variables take precedence over all of them (see src/options.h).
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "src/options.h"

namespace gpushare {

// Reads every contract row: validates each variable that is set (errors into options.errors),
// applies it where the option's own GPUSHARE_ variable is unset, and says which in options.notes.
void ApplyContracts(const EnvLookup& env, Options& options);

struct ContractRow {
  std::string_view field;      // the option it feeds (options.inc)
  std::string_view variables;  // as the scheduler names them
  std::string_view scheduler;
  std::string_view help;
};
std::span<const ContractRow> ContractRows();

// A Kubernetes container's tenant name, "<namespace>/<pod>/<container>", and back (nullopt for
// any other tenant name, such as the default "pod<uid>/<container id>").
struct PodIdentity {
  std::string ns;
  std::string pod;
  std::string container;
};
std::string PodTenantName(const PodIdentity& id);
std::optional<PodIdentity> SplitPodTenantName(std::string_view tenant);

}  // namespace gpushare

// SPDX-License-Identifier: Apache-2.0
// The watcher: one thread in every process that holds a quota. Every 100 ms it advances the
// coarse activity clock, checks that each ledger file is still the one it joined (re-joining one
// lost under it, quota/ledger_loss.cpp), publishes this process's last activity into its ledger
// slots, and
// carries out a termination the priority resolver has marked on this process's tenant:
// tenants live in other containers and PID namespaces, so the victim's own library acts,
// SIGTERM first and SIGKILL after GPUSHARE_KILL_GRACE.
#pragma once

namespace gpushare::quota {

// Starts the thread once; later calls do nothing.
void StartWatcher();

}  // namespace gpushare::quota

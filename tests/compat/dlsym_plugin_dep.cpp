// SPDX-License-Identifier: Apache-2.0
// The plugin's own dependency (see dlsym_plugin.cpp): only the plugin's scope has it.
#define COMPAT_EXPORT extern "C" __attribute__((visibility("default")))

COMPAT_EXPORT int compat_plugin_dep_only() { return 7; }

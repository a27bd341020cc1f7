# SPDX-License-Identifier: Apache-2.0
# CUDA headers only: libcuda is found at run time, never linked.
find_path(GS_CUDA_INCLUDE_DIR cuda.h cudaTypedefs.h
  HINTS $ENV{CUDA_HOME}/include /usr/local/cuda/include REQUIRED)

find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
# cpp-httplib (Debian's libcpp-httplib-dev, a compiled library) for gpushare-exporter only: its
# pkg-config file carries the feature macros its ABI was built with.
find_package(PkgConfig REQUIRED)
pkg_check_modules(GS_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

# spdlog and fmt compiled into our objects (Debian ships no static archives): spdlog's headers
# with fmt's header-only target, so nothing links libspdlog.so or libfmt.so.
add_library(gs_spdlog INTERFACE)
get_target_property(_gs_spdlog_inc spdlog::spdlog_header_only INTERFACE_INCLUDE_DIRECTORIES)
target_include_directories(gs_spdlog SYSTEM INTERFACE ${_gs_spdlog_inc})
target_compile_definitions(gs_spdlog INTERFACE SPDLOG_FMT_EXTERNAL)
target_link_libraries(gs_spdlog INTERFACE fmt::fmt-header-only Threads::Threads)

# The shared-memory ledger (quota/ledger*), its tool gpushare-smi, and their tests. Included by
# the top-level CMakeLists right after gpushare_core is defined.
target_sources(gpushare_core PRIVATE
  ${PROJECT_SOURCE_DIR}/quota/ledger.cpp
  ${PROJECT_SOURCE_DIR}/quota/ledger_file.cpp
  ${PROJECT_SOURCE_DIR}/quota/ledger_reap.cpp
  ${PROJECT_SOURCE_DIR}/quota/ledger_snapshot.cpp
  ${PROJECT_SOURCE_DIR}/quota/robust_lock.cpp
  ${PROJECT_SOURCE_DIR}/quota/slot_liveness.cpp
  ${PROJECT_SOURCE_DIR}/quota/tenant_identity.cpp
)

add_executable(gpushare-smi ${PROJECT_SOURCE_DIR}/tools/gpushare_smi.cpp)
target_link_libraries(gpushare-smi PRIVATE gpushare_core nlohmann_json::nlohmann_json)
target_compile_options(gpushare-smi PRIVATE ${GS_WARNINGS})
install(TARGETS gpushare-smi RUNTIME DESTINATION bin)

if(GPUSHARE_BUILD_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  include(GoogleTest)

  add_executable(gpushare_ledger_tests
    ${PROJECT_SOURCE_DIR}/tests/quota/ledger_test.cpp
    ${PROJECT_SOURCE_DIR}/tests/quota/ledger_crash_test.cpp
    ${PROJECT_SOURCE_DIR}/tests/tools/gpushare_smi_test.cpp
  )
  target_link_libraries(gpushare_ledger_tests PRIVATE gpushare_core nlohmann_json::nlohmann_json
    GTest::gtest_main)
  target_compile_options(gpushare_ledger_tests PRIVATE ${GS_WARNINGS})
  target_compile_definitions(gpushare_ledger_tests PRIVATE
    GS_SMI_PATH="$<TARGET_FILE:gpushare-smi>")
  add_dependencies(gpushare_ledger_tests gpushare-smi)
  gtest_discover_tests(gpushare_ledger_tests PROPERTIES TIMEOUT 60)
endif()

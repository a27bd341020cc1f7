# SPDX-License-Identifier: Apache-2.0
set(GS_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wno-gnu-zero-variadic-macro-arguments)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(REMOVE_ITEM GS_WARNINGS -Wno-gnu-zero-variadic-macro-arguments)
endif()
if(GPUSHARE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

// SPDX-License-Identifier: Apache-2.0
#include "src/quantity.h"

#include <gtest/gtest.h>

namespace gpushare {
namespace {

TEST(ParseQuantity, AcceptsKubernetesForms) {
  EXPECT_EQ(ParseQuantity("8Gi"), 8ull << 30);
  EXPECT_EQ(ParseQuantity("512Mi"), 512ull << 20);
  EXPECT_EQ(ParseQuantity("2G"), 2'000'000'000ull);
  EXPECT_EQ(ParseQuantity("4096"), 4096ull);
  EXPECT_EQ(ParseQuantity("1.5Gi"), 3ull << 29);
  EXPECT_EQ(ParseQuantity("1e9"), 1'000'000'000ull);
  EXPECT_EQ(ParseQuantity("100k"), 100'000ull);
  EXPECT_EQ(ParseQuantity("1Ki"), 1024ull);
  EXPECT_EQ(ParseQuantity("0"), 0ull);
  EXPECT_EQ(ParseQuantity(".5Ki"), 512ull);
  EXPECT_EQ(ParseQuantity("15Ei"), 15ull << 60);
}

TEST(ParseQuantity, RoundsFractionsUpToWholeBytes) {
  EXPECT_EQ(ParseQuantity("0.1Ki"), 103ull);  // 102.4
  EXPECT_EQ(ParseQuantity("1.0000001"), 2ull);
}

TEST(ParseQuantity, RejectsMalformedValues) {
  for (const char* bad : {"", "8GB?", "-1", "1.5.0Gi", "Gi", "8gi", "8GB", "8 Gi", " 8Gi", "8Gi ",
                          "1.", ".", "0x10", "1e", "1e9Gi", "8m", "+1", "nan", "1,5Gi"})
    EXPECT_FALSE(ParseQuantity(bad).has_value()) << '"' << bad << '"';
}

TEST(ParseQuantity, RejectsOverflow) {
  EXPECT_FALSE(ParseQuantity("16Ei").has_value());
  EXPECT_FALSE(ParseQuantity("18446744073709551616").has_value());
  EXPECT_FALSE(ParseQuantity("99999999999999999999999999999999Ei").has_value());
  EXPECT_EQ(ParseQuantity("18446744073709551615"), UINT64_MAX);
}

}  // namespace
}  // namespace gpushare

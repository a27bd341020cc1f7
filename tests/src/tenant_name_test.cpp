// SPDX-License-Identifier: Apache-2.0
// The tenant alphabet: what passes, what is refused (naming the byte), and derived names that
// are sanitised instead, whatever the hostname or cgroup holds.
#include "src/tenant_name.h"

#include <gtest/gtest.h>

#include <string>

#include "quota/tenant_identity.h"
#include "src/printable.h"

namespace gpushare {
namespace {

TEST(TenantName, KubernetesAndDerivedNamesPass) {
  for (const char* name : {"team-a", "Team_A", "team-a/serve-7f9c.x/vllm", "pod0b1c2d3e-1111-2222-3333-444455556666/cccccccccccc",
                           "ctr-dddddddddddd", "pid-4242@node-1.example.com", "a"})
    EXPECT_EQ(TenantNameProblem(name), "") << name;
  EXPECT_EQ(TenantNameProblem(std::string(127, 'x')), "");
}

TEST(TenantName, EveryOtherByteIsRefusedByPosition) {
  EXPECT_EQ(TenantNameProblem(""), "empty");
  EXPECT_EQ(TenantNameProblem("a\x1b[31m"), "byte 2 is 0x1b");
  EXPECT_EQ(TenantNameProblem("ab\n"), "byte 3 is 0x0a");
  EXPECT_EQ(TenantNameProblem("caf\xc3\xa9"), "byte 4 is 0xc3") << "UTF-8 too: Kubernetes names are ASCII";
  EXPECT_EQ(TenantNameProblem("\xff"), "byte 1 is 0xff");
  EXPECT_EQ(TenantNameProblem("a b"), "byte 2 is 0x20");
  EXPECT_EQ(TenantNameProblem(std::string(128, 'x')), "128 bytes");
  for (const char c : std::string("\"\\'`$;:,%*?!#&=+~<>()[]{}|\x7f\t\r"))
    EXPECT_NE(TenantNameProblem(std::string("a") + c), "") << static_cast<int>(c);
}

TEST(TenantName, DerivedNamesAreSanitisedNeverRefused) {
  EXPECT_EQ(SanitizeTenantName("node\x1b[2J\n\xff"), "node__2J__");
  EXPECT_EQ(SanitizeTenantName(""), "unknown");
  EXPECT_EQ(SanitizeTenantName(std::string(300, 'h')).size(), 127u);
  EXPECT_EQ(quota::ProcessTenantName(42, "gpu-node-7"), "pid-42@gpu-node-7");
  EXPECT_EQ(quota::ProcessTenantName(42, ""), "pid-42@localhost");
  const std::string odd = quota::ProcessTenantName(42, "h\x1b]0;owned\x07 \xc3\xa9");
  EXPECT_EQ(odd, "pid-42@h__0_owned____");
  EXPECT_EQ(TenantNameProblem(odd), "");
  EXPECT_EQ(TenantNameProblem(quota::ProcessTenantName(2147483647, std::string(255, '\xfe'))), "");
}

TEST(Printable, KeepsTheAlphabetAndEscapesEverythingElse) {
  EXPECT_EQ(Printable("team-a/serve-7f9c/vllm"), "team-a/serve-7f9c/vllm");
  EXPECT_EQ(Printable("a\x1b[31mb\n\xff\"\\"), "a\\x1b[31mb\\x0a\\xff\"\\\\");
  EXPECT_EQ(Printable(std::string("\0\x7f", 2)), "\\x00\\x7f");
  EXPECT_EQ(Printable("\xc3\xa9"), "\\xc3\\xa9");
  for (int b = 0; b < 256; ++b)
    for (const char c : Printable(std::string(1, static_cast<char>(b))))
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << b;
}

}  // namespace
}  // namespace gpushare

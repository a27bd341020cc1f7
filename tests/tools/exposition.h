// SPDX-License-Identifier: Apache-2.0
// The Prometheus text format, parsed strictly for the exporter's tests: HELP and TYPE before a
// family's samples, valid names, quoted and escaped label values, a number. Any other line fails
// the test.
#pragma once
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace gpushare::exposition {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

inline std::vector<Sample> ParseExposition(const std::string& text, std::map<std::string, std::string>* types) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+]+|NaN|\+Inf|-Inf))");
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$))re");
  std::vector<Sample> samples;
  std::istringstream lines(text);
  std::string line;
  std::string help_for;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      help_for = m[1];
    } else if (std::regex_match(line, m, kType)) {
      EXPECT_EQ(m[1], help_for) << "TYPE right after its HELP: " << line;
      EXPECT_EQ(types->count(m[1]), 0u) << "one TYPE per family: " << line;
      (*types)[m[1]] = m[2];
    } else if (std::regex_match(line, m, kSample)) {
      Sample s;
      s.name = m[1];
      EXPECT_EQ(types->count(s.name), 1u) << "sample before its TYPE: " << line;
      std::string rest = m[3];
      for (std::smatch l; !rest.empty() && std::regex_search(rest, l, kLabel, std::regex_constants::match_continuous);
           rest = l.suffix()) {
        std::string value;
        const std::string raw = l[2];
        for (size_t i = 0; i < raw.size(); ++i) {
          const char c = raw[i];
          if (c == '\\') {
            const char next = raw[++i];
            value += next == 'n' ? '\n' : next;
          } else {
            value += c;
          }
        }
        s.labels[l[1]] = value;
      }
      EXPECT_TRUE(rest.empty()) << "malformed labels: " << line;
      s.value = std::stod(m[4]);
      samples.push_back(s);
    } else {
      ADD_FAILURE() << "not exposition format: '" << line << "'";
    }
  }
  return samples;
}

inline const Sample* Find(const std::vector<Sample>& samples, const std::string& name, const std::string& tenant = "") {
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    auto it = s.labels.find("tenant");
    if (tenant.empty() || (it != s.labels.end() && it->second == tenant)) return &s;
  }
  return nullptr;
}

// The sample of `name` whose labels include every one of `labels`.
inline const Sample* FindWith(const std::vector<Sample>& samples, const std::string& name,
                              const std::map<std::string, std::string>& labels) {
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      all = all && it != s.labels.end() && it->second == v;
    }
    if (all) return &s;
  }
  return nullptr;
}

}  // namespace gpushare::exposition
